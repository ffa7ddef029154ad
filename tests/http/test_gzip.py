"""gzip on the fly over real sockets: which answers are compressed (nginx's gzip filter:
200/403/404 of gzip_types, at least gzip_min_length, no Content-Encoding yet, a client that
accepts gzip), how they are framed (chunked; HTTP/1.0 closes), and that every shape leaves
the connection usable. Decompressed bodies are compared with the original bytes."""

from __future__ import annotations

import gzip
import os
import random
import socket
import sys
import zlib

import pytest
from support import RawConn, RunningServer, request, wait_until

from webserv.compress import parse_accept_encoding, quality

HTML = b"<!doctype html><title>t</title>" + b"<p>compress me on the fly</p>\n" * 100  # 3 KiB
BIG = b"".join(b"<p>line %d of a large page</p>\n" % i for i in range(120_000))  # ~3.5 MiB
rng = random.Random(13)
NOISE = rng.randbytes(6 * 1024 * 1024)  # incompressible
GZ = gzip.compress(HTML, mtime=0)
CGI = f"""#!{sys.executable}
import sys
sys.stdout.write("Content-Type: text/html\\r\\n\\r\\n")
for i in range(2000):
    sys.stdout.write("<p>cgi line %d</p>\\n" % i)
"""
CGI_ENCODED = f"""#!{sys.executable}
import sys
sys.stdout.write("Content-Type: text/html\\r\\nContent-Encoding: x-own\\r\\n\\r\\n" + "z" * 500)
"""

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        gzip on;
        gzip_vary on;
        location /ai/ {{ autoindex on; }}
        location /pages/ {{ error_page 404 /errors/404.html; }}
        location /lvl9/ {{ gzip_comp_level 9; }}
        location /min/ {{ gzip_min_length 1000; }}
        location /v10/ {{ gzip_http_version 1.0; }}
        location /novary/ {{ gzip_vary off; }}
        location /star/ {{ gzip_types *; }}
        location /off/ {{ gzip off; }}
        location /px/ {{ gzip_proxied any; }}
        location /dis/ {{ gzip_disable "badbot"; }}
        location /static/ {{ gzip_static on; }}
        location /cgi/ {{ cgi .py {python}; }}
    }}
}}
""".replace("{python}", sys.executable)

FILES: dict[str, bytes | str] = {
    "a.html": HTML,
    "big.html": BIG,
    "noise.html": NOISE,
    "empty.html": b"",
    "tiny.html": b"0123456789",
    "data.bin": HTML,
    "errors/404.html": b"<p>custom missing page</p>" * 10,
    "ai/one.html": HTML,
    "ai/two.html": HTML,
    "lvl9/a.html": HTML,
    "min/999.html": b"x" * 999,
    "min/1000.html": b"x" * 1000,
    "v10/a.html": HTML,
    "novary/a.html": HTML,
    "star/data.bin": HTML,
    "off/a.html": HTML,
    "px/a.html": HTML,
    "dis/a.html": HTML,
    "static/a.html": HTML,
    "static/a.html.gz": GZ,
    "nodir/x.html": HTML,
    "cgi/page.py": CGI,
    "cgi/encoded.py": CGI_ENCODED,
}
AE = {"Accept-Encoding": "gzip"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("gzip"), CONF, FILES)
    for name in ("cgi/page.py", "cgi/encoded.py"):
        os.chmod(srv.root / name, 0o755)
    srv.start()
    yield srv
    srv.stop()
    for name, content in FILES.items():  # nothing on disk lost or changed
        data = content.encode() if isinstance(content, str) else content
        assert (srv.root / name).read_bytes() == data


def ask(server, target, headers=None, method="GET", version="HTTP/1.1"):
    return request(server.port, target, method=method, headers=headers, version=version)


def on_one_connection(server, *requests):
    """Each (method, target, headers) in turn on one connection, then a plain request: every
    answer must keep the connection open and in step."""
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
        assert (status, body) == (200, HTML)  # in step: the next answer is whole and right
    return out


def gzipped(got, body) -> bytes:
    assert got["content-encoding"] == "gzip"
    assert got["transfer-encoding"] == "chunked" and "content-length" not in got
    assert "accept-ranges" not in got
    return gzip.decompress(body)


# --- every shape of answer, and the connection after it ---------------------------------------


def test_small_file_from_memory(server):
    (status, got, body), (status2, _, body2) = on_one_connection(
        server, ("GET", "/a.html", AE), ("GET", "/a.html", AE)
    )
    assert status == status2 == 200
    assert gzipped(got, body) == HTML == gzip.decompress(body2)
    assert got["vary"] == "Accept-Encoding"
    st = os.stat(server.root / "a.html")
    assert got["etag"] == f'W/"{int(st.st_mtime):x}-{st.st_size:x}"'  # weakened, as nginx
    assert "last-modified" in got


def test_large_file_streamed(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/big.html", AE))
    assert status == 200 and gzipped(got, body) == BIG
    assert len(body) < len(BIG) // 4


def test_incompressible_large_file(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/noise.html", AE))
    assert status == 200 and gzipped(got, body) == NOISE


def test_client_without_gzip_gets_identical_identity_bytes(server):
    for headers in ({}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "br, deflate"}):
        for target, data in (("/a.html", HTML), ("/big.html", BIG)):
            status, got, body = ask(server, target, headers)
            assert (status, body) == (200, data)
            assert "content-encoding" not in got and got["content-length"] == str(len(data))
            assert not got["etag"].startswith("W/")
            assert got["vary"] == "Accept-Encoding"  # gzip_vary: the answer depended on it


def test_range_gets_the_whole_file_compressed_with_200(server):
    ((status, got, body),) = on_one_connection(
        server, ("GET", "/a.html", {**AE, "Range": "bytes=0-9"})
    )
    assert status == 200 and gzipped(got, body) == HTML and "content-range" not in got
    # without gzip the range is served as usual
    status, got, body = ask(server, "/a.html", {"Range": "bytes=0-9"})
    assert (status, body) == (206, HTML[:10])


def test_304_for_the_weak_tag(server):
    _, got, _ = ask(server, "/a.html", AE)
    ((status, got304, body),) = on_one_connection(
        server, ("GET", "/a.html", {**AE, "If-None-Match": got["etag"]})
    )
    assert (status, body) == (304, b"")
    assert "content-encoding" not in got304


def test_head_has_the_get_headers_and_no_body(server):
    (_, get, _), (status, head, body) = on_one_connection(
        server, ("GET", "/a.html", AE), ("HEAD", "/a.html", AE)
    )
    assert (status, body) == (200, b"")
    for name in ("content-encoding", "vary", "etag", "content-type"):
        assert head[name] == get[name]
    assert "content-length" not in head and "accept-ranges" not in head


def test_default_404_page(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/missing.html", AE))
    assert status == 404 and b"404" in gzipped(got, body)


def test_error_page_file(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/pages/missing", AE))
    assert status == 404 and gzipped(got, body) == FILES["errors/404.html"]


def test_403_page(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/nodir/", AE))
    assert status == 403 and b"403" in gzipped(got, body)


def test_other_error_statuses_are_not_compressed(server):
    with RawConn(server.port) as conn:
        conn.send(b"DELETE /a.html HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
        status, got, _ = conn.response()
    assert status == 405 and "content-encoding" not in got
    assert server.alive()


def test_autoindex(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/ai/", AE))
    page = gzipped(got, body)
    assert status == 200 and b"one.html" in page and b"two.html" in page


def test_cgi_output(server):
    ((status, got, body),) = on_one_connection(server, ("GET", "/cgi/page.py", AE))
    page = gzipped(got, body)
    assert status == 200 and page.count(b"<p>cgi line") == 2000


def test_never_twice(server):
    # a precompressed file (gzip_static) and a script's own Content-Encoding pass unchanged
    ((status, got, body),) = on_one_connection(server, ("GET", "/static/a.html", AE))
    assert (status, body, got["content-length"]) == (200, GZ, str(len(GZ)))
    status, got, body = ask(server, "/cgi/encoded.py", AE)
    assert (status, got["content-encoding"], body) == (200, "x-own", b"z" * 500)


def test_empty_and_short_files_are_sent_as_they_are(server):
    for target, data in (("/empty.html", b""), ("/tiny.html", b"0123456789")):
        ((status, got, body),) = on_one_connection(server, ("GET", target, AE))
        assert (status, body, got["content-length"]) == (200, data, str(len(data)))
        assert "content-encoding" not in got and "vary" not in got


def test_min_length(server):
    assert "content-encoding" not in ask(server, "/min/999.html", AE)[1]
    status, got, body = ask(server, "/min/1000.html", AE)
    assert gzipped(got, body) == b"x" * 1000


def test_types(server):
    status, got, body = ask(server, "/data.bin", AE)
    assert (status, body) == (200, HTML) and "content-encoding" not in got and "vary" not in got
    status, got, body = ask(server, "/star/data.bin", AE)
    assert gzipped(got, body) == HTML


def test_level_9(server):
    status, got, body = ask(server, "/lvl9/a.html", AE)
    assert gzipped(got, body) == HTML


def test_no_vary_when_off(server):
    status, got, body = ask(server, "/novary/a.html", AE)
    assert gzipped(got, body) == HTML and "vary" not in got


def test_off(server):
    status, got, body = ask(server, "/off/a.html", AE)
    assert (status, body) == (200, HTML) and "content-encoding" not in got


def test_http_10(server):
    status, got, body = ask(server, "/a.html", AE, version="HTTP/1.0")
    assert (status, body) == (200, HTML) and "content-encoding" not in got  # gzip_http_version 1.1
    # gzip_http_version 1.0: no length to send, so the body ends with the connection
    with RawConn(server.port) as conn:
        conn.send(
            b"GET /v10/a.html HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n"
            b"Accept-Encoding: gzip\r\n\r\n"
        )
        status, got, body = conn.response()
        assert status == 200 and got["connection"] == "close"
        assert "transfer-encoding" not in got and "content-length" not in got
        assert gzip.decompress(body) == HTML
        assert conn.closed_by_peer()
    with RawConn(server.port) as conn:
        conn.send(b"GET /v10/big.html HTTP/1.0\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
        status, got, body = conn.response()
    assert status == 404 or gzip.decompress(body) == BIG  # (/v10/ has no big.html: a 404 page)


def test_proxied_and_disabled(server):
    via = {**AE, "Via": "1.1 proxy"}
    assert "content-encoding" not in ask(server, "/a.html", via)[1]  # gzip_proxied off
    assert gzipped(*ask(server, "/px/a.html", via)[1:]) == HTML
    bot = {**AE, "User-Agent": "BADBOT/2"}
    assert "content-encoding" not in ask(server, "/dis/a.html", bot)[1]
    assert gzipped(*ask(server, "/dis/a.html", {**AE, "User-Agent": "ok"})[1:]) == HTML


def test_pipelined_compressed_answers_in_order(server):
    one = b"GET /a.html HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n"
    two = b"GET /big.html HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n"
    three = b"GET /tiny.html HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n"
    with RawConn(server.port) as conn:
        conn.send(one + two + three + one)
        bodies = [conn.response() for _ in range(4)]
    assert gzip.decompress(bodies[0][2]) == HTML
    assert gzip.decompress(bodies[1][2]) == BIG
    assert bodies[2][2] == b"0123456789"
    assert gzip.decompress(bodies[3][2]) == HTML


def test_slow_reader_of_a_large_gzip_stalls_nobody_and_memory_stays_bounded(server):
    pid = server.worker_pid()

    def rss() -> int:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    before = rss()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # (before connect: the window)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b"GET /noise.html HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
    first = slow.recv(4096)
    assert first.startswith(b"HTTP/1.1 200")
    # while it does not read, others are served, compressed
    for _ in range(5):
        status, got, body = ask(server, "/a.html", AE)
        assert gzipped(got, body) == HTML
    # the worker did not compress the whole file into memory for the stalled client
    assert rss() - before < len(NOISE) // 2
    slow.settimeout(30)
    data = first
    while True:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\r\n0\r\n\r\n"):
            break
    slow.close()
    body = _dechunk(data.partition(b"\r\n\r\n")[2])
    assert zlib.decompress(body, 31) == NOISE
    wait_until(server.alive)


def _dechunk(raw: bytes) -> bytes:
    out = []
    while True:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return b"".join(out)
        out.append(raw[:size])
        raw = raw[size + 2 :]


# --- the Accept-Encoding grammar, as a table (the served side: test_gzip_static.py) --------


@pytest.mark.parametrize(
    ("header", "gzip_q"),
    [
        ("gzip", 1.0),
        ("GZip", 1.0),
        ("gzip;q=0.5", 0.5),
        ("gzip ; Q = 0.25", 0.25),
        ("gzip;q=0", 0.0),
        ("gzip;q=1.1", 0.0),
        ("gzip;q=.5", 0.0),
        ("gzip;q=0.1234", 0.0),
        ("*", 1.0),
        ("*;q=0.3", 0.3),
        ("*;q=0.3, gzip;q=0", 0.0),
        ("identity;q=0", 0.0),
        ("deflate, br", 0.0),
        ("x-gzip;q=0.7", 0.7),
        ("", 0.0),
        (" , ;q=1, gzip", 1.0),
    ],
)
def test_parse_accept_encoding(header, gzip_q):
    assert quality(parse_accept_encoding(header), "gzip") == gzip_q


def test_gzip_refused_by_the_grammar_table_over_the_wire(server):
    for header in ("gzip;q=0", "*;q=0", "identity", "gzipx", "gzip;q=2", "deflate"):
        status, got, body = ask(server, "/a.html", {"Accept-Encoding": header})
        assert (status, body) == (200, HTML) and "content-encoding" not in got, header
    for header in ("GZIP", "*", "br;q=1, gzip;q=0.001", "x-gzip", "deflate,gzip"):
        status, got, body = ask(server, "/a.html", {"Accept-Encoding": header})
        assert gzipped(got, body) == HTML, header


def test_a_changed_small_file_is_compressed_anew(server):
    # the gzip of a cached small file is kept; a file changed behind webserv's back is seen
    # at the open file cache's next re-stat, and its new bytes are compressed
    path = server.root / "changing.html"
    path.write_bytes(HTML)
    assert gzipped(*ask(server, "/changing.html", AE)[1:]) == HTML
    assert gzipped(*ask(server, "/changing.html", AE)[1:]) == HTML
    new = HTML.replace(b"compress me", b"changed now") + b"<p>longer</p>"
    path.write_bytes(new)
    wait_until(lambda: gzip.decompress(ask(server, "/changing.html", AE)[2]) == new)
    path.unlink()
