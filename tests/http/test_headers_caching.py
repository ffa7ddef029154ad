"""add_header, expires, etag, if_modified_since and keepalive_requests over real sockets.

nginx's rules: without `always` added headers (and expires) go only on 200, 201, 204, 206,
301, 302, 303, 304, 307, 308; `always` puts them on every answer, error pages included; the
error page's own location decides (an internal redirect). Config-side checks:
tests/config/test_headers_caching_directives.py; the side-by-side with nginx is at the end.
"""

from __future__ import annotations

import os
import socket
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest
from support import RawConn, RunningServer, request

MTIME = 1704164645  # Tue, 02 Jan 2024 03:04:05 GMT
LAST_MODIFIED = "Tue, 02 Jan 2024 03:04:05 GMT"
DATA = b"0123456789abcdefghij"

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    add_header X-Http http;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        error_page 404 /errors/404.html;
        location / {{
            add_header X-Plain plain;
            add_header X-Always always always;
            add_header X-Uri "uri=$uri host=$host" always;
            add_header X-Empty "";
        }}
        location /inherit/ {{ }}
        location /errors/ {{ add_header X-Page page always; }}
        location /cache/ {{ expires 1h; add_header X-Cache yes; }}
        location /epoch/ {{ expires epoch; }}
        location /max/ {{ expires max; }}
        location /past/ {{ expires -1; }}
        location /zero/ {{ expires 0; }}
        location /modified/ {{ expires modified 1d; }}
        location /daily/ {{ expires @3h; }}
        location /noetag/ {{ etag off; }}
        location /before/ {{ if_modified_since before; }}
        location /imsoff/ {{ if_modified_since off; }}
        location /drop/ {{ add_header ETag ""; add_header Last-Modified ""; }}
        location /swap/ {{ add_header ETag '"mine"'; }}
        location /ret/ {{
            add_header X-Plain plain;
            add_header X-Always always always;
        }}
        location = /ret/gone {{ add_header X-Always always always; return 410; }}
        location = /ret/created {{ add_header X-Plain plain; return 201 made; }}
        location = /ret/moved {{ add_header X-Plain plain; return 302 /elsewhere; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        root {root};
        keepalive_requests 3;
        location /nolimit/ {{ keepalive_requests 100; }}
    }}
}}
"""
FILES = ["f.txt", "inherit/f.txt", "errors/404.html", "cache/f.txt", "epoch/f.txt"]
FILES += ["max/f.txt", "past/f.txt", "zero/f.txt", "modified/f.txt", "daily/f.txt"]
FILES += ["noetag/f.txt", "before/f.txt", "imsoff/f.txt", "drop/f.txt", "swap/f.txt"]
FILES += ["dir/f.txt", "nolimit/f.txt"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = {name: DATA for name in FILES}
    files["errors/404.html"] = "custom 404\n"
    srv = RunningServer(tmp_path_factory.mktemp("headers"), CONF, files, ports=2)
    for name in FILES:
        os.utime(srv.root / name, (MTIME, MTIME))
    srv.start()
    yield srv
    srv.stop()


def get(server, target, headers=None, method="GET", port=None):
    return request(port or server.port, target, method=method, headers=headers)


def raw_head(server, data: bytes) -> bytes:
    reply = server.raw(data)
    return reply.partition(b"\r\n\r\n")[0]


# --- add_header: statuses, always, levels ------------------------------------------------


def test_success_gets_plain_and_always_headers(server):
    status, headers, body = get(server, "/f.txt")
    assert (status, body) == (200, DATA)
    assert headers["x-plain"] == "plain"
    assert headers["x-always"] == "always"
    assert headers["x-uri"] == "uri=/f.txt host=localhost"
    assert "x-empty" not in headers  # an empty value adds nothing
    assert "x-http" not in headers  # the location has its own: the http level's is forgotten


def test_location_without_its_own_inherits_the_outer_level(server):
    _, headers, _ = get(server, "/inherit/f.txt")
    assert headers["x-http"] == "http"
    assert "x-plain" not in headers


def test_404_error_page_takes_the_page_location_headers(server):
    status, headers, body = get(server, "/missing")
    assert (status, body) == (404, b"custom 404\n")
    # the page's location (/errors/) answered: its `always` header, none of location /'s
    assert headers["x-page"] == "page"
    assert "x-always" not in headers and "x-plain" not in headers


def test_default_error_page_only_always(server):
    status, headers, _ = get(server, "/ret/gone")
    assert status == 410
    assert headers["x-always"] == "always"
    assert "x-http" not in headers


@pytest.mark.parametrize(
    ("target", "status"), [("/ret/created", 201), ("/ret/moved", 302), ("/dir", 301)]
)
def test_other_safe_statuses_get_plain_headers(server, target, status):
    got, headers, _ = get(server, target)
    assert got == status
    assert headers["x-plain"] == "plain"


def test_304_and_206_get_the_headers(server):
    status, headers, _ = get(server, "/f.txt", {"If-Modified-Since": LAST_MODIFIED})
    assert status == 304
    assert headers["x-plain"] == "plain"
    status, headers, body = get(server, "/f.txt", {"Range": "bytes=2-5"})
    assert (status, body) == (206, DATA[2:6])
    assert headers["content-range"] == "bytes 2-5/20"
    assert headers["x-plain"] == "plain"


def test_405_and_400_only_always(server):
    status, headers, _ = get(server, "/f.txt", method="DELETE")
    assert status == 405
    assert headers["x-always"] == "always" and "x-plain" not in headers
    head = raw_head(server, b"GET /f.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    # the server's own settings (before a location was chosen): the http level's header,
    # which is not `always`
    assert b"X-Http" not in head


def test_variable_values_cannot_split_the_header(server):
    head = raw_head(
        server,
        b"DELETE /%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 405")  # (no error_page for it: location /'s headers)
    lines = head.split(b"\r\n")
    assert not any(line.lower().startswith(b"x-injected") for line in lines)
    (uri,) = [line for line in lines if line.startswith(b"X-Uri:")]
    assert uri == b"X-Uri: uri=/X-Injected: yes host=h"


def test_etag_and_last_modified_replaced_or_removed(server):
    _, headers, _ = get(server, "/drop/f.txt")
    assert "etag" not in headers and "last-modified" not in headers
    _, headers, _ = get(server, "/swap/f.txt")
    assert headers["etag"] == '"mine"'
    assert headers["last-modified"] == LAST_MODIFIED


def test_many_add_header_lines(tmp_path):
    lines = "\n".join(f"add_header X-H{i} v{i};" for i in range(2000))
    conf = "http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {root};\n"
    conf += lines + "\n}} }}"
    srv = RunningServer(tmp_path, conf, {"f.txt": DATA}).start()
    try:
        status, headers, body = request(srv.port, "/f.txt")
        assert (status, body) == (200, DATA)
        assert headers["x-h0"] == "v0" and headers["x-h1999"] == "v1999"
    finally:
        srv.stop()


# --- expires -----------------------------------------------------------------------------


def expires_of(headers) -> float:
    return parsedate_to_datetime(headers["expires"]).timestamp()


def test_expires_time_from_now(server):
    before = int(time.time())
    status, headers, _ = get(server, "/cache/f.txt")
    assert status == 200
    assert headers["cache-control"] == "max-age=3600"
    assert before + 3600 <= expires_of(headers) <= time.time() + 3600 + 1
    assert headers["x-cache"] == "yes"


def test_expires_not_on_errors(server):
    status, headers, _ = get(server, "/cache/missing")
    assert status == 404
    assert "expires" not in headers and "cache-control" not in headers


def test_expires_on_304(server):
    status, headers, _ = get(server, "/cache/f.txt", {"If-Modified-Since": LAST_MODIFIED})
    assert status == 304
    assert headers["cache-control"] == "max-age=3600"


@pytest.mark.parametrize(
    ("where", "expires", "cache_control"),
    [
        ("epoch", "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"),
        ("max", "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"),
    ],
)
def test_expires_constants(server, where, expires, cache_control):
    _, headers, _ = get(server, f"/{where}/f.txt")
    assert (headers["expires"], headers["cache-control"]) == (expires, cache_control)


def test_expires_negative_and_zero(server):
    _, headers, _ = get(server, "/past/f.txt")
    assert headers["cache-control"] == "no-cache"
    assert expires_of(headers) <= time.time()
    _, headers, _ = get(server, "/zero/f.txt")
    assert headers["cache-control"] == "max-age=0"
    assert abs(expires_of(headers) - time.time()) <= 2


def test_expires_modified(server):
    _, headers, _ = get(server, "/modified/f.txt")
    # a day after a 2024 mtime: long past, so no-cache, and Expires is mtime + 1 day
    assert headers["expires"] == formatdate(MTIME + 86400, usegmt=True)
    assert headers["cache-control"] == "no-cache"


def test_expires_daily(server):
    _, headers, _ = get(server, "/daily/f.txt")
    at = expires_of(headers)
    assert time.time() - 1 < at <= time.time() + 86400 + 3600
    assert time.localtime(at)[3:6] == (3, 0, 0)
    max_age = int(headers["cache-control"].removeprefix("max-age="))
    assert abs(at - time.time() - max_age) <= 2


# --- etag off, if_modified_since -----------------------------------------------------------


def test_etag_off(server):
    _, headers, _ = get(server, "/f.txt")
    etag = headers["etag"]
    status, headers, body = get(server, "/noetag/f.txt")
    assert (status, body) == (200, DATA)
    assert "etag" not in headers and headers["last-modified"] == LAST_MODIFIED
    # the tag another location shows matches nothing here; "*" still does
    assert get(server, "/noetag/f.txt", {"If-None-Match": etag})[0] == 200
    assert get(server, "/noetag/f.txt", {"If-None-Match": "*"})[0] == 304
    status, headers, _ = get(server, "/noetag/f.txt", {"If-Modified-Since": LAST_MODIFIED})
    assert status == 304 and "etag" not in headers
    assert get(server, "/noetag/f.txt", {"If-Match": etag})[0] == 412
    # If-Range with a tag: no tag to match, the whole file
    status, _, body = get(server, "/noetag/f.txt", {"Range": "bytes=0-1", "If-Range": etag})
    assert (status, body) == (200, DATA)
    status, _, body = get(
        server, "/noetag/f.txt", {"Range": "bytes=0-1", "If-Range": LAST_MODIFIED}
    )
    assert (status, body) == (206, DATA[:2])


EARLIER = "Mon, 01 Jan 2024 00:00:00 GMT"
LATER = "Wed, 03 Jan 2024 00:00:00 GMT"
FUTURE = formatdate(time.time() + 10 * 365 * 86400, usegmt=True)


@pytest.mark.parametrize(
    ("where", "date", "status"),
    [
        ("", LAST_MODIFIED, 304),  # exact (the default): only the file's own date
        ("", LATER, 200),
        ("", EARLIER, 200),
        ("", FUTURE, 200),
        ("", "not a date", 200),
        ("", "", 200),
        ("", "Tue, 32 Jan 2024 03:04:05 GMT", 200),
        ("before/", LAST_MODIFIED, 304),
        ("before/", LATER, 304),
        ("before/", FUTURE, 304),
        ("before/", EARLIER, 200),
        ("before/", "garbage", 200),
        ("imsoff/", LAST_MODIFIED, 200),
        ("imsoff/", LATER, 200),
    ],
)
def test_if_modified_since_modes(server, where, date, status):
    got, _, body = get(server, f"/{where}f.txt", {"If-Modified-Since": date})
    assert got == status
    assert body == (DATA if status == 200 else b"")


def test_if_modified_since_off_keeps_etags(server):
    _, headers, _ = get(server, "/imsoff/f.txt")
    assert get(server, "/imsoff/f.txt", {"If-None-Match": headers["etag"]})[0] == 304


# --- keepalive_requests ------------------------------------------------------------------


def test_keepalive_requests_closes_after_the_nth(server):
    port = server.ports[1]
    with RawConn(port) as conn:
        for n in (1, 2, 3):
            conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = conn.response()
            assert (status, body) == (200, DATA)
            assert headers["connection"] == ("close" if n == 3 else "keep-alive")
        assert conn.closed_by_peer()


def test_keepalive_requests_pipelined_batch_answers_exactly_n(server):
    port = server.ports[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 3
    assert data.count(b"Connection: keep-alive") == 2
    assert data.count(b"Connection: close") == 1


def test_keepalive_requests_per_location(server):
    port = server.ports[1]
    with RawConn(port) as conn:
        for _ in range(5):
            conn.send(b"GET /nolimit/f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response()[1]["connection"] == "keep-alive"
        conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[1]["connection"] == "close"  # the 6th, where 3 is the limit


def test_keepalive_requests_zero_never_keeps(tmp_path):
    conf = "http {{ access_log off; keepalive_requests 0; "
    conf += "server {{ listen 127.0.0.1:{port}; root {root}; }} }}"
    srv = RunningServer(tmp_path, conf, {"f.txt": DATA}).start()
    try:
        with RawConn(srv.port) as conn:
            conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response()[1]["connection"] == "close"
            assert conn.closed_by_peer()
    finally:
        srv.stop()
