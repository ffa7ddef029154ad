"""Validators, conditional requests (304/412) and ranges (206/416) on a real server."""

from __future__ import annotations

import email.utils
import os
import re

import pytest
from support import RawConn, RunningServer, request

CONF = """
http {{
    access_log off;
    types {{ text/plain txt; }}
    open_file_cache off;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""
DATA = b"0123456789abcdefghij"  # 20 bytes
MTIME = 1704164645  # Tue, 02 Jan 2024 03:04:05 GMT
LAST_MODIFIED = "Tue, 02 Jan 2024 03:04:05 GMT"
ETAG = f'"{MTIME:x}-{len(DATA):x}"'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = {"f.txt": DATA, "g.txt": DATA, "empty.txt": b""}
    srv = RunningServer(tmp_path_factory.mktemp("conditional"), CONF, files)
    for name in ("f.txt", "g.txt"):
        os.utime(srv.root / name, (MTIME, MTIME))
    yield srv.start()
    srv.stop()


def get(server, headers, method="GET", path="/f.txt"):
    return request(server.port, path, method=method, headers=headers)


def test_validators(server):
    status, headers, body = get(server, {})
    assert (status, body) == (200, DATA)
    assert headers["etag"] == ETAG == '"65937d25-14"'  # nginx's shape: hex mtime - hex size
    assert headers["last-modified"] == LAST_MODIFIED
    assert headers["accept-ranges"] == "bytes"


def assert_not_modified(status, headers, body):
    assert status == 304
    assert body == b""
    assert headers["etag"] == ETAG
    assert headers["last-modified"] == LAST_MODIFIED
    assert "content-length" not in headers and "content-type" not in headers


@pytest.mark.parametrize(
    "value",
    [ETAG, f'"other", {ETAG}', f'"a","b" , {ETAG}', "*", f"W/{ETAG}", f'W/"x", W/{ETAG}'],
)
def test_if_none_match_304(server, value):
    assert_not_modified(*get(server, {"If-None-Match": value}))


@pytest.mark.parametrize("value", ['"other"', f'"{MTIME:x}-15"', ETAG[1:-1], f'"x", W/"{MTIME:x}"'])
def test_if_none_match_200(server, value):
    status, headers, body = get(server, {"If-None-Match": value})
    assert (status, body, headers["etag"]) == (200, DATA, ETAG)


def test_if_modified_since(server):
    assert_not_modified(*get(server, {"If-Modified-Since": LAST_MODIFIED}))
    # nginx's default `if_modified_since exact`: a later date is not the file's date → 200
    # (`before` answers it with 304: tests/http/test_headers_caching.py)
    status, _, body = get(server, {"If-Modified-Since": "Wed, 03 Jan 2024 00:00:00 GMT"})
    assert (status, body) == (200, DATA)
    status, _, body = get(server, {"If-Modified-Since": "Tue, 02 Jan 2024 03:04:04 GMT"})
    assert (status, body) == (200, DATA)
    status, _, body = get(server, {"If-Modified-Since": "not a date"})
    assert (status, body) == (200, DATA)


def test_if_none_match_wins_over_if_modified_since(server):
    headers = {"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED}
    status, _, body = get(server, headers)
    assert (status, body) == (200, DATA)


def test_head_conditional_304(server):
    assert_not_modified(*get(server, {"If-None-Match": ETAG}, method="HEAD"))


def test_304_keeps_connection_and_has_no_body(server):
    req = f"GET /f.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {ETAG}\r\n\r\n".encode()
    with RawConn(server.port) as conn:
        conn.send(req + b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_not_modified(*conn.response())
        status, headers, body = conn.response()
        assert (status, body) == (200, DATA)
        assert headers["connection"] == "keep-alive"


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": '"other"'},
        {"If-Match": f"W/{ETAG}"},  # If-Match needs a strong comparison
        {"If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"},
        {"If-Match": '"other"', "Range": "bytes=0-1"},
    ],
)
def test_precondition_failed_412(server, headers):
    status, got, body = get(server, headers)
    assert status == 412
    assert got["content-type"] == "text/html"
    assert b"<title>412 Precondition Failed</title>" in body
    assert got["content-length"] == str(len(body))
    assert server.alive()


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": ETAG},
        {"If-Match": f'"a", {ETAG}'},
        {"If-Match": "*"},
        {"If-Unmodified-Since": LAST_MODIFIED},
        {"If-Unmodified-Since": "Fri, 01 Jan 2038 00:00:00 GMT"},
    ],
)
def test_precondition_passes(server, headers):
    status, _, body = get(server, headers)
    assert (status, body) == (200, DATA)


def test_etag_changes_with_the_file(server):
    path = server.root / "g.txt"
    assert get(server, {"If-None-Match": ETAG}, path="/g.txt")[0] == 304
    path.write_bytes(DATA + b"!")
    os.utime(path, (MTIME + 16, MTIME + 16))
    status, headers, body = get(server, {"If-None-Match": ETAG}, path="/g.txt")
    assert (status, body) == (200, DATA + b"!")
    assert headers["etag"] == f'"{MTIME + 16:x}-15"'
    assert headers["last-modified"] == email.utils.formatdate(MTIME + 16, usegmt=True)


@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("bytes=0-4", 0, 4),
        ("bytes=5-5", 5, 5),
        ("bytes=15-", 15, 19),  # open-ended
        ("bytes=-3", 17, 19),  # suffix
        ("bytes=-50", 0, 19),  # a suffix longer than the file is the whole file
        ("bytes=10-999", 10, 19),
        ("BYTES = 2-3", 2, 3),
        ("bytes=0-1,30-40", 0, 1),  # the unsatisfiable part is dropped
        ("bytes=0-5,3-8", 0, 8),  # overlapping ranges are merged (RFC 9110 §14.2)
    ],
)
def test_single_range(server, spec, first, last):
    status, headers, body = get(server, {"Range": spec})
    assert status == 206
    assert body == DATA[first : last + 1]
    assert headers["content-range"] == f"bytes {first}-{last}/20"
    assert headers["content-length"] == str(last - first + 1)
    assert headers["content-type"] == "text/plain"
    assert headers["etag"] == ETAG


def parse_multipart(headers, body):
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", headers["content-type"])
    assert match, headers["content-type"]
    boundary = match.group(1).encode()
    assert body.startswith(b"\r\n--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    parts = []
    for chunk in body[: -len(boundary) - 8].split(b"\r\n--" + boundary + b"\r\n")[1:]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        parts.append((fields[b"Content-Type"], fields[b"Content-Range"], content))
    return parts


def test_multiple_ranges_multipart(server):
    status, headers, body = get(server, {"Range": "bytes=0-1,5-6,-2"})
    assert status == 206
    assert headers["content-length"] == str(len(body))
    assert "content-range" not in headers
    assert parse_multipart(headers, body) == [
        (b"text/plain", b"bytes 0-1/20", b"01"),
        (b"text/plain", b"bytes 5-6/20", b"56"),
        (b"text/plain", b"bytes 18-19/20", b"ij"),
    ]


def test_multipart_on_keepalive_then_next_request(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2,4-\r\n\r\n")
        status, headers, body = conn.response()
        assert status == 206
        assert [p[1:] for p in parse_multipart(headers, body)] == [
            (b"bytes 1-2/20", b"12"),
            (b"bytes 4-19/20", DATA[4:]),
        ]
        conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, DATA)


@pytest.mark.parametrize("spec", ["bytes=20-", "bytes=30-40", "bytes=-0", "bytes=25-30,40-"])
def test_unsatisfiable_416(server, spec):
    status, headers, body = get(server, {"Range": spec})
    assert status == 416
    assert headers["content-range"] == "bytes */20"
    assert b"<title>416 Requested Range Not Satisfiable</title>" in body
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"  # request() asked for close
    assert server.alive()


@pytest.mark.parametrize("spec", ["items=0-1", "bytes 0-1", "bytes0-1"])
def test_other_range_unit_is_ignored(server, spec):
    status, headers, body = get(server, {"Range": spec})
    assert (status, body) == (200, DATA)
    assert "content-range" not in headers


@pytest.mark.parametrize(
    "spec", ["bytes=abc", "bytes=5-2", "bytes=1-2-3", "bytes=-", "bytes=0x1-2", "bytes=0-1,x"]
)
def test_invalid_range_set_is_416(server, spec):
    # nginx rejects a bad `bytes=` set (RFC 9110 §14.2: a server MAY ignore or reject it)
    status, headers, body = get(server, {"Range": spec})
    assert status == 416
    assert headers["content-range"] == "bytes */20"
    assert server.alive()


def test_more_bytes_than_the_file_is_200(server):
    status, headers, body = get(server, {"Range": "bytes=0-19,5-6"})
    assert (status, body, headers["accept-ranges"]) == (200, DATA, "bytes")


def test_range_on_empty_file_is_200(server):
    for spec in ("bytes=0-5", "bytes=-5"):
        status, headers, body = get(server, {"Range": spec}, path="/empty.txt")
        assert (status, headers["content-length"], body) == (200, "0", b"")


def test_range_ignored_for_head(server):
    # RFC 9110 §14.2: range handling is defined for GET only (nginx answers HEAD with 206)
    status, headers, body = get(server, {"Range": "bytes=0-1"}, method="HEAD")
    assert (status, headers["content-length"], body) == (200, "20", b"")


def test_not_modified_beats_range(server):
    assert_not_modified(*get(server, {"Range": "bytes=0-1", "If-None-Match": ETAG}))


@pytest.mark.parametrize(
    "if_range, partial",
    [
        (ETAG, True),
        ('"other"', False),
        (f"W/{ETAG}", False),  # If-Range needs a strong validator
        (LAST_MODIFIED, True),
        ("Tue, 02 Jan 2024 03:04:06 GMT", False),  # If-Range dates must match exactly
        ("garbage", False),
    ],
)
def test_if_range(server, if_range, partial):
    status, headers, body = get(server, {"Range": "bytes=5-", "If-Range": if_range})
    if partial:
        assert (status, body, headers["content-range"]) == (206, DATA[5:], "bytes 5-19/20")
    else:
        assert (status, body) == (200, DATA)
        assert "content-range" not in headers
