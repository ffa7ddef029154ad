"""Static files over real sockets: GET/HEAD, types, standard headers, index, alias, big files."""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
import time

import psutil
import pytest
from support import RawConn, request, wait_until

BASIC = """
http {{
    access_log off;
    default_type application/octet-stream;
    types {{ text/html html htm; text/css css; image/png png; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /multi/ {{ index missing.html second.html third.html; }}
        location /static/ {{ alias {tmp}/assets/; }}
        location /plain/ {{ alias {tmp}/assets/; default_type text/plain; }}
        location /quiet/ {{ server_tokens off; }}
    }}
}}
"""

FILES = {
    "index.html": "<h1>home</h1>\n",
    "style.CSS": "body {}\n",
    "pic.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "noext": "no extension\n",
    "data.unknownext": "?\n",
    "dir/index.html": "dir index\n",
    "empty/.keep": "",
    "multi/second.html": "second\n",
    "multi/third.html": "third\n",
    "quiet/page.html": "quiet\n",
    "zero.html": "",
}

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"
)


@pytest.fixture
def site(webserv, tmp_path):
    assets = tmp_path / "s0" / "assets"
    assets.mkdir(parents=True)
    (assets / "app.css").write_text("a {}\n")
    (assets / "readme").write_text("alias readme\n")
    return webserv(BASIC, files=FILES)


def test_get_file_exact_body_and_headers(site):
    status, headers, body = request(site.port, "/index.html")
    assert status == 200
    assert body == b"<h1>home</h1>\n"
    assert headers["content-type"] == "text/html"
    assert headers["content-length"] == str(len(body))
    assert headers["accept-ranges"] == "bytes"
    assert headers["server"] == "webserv/0.1.0"
    assert headers["connection"] == "close"
    st = os.stat(site.root / "index.html")
    assert headers["last-modified"] == email.utils.formatdate(int(st.st_mtime), usegmt=True)
    assert headers["etag"] == f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def test_date_header_is_imf_fixdate_and_current(site):
    status, headers, _ = request(site.port, "/")
    assert status == 200
    assert IMF_FIXDATE.match(headers["date"]), headers["date"]
    sent = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    assert abs(sent - time.time()) < 300  # the server's clock, not a duration


@pytest.mark.parametrize(
    "path, ctype",
    [
        ("/index.html", "text/html"),
        ("/style.CSS", "text/css"),  # extensions match case-insensitively, as in nginx
        ("/pic.png", "image/png"),
        ("/noext", "application/octet-stream"),
        ("/data.unknownext", "application/octet-stream"),
    ],
)
def test_content_type_from_types_and_default_type(site, path, ctype):
    status, headers, body = request(site.port, path)
    assert status == 200
    assert headers["content-type"] == ctype
    assert body == (site.root / path[1:]).read_bytes()


def test_content_type_from_included_mime_types(webserv, tmp_path):
    conf = """
    http {{
        include mime.types;
        default_type text/x-fallback;
        access_log off;
        server {{ listen 127.0.0.1:{port}; root {root}; }}
    }}
    """
    (tmp_path / "s0").mkdir()
    # relative to the config file's folder, in nginx's mime.types format
    (tmp_path / "s0" / "mime.types").write_text(
        "types {\n    text/css css;\n    application/javascript js mjs;\n    image/svg+xml svg svgz;\n}\n"
    )
    files = {"a.css": "x", "b.mjs": "x", "c.svgz": "x", "d.html": "x"}
    server = webserv(conf, files=files)
    expected = {
        "/a.css": "text/css",
        "/b.mjs": "application/javascript",
        "/c.svgz": "image/svg+xml",
        "/d.html": "text/x-fallback",  # a types block replaces the built-in map entirely
    }
    for path, ctype in expected.items():
        status, headers, _ = request(server.port, path)
        assert (status, headers["content-type"]) == (200, ctype), path


def test_same_file_through_two_locations_keeps_each_default_type(site):
    # /static/ and /plain/ alias the same folder; only default_type differs
    for _ in range(2):
        for prefix, ctype in (("/static/", "application/octet-stream"), ("/plain/", "text/plain")):
            status, headers, body = request(site.port, prefix + "readme")
            assert (status, headers["content-type"], body) == (200, ctype, b"alias readme\n")


def test_head_same_headers_no_body(site):
    with RawConn(site.port) as conn:
        conn.send(
            b"HEAD /pic.png HTTP/1.1\r\nHost: localhost\r\n\r\nGET /pic.png HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        head_status, head_headers, head_body = conn.response(head=True)
        # a HEAD body would be parsed as the start of the next response and break this one
        get_status, get_headers, get_body = conn.response()
    assert (head_status, get_status) == (200, 200)
    assert head_body == b""
    assert get_body == FILES["pic.png"]
    for h in (head_headers, get_headers):
        h.pop("date")
    assert head_headers == get_headers
    assert head_headers["content-length"] == str(len(FILES["pic.png"]))


def test_content_length_on_every_response_with_a_length(site):
    cases = [
        ("GET", "/index.html", 200),
        ("GET", "/zero.html", 200),
        ("GET", "/dir", 301),
        ("GET", "/missing", 404),
        ("GET", "/empty/", 403),
        ("HEAD", "/missing", 404),
        ("GET", "/static/app.css", 200),
    ]
    for method, path, status in cases:
        got, headers, body = request(site.port, path, method=method)
        assert got == status, path
        assert "transfer-encoding" not in headers
        if method == "GET":
            assert headers["content-length"] == str(len(body)), path
        else:
            assert int(headers["content-length"]) > 0 and body == b""
    _, headers, body = request(site.port, "/zero.html")
    assert headers["content-length"] == "0" and body == b""


def test_server_tokens_off(site):
    status, headers, _ = request(site.port, "/quiet/page.html")
    assert (status, headers["server"]) == (200, "webserv")
    status, headers, body = request(site.port, "/quiet/missing")
    assert (status, headers["server"]) == (404, "webserv")
    assert b"<hr><center>webserv</center>" in body
    assert b"0.1.0" not in body
    status, headers, body = request(site.port, "/missing")
    assert b"<hr><center>webserv/0.1.0</center>" in body


def test_index_file_for_directory(site):
    for path in ("/", "/dir/"):
        status, headers, body = request(site.port, path)
        assert status == 200
        assert body == (site.root / path[1:] / "index.html").read_bytes()
        assert headers["content-type"] == "text/html"


def test_several_index_names_first_existing_wins(site):
    status, _, body = request(site.port, "/multi/")
    assert (status, body) == (200, b"second\n")
    (site.root / "multi" / "second.html").unlink()
    # the open file cache may still hold second.html for open_file_cache_valid (1s)

    wait_until(lambda: request(site.port, "/multi/")[2] == b"third\n")


def test_directory_without_index_is_403(site):
    status, headers, body = request(site.port, "/empty/")
    assert status == 403
    assert b"<title>403 Forbidden</title>" in body


@pytest.mark.parametrize(
    "target, location",
    [("/dir", "/dir/"), ("/dir?a=1&b=2", "/dir/?a=1&b=2"), ("/multi", "/multi/")],
)
def test_directory_without_slash_redirects(site, target, location):
    status, headers, body = request(site.port, target)
    assert status == 301
    assert headers["location"] == location
    assert headers["content-type"] == "text/html"
    assert b"<title>301 Moved Permanently</title>" in body


@pytest.mark.parametrize(
    "name, target, location",
    [
        ("a?b", "/a%3Fb", "/a%3Fb/"),
        ("h#x", "/h%23x?q=1", "/h%23x/?q=1"),
        ("100%", "/100%25", "/100%25/"),
        ("sp ace", "/sp%20ace", "/sp%20ace/"),
        ("café", "/caf%C3%A9", "/caf%C3%A9/"),
    ],
)
def test_directory_redirect_reencodes_the_name(site, name, target, location):
    (site.root / name).mkdir()
    (site.root / name / "index.html").write_text(name)
    status, headers, _ = request(site.port, target)
    assert (status, headers["location"]) == (301, location)
    # following the Location lands in the same directory
    status, _, body = request(site.port, location)
    assert (status, body) == (200, name.encode())


def test_alias(site):
    status, headers, body = request(site.port, "/static/app.css")
    assert (status, headers["content-type"], body) == (200, "text/css", b"a {}\n")
    status, _, _ = request(site.port, "/static/index.html")  # not under the alias folder
    assert status == 404
    status, _, _ = request(site.port, "/static/../index.html")  # normalised to /index.html
    assert status == 200


def test_five_mib_file_intact(webserv):
    data = os.urandom(5 * 1024 * 1024)
    server = webserv(BASIC, files={"big.bin": data})
    status, headers, body = request(server.port, "/big.bin")
    assert status == 200
    assert headers["content-length"] == str(len(data))
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_huge_sparse_file_streams_without_growing_memory(webserv):
    size = 200 * 1024 * 1024
    server = webserv(BASIC)
    with open(server.root / "sparse.bin", "wb") as f:
        f.truncate(size)
    proc = psutil.Process(server.worker_pid())  # the worker serves; the master only waits
    rss_before = proc.memory_info().rss
    digest = hashlib.sha256()
    received = 0
    peak = rss_before
    with RawConn(server.port) as conn:
        conn.send(b"GET /sparse.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while b"\r\n\r\n" not in conn.buf:
            assert conn._fill()
        head, _, rest = conn.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nContent-Length: %d\r\n" % size in head
        digest.update(rest)
        received = len(rest)
        while True:
            chunk = conn.sock.recv(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            received += len(chunk)
            if received % (16 << 20) < len(chunk):
                peak = max(peak, proc.memory_info().rss)
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(bytes(size)).hexdigest()
    assert peak - rss_before < 32 * 1024 * 1024, (rss_before, peak)
    assert server.alive()


CACHE_CONF = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        open_file_cache_valid 1h;
        location /fresh/ {{ alias {root}/; open_file_cache off; }}
    }}
}}
"""


def test_open_file_cache_serves_the_opened_file_until_revalidated(webserv):
    server = webserv(CACHE_CONF, files={"c.txt": "old bytes\n"})
    status, headers, body = request(server.port, "/c.txt")
    assert (status, body) == (200, b"old bytes\n")
    # replaced (a new inode), as editors and deploy tools do: the cached descriptor still
    # holds the old file, and open_file_cache_valid 1h means no stat for an hour
    tmp = server.root / "c.txt.new"
    tmp.write_bytes(b"new content, longer\n")
    os.replace(tmp, server.root / "c.txt")
    status, again, body = request(server.port, "/c.txt")
    assert (status, body, again["etag"]) == (200, b"old bytes\n", headers["etag"])
    # never a mix: old length with old bytes, and a location without the cache sees the new
    assert again["content-length"] == "10"
    status, _, body = request(server.port, "/fresh/c.txt")
    assert (status, body) == (200, b"new content, longer\n")


def test_open_file_cache_off_sees_changes_at_once(webserv):
    conf = CACHE_CONF.replace("open_file_cache_valid 1h;", "open_file_cache off;")
    server = webserv(conf, files={"c.txt": "one\n"})
    assert request(server.port, "/c.txt")[::2] == (200, b"one\n")
    (server.root / "c.txt").write_bytes(b"two, longer\n")
    assert request(server.port, "/c.txt")[::2] == (200, b"two, longer\n")
    (server.root / "c.txt").unlink()
    assert request(server.port, "/c.txt")[0] == 404
