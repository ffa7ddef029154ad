"""The script's output: header section (RFC 3875 §6), redirects, framing, streaming, HEAD."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

import pytest
from cgi_support import alive, error_log, get, read_pids, read_until, still_serves
from support import RawConn


def respond(raw: bytes | str) -> str:
    """The target that makes respond.py print exactly `raw`."""
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    return "/cgi-bin/respond.py?" + quote(raw, safe="")


def test_content_type_and_body_lf_only(server):
    status, fields, body = get(server.port, respond("Content-Type: text/plain\n\nhello\n"))
    assert (status, fields["content-type"], body) == (200, "text/plain", b"hello\n")
    framed_as_whole_or_stream(fields, body)  # no Content-Length from the script


def framed_as_whole_or_stream(fields: dict[str, str], body: bytes) -> None:
    """A script without Content-Length: streamed (chunked), or, when it had ended its
    output by the time its header section was read, answered whole with the length."""
    if "content-length" in fields:
        assert "transfer-encoding" not in fields
        assert int(fields["content-length"]) == len(body)
    else:
        assert fields["transfer-encoding"] == "chunked"


def test_crlf_and_mixed_line_ends(server):
    raw = "Content-Type: text/plain\r\nX-One: 1\nX-Two:  2 \r\n\nbody"
    status, fields, body = get(server.port, respond(raw))
    assert (status, fields["x-one"], fields["x-two"], body) == (200, "1", "2", b"body")


@pytest.mark.parametrize(
    "raw, status, reason",
    [
        ("Status: 404 Not Found\nContent-Type: text/plain\n\nnope", 404, "Not Found"),
        ("Status: 201 Created here\r\nContent-Type: text/plain\r\n\r\nmade", 201, "Created"),
        ("Status: 418\nContent-Type: text/plain\n\nteapot", 418, "I'm a Teapot"),
        ("Status: 503 Busy\nContent-Type: text/plain\nRetry-After: 5\n\nlater", 503, None),
    ],
)
def test_status_header(server, raw, status, reason):
    got, fields, body = get(server.port, respond(raw))
    assert got == status
    assert body == raw.split("\n\n")[-1].split("\r\n\r\n")[-1].encode()
    if reason:
        assert fields[":status-line"] == f"HTTP/1.1 {status} {reason}"
    assert "status" not in fields  # a CGI field, not an HTTP one


def test_status_without_body_or_content_type(server):
    status, fields, body = get(server.port, respond("Status: 204 No Content\n\n"))
    assert (status, body) == (204, b"")
    status, fields, body = get(server.port, respond("Status: 200\n\n"))
    assert (status, fields["content-length"], body) == (200, "0", b"")


def test_other_headers_passed_hop_by_hop_dropped(server):
    raw = (
        "Content-Type: text/plain\nSet-Cookie: a=1\nX-Thing: yes\nConnection: close\n"
        "Transfer-Encoding: gzip\nServer: evil\n\nok"
    )
    with RawConn(server.port, timeout=30) as conn:
        conn.send(f"GET {respond(raw)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, fields, body = conn.response()
        assert (status, body) == (200, b"ok")
        assert fields["set-cookie"] == "a=1" and fields["x-thing"] == "yes"
        assert fields["server"].startswith("webserv")
        assert fields["connection"] == "keep-alive"  # the script's "close" is not ours
        framed_as_whole_or_stream(fields, body)  # (not the script's "gzip")


def test_script_content_length(server):
    raw = "Content-Type: text/plain\nContent-Length: 5\n\nhello"
    status, fields, body = get(server.port, respond(raw))
    assert (status, fields["content-length"], body) == (200, "5", b"hello")
    assert "transfer-encoding" not in fields


def test_script_content_length_excess_dropped(server):
    raw = "Content-Type: text/plain\nContent-Length: 3\n\nhello world"
    with RawConn(server.port, timeout=30) as conn:
        for _ in range(2):  # the connection stays in step
            conn.send(f"GET {respond(raw)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            status, fields, body = conn.response()
            assert (status, body) == (200, b"hel")


def test_script_content_length_short_aborts(server):
    raw = "Content-Type: text/plain\nContent-Length: 100\n\nonly this"
    with RawConn(server.port, timeout=30) as conn:
        conn.send(f"GET {respond(raw)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        with pytest.raises(ConnectionError):
            conn.response()  # the body ends early: the connection is cut, never reused
    still_serves(server)


def test_local_location_is_an_internal_redirect(server):
    status, fields, body = get(server.port, respond("Location: /static.txt\n\n"))
    assert (status, body) == (200, b"static file\n")
    assert "location" not in fields
    # to another script, with a query; a POST becomes a GET without the body
    target = respond("Location: /cgi-bin/rawenv.py/p?x=1\n\n")
    status, _, body = get(server.port, target, "POST", "Content-Length: 4\r\n", b"data")
    assert status == 200
    env = json.loads(body)["env"]
    assert (env["REQUEST_METHOD"], env["QUERY_STRING"], env["PATH_INFO"]) == ("GET", "x=1", "/p")
    assert "CONTENT_LENGTH" not in env


def test_local_redirect_to_missing_file_404(server):
    status, _, _ = get(server.port, respond("Location: /no/such/file\n\n"))
    assert status == 404


def test_internal_redirect_loop_stops(server):
    status, fields, _ = get(server.port, "/cgi-bin/loop.py")
    assert status == 500
    assert "internal redirection cycle" in error_log(server)
    still_serves(server)


def test_absolute_location_is_a_302(server):
    status, fields, body = get(server.port, respond("Location: http://example.com/x?y=1\n\n"))
    assert (status, fields["location"]) == (302, "http://example.com/x?y=1")
    raw = "Status: 301 Moved\nLocation: /elsewhere\nContent-Type: text/plain\n\nmoved"
    status, fields, body = get(server.port, respond(raw))  # with a Status: sent as it is
    assert (status, fields["location"], body) == (301, "/elsewhere", b"moved")


@pytest.mark.parametrize(
    "raw, why",
    [
        ("this line is not a header\nContent-Type: text/plain\n\nbody", "malformed header line"),
        ("Content-Type: text/plain\n continued\n\nbody", "folded"),
        ("Bad Name: x\nContent-Type: text/plain\n\nbody", "malformed header line"),
        ("Status: abc\nContent-Type: text/plain\n\nbody", "invalid Status"),
        ("Status: 99\nContent-Type: text/plain\n\nbody", "invalid Status"),
        ("X-Only: 1\n\nbody", "no Content-Type, Location or Status"),
        ("\nbody without headers", "empty header section"),
        ("Content-Length: x\nContent-Type: text/plain\n\nbody", "invalid Content-Length"),
        ("Status: 200\n\nbody but no type", "without Content-Type"),
    ],
)
def test_bad_header_section_502(server, raw, why):
    with RawConn(server.port, timeout=30) as conn:
        conn.send(f"GET {respond(raw)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, fields, _ = conn.response()
        assert status == 502
        assert fields["connection"] == "keep-alive"  # the client did nothing wrong
        conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[2] == b"static file\n"
    assert why in error_log(server)
    still_serves(server)


def test_demo_bad_headers_502(server):
    status, _, body = get(server.port, "/cgi-bin/bad_headers.py")
    assert status == 502 and b"502 Bad Gateway" in body
    assert 'CGI "/cgi-bin/bad_headers.py" sent a malformed header section' in error_log(server)


def test_no_header_end_502(server):
    status, _, _ = get(server.port, respond("Content-Type: text/plain\n"))
    assert status == 502
    assert "before its header section was complete" in error_log(server)


def test_crash_before_headers_502_with_stderr_logged(server):
    with RawConn(server.port, timeout=30) as conn:
        conn.send(b"GET /cgi-bin/crash.py HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, fields, _ = conn.response()
        assert status == 502 and fields["connection"] == "keep-alive"
        conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[0] == 200
    log = error_log(server)
    assert 'CGI "/cgi-bin/crash.py" stderr: RuntimeError: crash.py crashes on purpose' in log
    assert 'CGI "/cgi-bin/crash.py" exited with status 1 before its header section' in log
    still_serves(server)


def test_head_runs_script_sends_headers_only(server):
    with RawConn(server.port, timeout=30) as conn:
        conn.send(b"HEAD /cgi-bin/env.py HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, fields, body = conn.response(head=True)
        assert (status, body) == (200, b"")
        assert fields["content-type"].startswith("text/html")
        assert "content-length" not in fields and "transfer-encoding" not in fields
        raw = "Content-Type: text/plain\nContent-Length: 5\n\nhello"
        conn.send(f"HEAD {respond(raw)} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, fields, body = conn.response(head=True)
        assert (status, fields["content-length"], body) == (200, "5", b"")
        conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[2] == b"static file\n"  # the connection is still in step


def test_output_streams_before_the_script_exits(server):
    """Line 1 arrives while the script is provably running: it waits for a file that the
    test creates only after reading line 1."""
    tag = "streaming"
    bin_dir = server.root / "cgi-bin"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"GET /cgi-bin/pids.py?mode=stream&tag={tag} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        )
        buf = read_until(sock, b"line 1\n")
        (pid,) = read_pids(bin_dir / f"pids-{tag}")
        assert alive(pid)  # still running: the response is not buffered until the end
        assert b"Transfer-Encoding: chunked" in buf
        (bin_dir / f"go-{tag}").touch()
        buf = read_until(sock, b"0\r\n\r\n", buf)
        assert b"line 2\n" in buf


def test_demo_stream_http10_until_close(server):
    status, fields, body = get(server.port, "/cgi-bin/stream.py?n=2", version="HTTP/1.0")
    assert status == 200
    assert "transfer-encoding" not in fields and "content-length" not in fields
    assert fields["connection"] == "close"
    lines = body.decode().splitlines()
    assert [line.split(" at ")[0] for line in lines] == ["line 1 of 2", "line 2 of 2"]


def test_pipelined_requests_answered_in_order(server):
    one = respond("Content-Type: text/plain\n\none")
    two = respond("Content-Type: text/plain\nContent-Length: 3\n\ntwo")
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            f"GET {one} HTTP/1.1\r\nHost: localhost\r\n\r\n"
            "GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
            f"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
            f"GET {two} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        )
        assert conn.response()[2] == b"one"
        assert conn.response()[2] == b"static file\n"
        assert json.loads(conn.response()[2])["read"] == 3
        assert conn.response()[2] == b"two"
