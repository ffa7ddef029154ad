"""`max_ranges`, nginx's range-set rules (416 on a bad set, 200 past the limit or the
whole), and If-Range against the validators `add_header` replaces; side by side with nginx
(skipped without it), and the config errors."""

from __future__ import annotations

import re

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer, request

DATA = b"".join(b"X%03dXXXXXX" % i for i in range(100))  # 1000 bytes, as nginx's range.t
BLOCK = """
        root {root};
        location /two/ { max_ranges 2; }
        location /zero/ { max_ranges 0; }
        location /one/ { max_ranges 1; }
        location /lm/ { add_header Last-Modified "Mon, 28 Sep 1970 06:00:00 GMT"; }
        location /nolm/ { add_header Last-Modified ""; }
        location /tag/ { add_header ETag '"mine"'; }
"""
FILES = {f"{d}t.html": DATA for d in ("", "two/", "zero/", "one/", "lm/", "nolm/", "tag/")}


@pytest.fixture(scope="module")
def webserv(tmp_path_factory):
    conf = (
        "http {{ access_log off; server {{ listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    server = RunningServer(tmp_path_factory.mktemp("max_ranges"), conf, FILES)
    server.conf.write_text(server.conf.read_text().replace("@ROOT@", str(server.root)))
    server.start()
    yield server
    server.stop()


def get(port, path, headers):
    return request(port, path, headers=headers)


@pytest.mark.parametrize(
    ("path", "spec", "status"),
    [
        ("/two/t.html", "bytes=0-9, -10", 206),
        ("/two/t.html", "bytes=0-9, -10, 10000-", 206),  # the unsatisfiable one does not count
        ("/two/t.html", "bytes=0-9, -10, 10-19", 200),
        ("/two/t.html", "bytes=0-9, -10, alpha", 416),  # the error comes first
        ("/two/t.html", "bytes=0-9, -10, 10-19, alpha", 200),  # the limit comes first
        ("/one/t.html", "bytes=0-9", 206),
        ("/one/t.html", "bytes=0-9,20-29", 200),
        ("/t.html", "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(100)), 206),
        ("/t.html", "bytes=0-10001, 0-0", 200),  # more bytes than the file
        ("/t.html", "bytes=alpha", 416),
        ("/t.html", "bytes=10-alpha", 416),
        ("/t.html", "bytes=10", 416),
        ("/t.html", "bytes=10-11 12-", 416),
        ("/t.html", "items=0-1", 200),
    ],
)
def test_range_sets(webserv, path, spec, status):
    got, headers, body = get(webserv.port, path, {"Range": spec})
    assert got == status
    if status == 200:
        assert (body, headers["accept-ranges"]) == (DATA, "bytes")
    elif status == 416:
        assert headers["content-range"] == "bytes */1000"
    assert webserv.alive()


def test_max_ranges_zero_turns_ranges_off(webserv):
    for headers in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=alpha"}):
        status, got, body = get(webserv.port, "/zero/t.html", headers)
        assert (status, body) == (200, DATA)
        assert "accept-ranges" not in got and "content-range" not in got
    # the next location along still has them, on the same connection
    with RawConn(webserv.port) as conn:
        conn.send(b"GET /zero/t.html HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n")
        assert conn.response()[0] == 200
        conn.send(b"GET /t.html HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n")
        assert conn.response()[::2] == (206, b"X0")


@pytest.mark.parametrize(
    ("path", "if_range", "partial"),
    [
        ("/lm/t.html", "Mon, 28 Sep 1970 06:00:00 GMT", True),  # nginx's range_if_range.t
        ("/lm/t.html", "Monday, 28-Sep-70 06:00:00 GMT", True),  # the same date, RFC 850 form
        ("/lm/t.html", "Mon, 28 Sep 1970 06:00:01 GMT", False),
        ("/lm/t.html", "wrong", False),
        ("/nolm/t.html", "wrong", False),
        ("/tag/t.html", '"mine"', True),
        ("/tag/t.html", 'W/"mine"', False),  # If-Range needs a strong match
    ],
)
def test_if_range_against_added_validators(webserv, path, if_range, partial):
    status, headers, body = get(webserv.port, path, {"Range": "bytes=0-9", "If-Range": if_range})
    assert status == (206 if partial else 200)
    assert body == (DATA[:10] if partial else DATA)


def test_if_range_with_the_file_date_when_add_header_replaced_it(webserv):
    _, headers, _ = get(webserv.port, "/t.html", {})
    file_date = headers["last-modified"]
    status, headers, _ = get(
        webserv.port, "/lm/t.html", {"Range": "bytes=0-9", "If-Range": file_date}
    )
    assert status == 200  # the answer's Last-Modified is 1970's, not the file's
    assert headers["last-modified"] == "Mon, 28 Sep 1970 06:00:00 GMT"
    _, headers, _ = get(webserv.port, "/nolm/t.html", {"Range": "bytes=0-9", "If-Range": file_date})
    assert "last-modified" not in headers
    status, *_ = get(webserv.port, "/nolm/t.html", {"Range": "bytes=0-9", "If-Range": file_date})
    assert status == 200  # no Last-Modified: no date can match


def _shape(answer):
    status, headers, body = answer
    kept = {k: v for k, v in headers.items() if k in ("content-range", "accept-ranges")}
    # the boundary (and with it the length of a multipart body) is each server's own
    return status, kept, re.sub(rb"\d{20}", b"B", body) if status == 206 else len(body)


NGINX_CASES = [
    ("/two/t.html", "bytes=0-9, -10, 10-19"),
    ("/two/t.html", "bytes=0-9, -10, alpha"),
    ("/two/t.html", "bytes=0-9, -10, 10-19, alpha"),
    ("/two/t.html", "bytes=0-9, -10, 10000-"),
    ("/zero/t.html", "bytes=0-9"),
    ("/zero/t.html", "bytes=alpha"),
    ("/one/t.html", "bytes=0-9,20-29"),
    ("/t.html", "bytes=0-10001, 0-0"),
    ("/t.html", "bytes=5-3"),
    ("/t.html", "bytes=-0"),
    ("/t.html", "bytes=0-3;"),
    ("/t.html", "bytes=99999999999999999999-"),
]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_same_as_nginx(webserv, tmp_path):
    nginx = RunningNginx(tmp_path, webserv.root, BLOCK).start()
    try:
        for path, spec in NGINX_CASES:
            ours = _shape(get(webserv.port, path, {"Range": spec}))
            theirs = _shape(get(nginx.port, path, {"Range": spec}))
            if ours[0] == 416:  # the error page names its server
                ours, theirs = ours[:2], theirs[:2]
            assert ours == theirs, (path, spec)
    finally:
        nginx.stop()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("max_ranges;", 'invalid number of arguments in "max_ranges" directive'),
        ("max_ranges 1 2;", 'invalid number of arguments in "max_ranges" directive'),
        ("max_ranges -1;", 'invalid number "-1" in "max_ranges" directive'),
        ("max_ranges many;", 'invalid number "many" in "max_ranges" directive'),
    ],
)
def test_config_errors(tmp_path, line, reason):
    from webserv.config.errors import ConfigError
    from webserv.config.load import load

    conf = tmp_path / "webserv.conf"
    conf.write_text(f"http {{\n    server {{\n        listen 8080;\n        {line}\n    }}\n}}\n")
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (4, reason)
