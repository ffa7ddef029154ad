"""gzip_static and brotli_static over real sockets: FILE.gz / FILE.br beside FILE, chosen by
Accept-Encoding, with the variant's own length, validators and ranges; never from outside
the root. Every answer is followed by another request on the same connection.
Config side: tests/config/test_gzip_directives.py; side by side with nginx:
tests/http/test_gzip_nginx.py."""

from __future__ import annotations

import gzip
import os

import pytest
from support import RawConn, RunningServer, request

HTML = b"<!doctype html><title>t</title>" + b"<p>precompressed hello</p>\n" * 200
GZ = gzip.compress(HTML, mtime=0)
BR = b"\x8b\x7f\x80fake-brotli-bytes" + bytes(range(40))  # served as they are: never decoded
MTIME = 1704164645

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /s/ {{ gzip_static on; }}
        location /v/ {{ gzip_static on; gzip_vary on; }}
        location /b/ {{ gzip_static on; brotli_static on; gzip_vary on; }}
        location /bronly/ {{ brotli_static on; }}
        location /al/ {{ gzip_static always; gzip_vary on; }}
        location /off/ {{ }}
        location /nocache/ {{ gzip_static on; open_file_cache off; }}
        location /d/ {{ gzip_static on; }}
        location /v10/ {{ gzip_static on; gzip_http_version 1.0; }}
        location /px/ {{ gzip_static on; gzip_proxied any; }}
        location /dis/ {{ gzip_static on; gzip_disable "badbot"; }}
    }}
}}
"""


def files() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for where in ("s", "v", "b", "al", "off", "nocache", "d", "v10", "px", "dis"):
        out[f"{where}/a.html"] = HTML
        out[f"{where}/a.html.gz"] = GZ
    out["b/a.html.br"] = BR
    out["bronly/a.html"] = HTML
    out["bronly/a.html.br"] = BR
    out["b/gzonly.html"] = HTML
    out["b/gzonly.html.gz"] = GZ
    out["d/index.html"] = HTML
    out["d/index.html.gz"] = GZ
    out["s/only.html.gz"] = GZ  # no plain file beside it
    out["s/plain.html"] = HTML  # no variant
    out["s/empty.html"] = b""
    out["s/empty.html.gz"] = b""
    out["s/dirgz.html"] = HTML
    out["s/dirgz.html.gz/x"] = b"a directory named like a variant"
    out["outside.gz"] = b"SECRET outside the location root"
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gzip-static")
    srv = RunningServer(tmp, CONF, files())
    for name in files():
        os.utime(srv.root / name, (MTIME, MTIME))
    # a .gz that leads out of the root: the root is /s/..., the link target is elsewhere
    secret = tmp / "secret.txt.gz"
    secret.write_bytes(b"SECRET outside the root")
    (srv.root / "s" / "link.html").write_bytes(HTML)
    os.symlink(secret, srv.root / "s" / "link.html.gz")
    (srv.root / "nocache" / "link.html").write_bytes(HTML)
    os.symlink(secret, srv.root / "nocache" / "link.html.gz")
    srv.start()
    yield srv
    srv.stop()
    # nothing on disk was changed by serving
    for name, content in files().items():
        if not name.endswith("/x"):
            assert (srv.root / name).read_bytes() == content


def etag_of(path) -> str:
    st = os.stat(path)
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def ask(server, target, headers=None, method="GET", version="HTTP/1.1"):
    return request(server.port, target, method=method, headers=headers, version=version)


def keepalive(server, *requests):
    """Send REQUESTS (method, target, headers) one after another on one connection; every
    answer must keep it open. Returns the answers."""
    out = []
    with RawConn(server.port) as conn:
        for method, target, headers in requests:
            lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, got, body = conn.response(head=method == "HEAD")
            assert got.get("connection") == "keep-alive", (target, got)
            out.append((status, got, body))
        conn.send(b"GET /off/a.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, body = conn.response()
        assert (status, body) == (200, HTML)  # and the connection still serves
    return out


# --- the variant and its own metadata ----------------------------------------------------


def test_accepted_gzip_gets_the_gz_bytes_with_their_own_validators(server):
    ((status, headers, body),) = keepalive(
        server, ("GET", "/s/a.html", {"Accept-Encoding": "gzip"})
    )
    assert status == 200
    assert body == GZ and gzip.decompress(body) == HTML
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "text/html"  # the plain file's type, not gzip's
    assert headers["content-length"] == str(len(GZ))
    assert headers["etag"] == etag_of(server.root / "s/a.html.gz")
    assert headers["etag"] != etag_of(server.root / "s/a.html")
    assert headers["last-modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert headers["accept-ranges"] == "bytes"
    assert "vary" not in headers  # gzip_vary is off: as nginx, no Vary


def test_client_without_gzip_gets_identity_bytes_identical_to_the_file(server):
    for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}):
        status, got, body = ask(server, "/s/a.html", headers)
        assert (status, body) == (200, HTML)
        assert "content-encoding" not in got
        assert got["etag"] == etag_of(server.root / "s/a.html")
        assert got["content-length"] == str(len(HTML))


def test_gzip_vary_on_both_answers_when_a_variant_exists(server):
    _, gz, _ = ask(server, "/v/a.html", {"Accept-Encoding": "gzip"})
    _, plain, body = ask(server, "/v/a.html")
    assert gz["vary"] == plain["vary"] == "Accept-Encoding"
    assert body == HTML
    _, novariant, _ = ask(server, "/s/plain.html", {"Accept-Encoding": "gzip"})
    assert "vary" not in novariant and "content-encoding" not in novariant


def test_always_serves_the_gz_to_anyone_without_vary(server):
    for headers in ({}, {"Accept-Encoding": "br"}, {"Accept-Encoding": "gzip;q=0"}):
        status, got, body = ask(server, "/al/a.html", headers)
        assert (status, body, got["content-encoding"]) == (200, GZ, "gzip")
        assert "vary" not in got  # nginx: `always` sets no Vary, even with gzip_vary on


def test_only_the_gz_exists(server):
    status, got, body = ask(server, "/s/only.html", {"Accept-Encoding": "gzip"})
    assert (status, body, got["content-encoding"]) == (200, GZ, "gzip")
    status, got, _ = ask(server, "/s/only.html")
    assert status == 404 and "content-encoding" not in got


def test_index_file_variant(server):
    ((status, got, body),) = keepalive(server, ("GET", "/d/", {"Accept-Encoding": "gzip"}))
    assert (status, body, got["content-encoding"]) == (200, GZ, "gzip")
    status, got, body = ask(server, "/d/")
    assert (status, body) == (200, HTML)


def test_direct_request_for_the_gz_is_a_plain_file_of_its_own_type(server):
    answers = keepalive(
        server,
        ("GET", "/s/a.html", {"Accept-Encoding": "gzip"}),
        ("GET", "/s/a.html.gz", {"Accept-Encoding": "gzip"}),
        ("GET", "/s/a.html", {"Accept-Encoding": "gzip"}),
    )
    (_, variant, _), (_, direct, body), (_, again, _) = answers
    assert body == GZ
    assert "content-encoding" not in direct and direct["content-type"] != "text/html"
    assert variant["content-type"] == again["content-type"] == "text/html"
    assert again["content-encoding"] == "gzip"


# --- ranges, validators, HEAD ---------------------------------------------------------------


def test_range_of_the_compressed_file(server):
    ((status, got, body),) = keepalive(
        server, ("GET", "/s/a.html", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    )
    assert (status, body) == (206, GZ[:10])
    assert got["content-range"] == f"bytes 0-9/{len(GZ)}"
    assert got["content-encoding"] == "gzip"
    status, got, body = ask(server, "/s/a.html", {"Accept-Encoding": "gzip", "Range": "bytes=-5"})
    assert (status, body) == (206, GZ[-5:])
    status, got, _ = ask(server, "/s/a.html", {"Accept-Encoding": "gzip", "Range": "bytes=99999-"})
    assert status == 416 and got["content-range"] == f"bytes */{len(GZ)}"


def test_if_range_compares_the_variant_tag(server):
    tag_gz = etag_of(server.root / "s/a.html.gz")
    tag_plain = etag_of(server.root / "s/a.html")
    h = {"Accept-Encoding": "gzip", "Range": "bytes=0-3"}
    assert ask(server, "/s/a.html", {**h, "If-Range": tag_gz})[0] == 206
    status, _, body = ask(server, "/s/a.html", {**h, "If-Range": tag_plain})
    assert (status, body) == (200, GZ)


def test_304_with_the_variant_etag_keeps_content_encoding_and_vary(server):
    tag = etag_of(server.root / "v/a.html.gz")
    ((status, got, body),) = keepalive(
        server, ("GET", "/v/a.html", {"Accept-Encoding": "gzip", "If-None-Match": tag})
    )
    assert (status, body) == (304, b"")
    assert got["etag"] == tag
    assert got["content-encoding"] == "gzip" and got["vary"] == "Accept-Encoding"
    # the plain file's tag does not validate the variant, nor the reverse
    plain = etag_of(server.root / "v/a.html")
    assert ask(server, "/v/a.html", {"Accept-Encoding": "gzip", "If-None-Match": plain})[0] == 200
    status, got, _ = ask(server, "/v/a.html", {"If-None-Match": tag})
    assert status == 200 and "content-encoding" not in got
    status, got, _ = ask(server, "/v/a.html", {"If-None-Match": plain})
    assert status == 304 and "content-encoding" not in got and got["vary"] == "Accept-Encoding"
    status, _, _ = ask(
        server,
        "/v/a.html",
        {"Accept-Encoding": "gzip", "If-Modified-Since": "Tue, 02 Jan 2024 03:04:05 GMT"},
    )
    assert status == 304


def test_412_on_the_variant(server):
    status, _, _ = ask(server, "/s/a.html", {"Accept-Encoding": "gzip", "If-Match": '"nope"'})
    assert status == 412
    assert server.alive()


def test_head_has_the_get_headers_and_no_body(server):
    h = {"Accept-Encoding": "gzip"}
    (_, get, _), (status, head, body) = keepalive(
        server, ("GET", "/s/a.html", h), ("HEAD", "/s/a.html", h)
    )
    assert (status, body) == (200, b"")
    for name in ("content-encoding", "content-length", "etag", "content-type", "last-modified"):
        assert head[name] == get[name], name


def test_empty_file_and_empty_variant(server):
    ((status, got, body),) = keepalive(
        server, ("GET", "/s/empty.html", {"Accept-Encoding": "gzip", "Range": "bytes=0-1"})
    )
    assert (status, body, got["content-length"], got["content-encoding"]) == (200, b"", "0", "gzip")


# --- brotli ------------------------------------------------------------------------------------


# Accept-Encoding → the coding served from /b/ (a.html, .gz and .br) as the class of inputs
GRAMMAR = [
    ("gzip", "gzip"),
    ("br", "br"),
    ("gzip, br", "br"),
    ("br, gzip", "br"),
    ("br;q=0.5, gzip", "gzip"),
    ("gzip;q=0.5, br;q=0.5", "br"),
    ("gzip;q=0.9, br;q=0.8", "gzip"),
    ("GZIP", "gzip"),
    ("Br", "br"),
    ("  gzip  ;  q=1  ", "gzip"),
    ("\tgzip\t;\tq=0.5", "gzip"),
    ("gzip;q=0", None),
    ("gzip;Q=0", None),
    ("gzip;q=0.000", None),
    ("gzip;q=0.001", "gzip"),
    ("gzip;q=1.000", "gzip"),
    ("gzip;q=1.5", None),
    ("gzip;q=abc", None),
    ("gzip;q=", None),
    ("gzip;q=0.0001", None),
    ("gzip;level=9", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("*, br;q=0", "gzip"),
    ("*;q=0, gzip", "gzip"),
    ("identity;q=0", None),
    ("identity;q=0, gzip", "gzip"),
    ("identity", None),
    ("deflate", None),
    ("x-gzip", "gzip"),
    ("", None),
    (",,, gzip ,,", "gzip"),
    ("gzipx, xbr, gzip-x", None),
    ("compress, deflate, gzip, br, zstd", "br"),
    ("br;q=0, gzip;q=0", None),
    ("br;q=0", None),
    (", ".join(f"coding{i}" for i in range(300)) + ", gzip;q=0.1", "gzip"),
    ("gzip;q=0, gzip", "gzip"),
]


@pytest.mark.parametrize(("accept", "coding"), GRAMMAR, ids=[g[0][:40] or "empty" for g in GRAMMAR])
def test_accept_encoding_grammar(server, accept, coding):
    status, got, body = ask(server, "/b/a.html", {"Accept-Encoding": accept})
    assert status == 200
    assert got.get("content-encoding") == coding
    assert body == {"gzip": GZ, "br": BR, None: HTML}[coding]
    assert got["vary"] == "Accept-Encoding"  # gzip_vary on and a variant exists


def test_brotli_without_br_file_falls_back_to_gz(server):
    status, got, body = ask(server, "/b/gzonly.html", {"Accept-Encoding": "br, gzip"})
    assert (status, body, got["content-encoding"]) == (200, GZ, "gzip")
    status, got, body = ask(server, "/b/gzonly.html", {"Accept-Encoding": "br"})
    assert (status, body) == (200, HTML) and "content-encoding" not in got


def test_brotli_static_alone(server):
    ((status, got, body),) = keepalive(
        server, ("GET", "/bronly/a.html", {"Accept-Encoding": "gzip, br"})
    )
    assert (status, body, got["content-encoding"]) == (200, BR, "br")
    assert got["content-length"] == str(len(BR))
    assert got["etag"] == etag_of(server.root / "bronly/a.html.br")
    status, got, body = ask(server, "/bronly/a.html", {"Accept-Encoding": "gzip"})
    assert (status, body) == (200, HTML)  # no gzip_static here: the .gz is not looked for


# --- who may get it: gzip_http_version, gzip_proxied, gzip_disable ------------------------------


def test_http_10_request_gets_identity_by_default(server):
    status, got, body = ask(server, "/s/a.html", {"Accept-Encoding": "gzip"}, version="HTTP/1.0")
    assert (status, body) == (200, HTML) and "content-encoding" not in got
    status, got, body = ask(server, "/v10/a.html", {"Accept-Encoding": "gzip"}, version="HTTP/1.0")
    assert (status, body, got["content-encoding"]) == (200, GZ, "gzip")


def test_proxied_request(server):
    h = {"Accept-Encoding": "gzip", "Via": "1.1 cache"}
    assert ask(server, "/s/a.html", h)[2] == HTML  # gzip_proxied off
    assert ask(server, "/px/a.html", h)[2] == GZ  # gzip_proxied any


def test_disabled_user_agent(server):
    h = {"Accept-Encoding": "gzip", "User-Agent": "Mozilla BadBot/1.0"}
    assert ask(server, "/dis/a.html", h)[2] == HTML
    assert ask(server, "/dis/a.html", {**h, "User-Agent": "curl/8"})[2] == GZ


# --- safety -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["s", "nocache"])
def test_gz_symlink_out_of_the_root_is_not_served(server, where):
    ((status, got, body),) = keepalive(
        server, ("GET", f"/{where}/link.html", {"Accept-Encoding": "gzip"})
    )
    assert (status, body) == (200, HTML)  # the plain file; the variant was refused
    assert b"SECRET" not in body and "content-encoding" not in got
    log = (server.tmp / "error.log").read_text()
    assert f"/{where}/link.html.gz" in log and "outside" in log


def test_directory_named_like_a_variant_is_ignored(server):
    status, got, body = ask(server, "/s/dirgz.html", {"Accept-Encoding": "gzip"})
    assert (status, body) == (200, HTML) and "content-encoding" not in got


def test_traversal_never_reaches_a_gz_outside(server):
    for target in ("/s/../outside", "/s/%2e%2e/outside", "/s/..%2foutside"):
        status, _, body = ask(server, target, {"Accept-Encoding": "gzip"})
        assert b"SECRET" not in body and status == 404


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file")
def test_unreadable_variant_falls_back_to_the_file(server):
    path = server.root / "nocache" / "a.html.gz"
    path.chmod(0)
    try:
        status, got, body = ask(server, "/nocache/a.html", {"Accept-Encoding": "gzip"})
        assert (status, body) == (200, HTML) and "content-encoding" not in got
    finally:
        path.chmod(0o644)


def test_off_location_never_looks(server):
    status, got, body = ask(server, "/off/a.html", {"Accept-Encoding": "gzip"})
    assert (status, body) == (200, HTML) and "content-encoding" not in got and "vary" not in got
