"""autoindex: nginx's listing, byte for byte (nginx 1.22 with `charset utf-8` as reference)."""

from __future__ import annotations

import os
import re

import pytest
from support import request

CONF = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index nothing.html;
        location /list/ {{ autoindex on; }}
        location /withindex/ {{ autoindex on; index index.html; }}
        location /off/ {{ autoindex off; }}
        location /aliased/ {{ alias {root}/list/; autoindex on; }}
    }}
}}
"""
MTIME = 1704164645  # 02-Jan-2024 03:04:05 UTC
NAMES = [
    "a<b>.txt",
    "x&y.txt",
    'q"uote.txt',
    "it's.txt",
    "with space.txt",
    "ünï.txt",
    "100%.txt",
    "#hash.txt",
    "?q.txt",
    ".hidden",
    "a_very_long_file_name_that_goes_past_fifty_characters_surely.txt",
    "ä" * 50 + ".txt",
]
DIRS = ["sub dir", ".hdir", "z<dir"]
STAMP = "02-Jan-2024 03:04"

# nginx's output for the folder above; only the 50-"ä" line is built, as it is long
EXPECTED = "\r\n".join(
    [
        "<html>",
        "<head><title>Index of /list/</title></head>",
        "<body>",
        '<h1>Index of /list/</h1><hr><pre><a href="../">../</a>',
        '<a href="sub%20dir/">sub dir/</a>                                           02-Jan-2024 03:04                   -',
        '<a href="z%3Cdir/">z&lt;dir/</a>                                             02-Jan-2024 03:04                   -',
        '<a href="%23hash.txt">#hash.txt</a>                                          02-Jan-2024 03:04                   3',
        '<a href="100%25.txt">100%.txt</a>                                           02-Jan-2024 03:04                   3',
        '<a href="%3Fq.txt">?q.txt</a>                                             02-Jan-2024 03:04                   3',
        '<a href="a%3Cb%3E.txt">a&lt;b&gt;.txt</a>                                           02-Jan-2024 03:04                   3',
        '<a href="a_very_long_file_name_that_goes_past_fifty_characters_surely.txt">a_very_long_file_name_that_goes_past_fifty_char..&gt;</a> 02-Jan-2024 03:04                   3',
        '<a href="big.bin">big.bin</a>                                            02-Jan-2024 03:04               12345',
        '<a href="it%27s.txt">it\'s.txt</a>                                           02-Jan-2024 03:04                   3',
        '<a href="q%22uote.txt">q&quot;uote.txt</a>                                         02-Jan-2024 03:04                   3',
        '<a href="with%20space.txt">with space.txt</a>                                     02-Jan-2024 03:04                   3',
        '<a href="x%26y.txt">x&amp;y.txt</a>                                            02-Jan-2024 03:04                   3',
        '<a href="'
        + "%C3%A4" * 50
        + '.txt">'
        + "ä" * 47
        + "..&gt;</a> 02-Jan-2024 03:04                   3",
        '<a href="%C3%BCn%C3%AF.txt">ünï.txt</a>                                            02-Jan-2024 03:04                   3',
        "</pre><hr></body>",
        "</html>",
        "",
    ]
).encode()


@pytest.fixture
def server(webserv):
    files = {f"list/{name}": "abc" for name in NAMES}
    files["list/big.bin"] = bytes(12345)
    files["withindex/index.html"] = "the index\n"
    files["withindex/other.txt"] = "x"
    files["off/file.txt"] = "x"
    srv = webserv(CONF, files=files)
    listing = srv.root / "list"
    for name in DIRS:
        (listing / name).mkdir()
        (listing / name / "inner.txt").write_text("inner")
    for entry in os.listdir(listing):
        os.utime(listing / entry, (MTIME, MTIME))
    return srv


def test_listing_matches_nginx(server):
    status, headers, body = request(server.port, "/list/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert body == EXPECTED


def test_dot_files_hidden(server):
    _, _, body = request(server.port, "/list/")
    assert b"hidden" not in body and b"hdir" not in body
    # hidden from the listing only: still served, as in nginx
    assert request(server.port, "/list/.hidden")[::2] == (200, b"abc")


def test_every_link_resolves(server):
    _, _, body = request(server.port, "/list/")
    hrefs = re.findall(rb'<a href="([^"]+)">', body)
    assert len(hrefs) == 1 + len(DIRS) - 1 + len(NAMES) - 1 + 1  # ../, dirs, files, big.bin
    for href in hrefs:
        href = href.decode("ascii")  # links are pure ASCII: everything else is encoded
        if href == "../":
            continue
        target = "/list/" + href
        status, _, got = request(server.port, target)
        assert status == 200, target
        if href.endswith("/"):
            assert b'<a href="inner.txt">inner.txt</a>' in got
        elif href != "big.bin":
            assert got == b"abc", target


def test_subdirectory_title_is_decoded_and_escaped(server):
    status, _, body = request(server.port, "/list/z%3cdir/")
    assert status == 200
    assert b"<title>Index of /list/z&lt;dir/</title>" in body
    assert b"<h1>Index of /list/z&lt;dir/</h1>" in body
    status, _, body = request(server.port, "/list/sub%20dir/")
    assert b"<title>Index of /list/sub dir/</title>" in body
    assert b'<a href="../">../</a>\r\n<a href="inner.txt">inner.txt</a> ' in body


def test_non_utf8_name_is_percent_encoded(server):
    listing = bytes(server.root / "list")
    with open(os.path.join(listing, b"raw\xff.bin"), "wb") as f:
        f.write(b"raw")
    _, _, body = request(server.port, "/list/")
    assert b'<a href="raw%FF.bin">raw\xff.bin</a>' in body
    assert request(server.port, "/list/raw%FF.bin")[::2] == (200, b"raw")


def test_head_listing(server):
    _, get_headers, body = request(server.port, "/list/")
    status, headers, empty = request(server.port, "/list/", method="HEAD")
    assert (status, empty) == (200, b"")
    assert headers["content-length"] == str(len(body)) == get_headers["content-length"]


def test_index_file_wins_over_autoindex(server):
    assert request(server.port, "/withindex/")[::2] == (200, b"the index\n")


def test_autoindex_off_is_403(server):
    status, headers, body = request(server.port, "/off/")
    assert status == 403
    assert b"<title>403 Forbidden</title>" in body
    assert headers["content-length"] == str(len(body))
    assert request(server.port, "/off/file.txt")[::2] == (200, b"x")
    assert server.alive()


def test_autoindex_default_is_off(server):
    (server.root / "plain").mkdir()
    assert request(server.port, "/plain/")[0] == 403


def test_listing_through_alias(server):
    status, _, body = request(server.port, "/aliased/")
    assert status == 200
    assert body == EXPECTED.replace(b"Index of /list/", b"Index of /aliased/")


def test_directory_without_slash_redirects_before_listing(server):
    status, headers, _ = request(server.port, "/list/sub%20dir")
    assert status == 301
    assert headers["location"] == "/list/sub%20dir/"
