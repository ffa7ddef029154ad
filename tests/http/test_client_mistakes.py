"""A client's mistakes: answered at once, the connection closed, and logged at info.

Issue 9: an HTTP/0.9 request line (`GET /` and no version) waited for client_header_timeout
and then got a 408; unknown methods and unsupported versions (501, 505) went to the error log
at [error], so any client could fill it. An HTTP/0.9 request is the request line alone: it
is answered at once (505, as any other major version; the status line is 1.1's), and what a
client can cause is logged at info, as nginx does. A server failure (here a CGI interpreter
that does not exist: 502) stays at [error].
"""

from __future__ import annotations

import re

import pytest
from support import RawConn, RunningServer, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        client_header_timeout 120s;  # far longer than any wait below
        location /broken-cgi/ {{ cgi .py /nonexistent/python3; }}
    }}
}}
"""
FILES = {"index.html": "home\n", "broken-cgi/x.py": "print('never runs')\n"}
NEXT = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("mistakes"), CONF, FILES).start()
    yield srv
    srv.stop()


def error_lines(server) -> list[str]:
    return (server.tmp / "error.log").read_text(errors="replace").splitlines()


def assert_answered_and_closed(server, pieces: list[bytes], status: int, answered_before=0):
    with RawConn(server.port) as conn:
        for piece in pieces:
            conn.send(piece)
        for _ in range(answered_before):
            assert conn.response()[::2] == (200, b"home\n")
        got, headers, body = conn.response()  # at once: the header timeout is 120 s
        assert got == status, body
        assert headers["connection"] == "close"
        assert headers["content-length"] == str(len(body))
        assert conn.closed_by_peer()
        assert conn.buf == b""
    assert server.alive()


HTTP09 = [
    pytest.param([b"GET /\r\n"], id="get-root"),
    pytest.param([b"GET /index.html?x=1\r\n"], id="get-with-query"),
    pytest.param([b"GET /\n"], id="bare-lf"),
    pytest.param([b"HEAD /index.html\r\n"], id="head"),
    pytest.param([b"GET /", b"\r\n"], id="split-before-crlf"),
    pytest.param([b"GET /\r", b"\n"], id="split-inside-crlf"),
    pytest.param([b"GET ", b"/", b"\r\n"], id="split-at-spaces"),
    pytest.param([b"GET /\r\nHost: x\r\n"], id="then-header-lines"),
    pytest.param([b"GET /\r\n" + NEXT], id="then-a-request"),
    pytest.param([b"GET /\r\n\r\n"], id="then-an-empty-line"),
    pytest.param([b"GET / HTTP/0.9\r\nHost: x\r\n\r\n"], id="explicit-version"),
]


@pytest.mark.parametrize("pieces", HTTP09)
def test_http09_answered_at_once(server, pieces):
    assert_answered_and_closed(server, pieces, 505)


@pytest.mark.parametrize("mode", ["pipelined", "after-reading"])
def test_http09_after_a_keepalive_request(server, mode):
    """The request line of a later request on the connection (the parser still has the
    first one's version)."""
    if mode == "pipelined":
        assert_answered_and_closed(server, [NEXT + b"GET /\r\n"], 505, answered_before=1)
    else:
        with RawConn(server.port) as conn:
            conn.send(NEXT)
            assert conn.response()[::2] == (200, b"home\n")
            conn.send(b"GET /index.html\r\n")
            got, headers, _ = conn.response()
            assert (got, headers["connection"]) == (505, "close")
            assert conn.closed_by_peer()


@pytest.mark.parametrize("version", [b"2.0", b"3.0", b"0.8"])
def test_other_major_version_answered_at_the_request_line(server, version):
    """No need to wait for the header section: the request line says it all (nginx too)."""
    assert_answered_and_closed(server, [b"GET / HTTP/" + version + b"\r\n"], 505)


def test_http09_logged_with_its_request_line(server):
    assert_answered_and_closed(server, [b"GET /logged-09\r\n"], 505)
    wait_until(
        lambda: any('"GET /logged-09 HTTP/0.9" 505 ' in line for line in server.access_lines())
    )


# what clients send, and the info line each leaves (nothing at [error] or [warn])
MISTAKES = [
    (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "unknown method"),
    (b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n", 501, 'method "PROPFIND" is not implemented'),
    (b"GET /\r\n", 505, "HTTP/0.9 is not supported"),
    (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505, "HTTP/0.9 is not supported"),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0 is not supported"),
    (b"GET / HTTP/3.0\r\n", 505, "HTTP/3.0 is not supported"),
    (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "unknown method"),
    (b"GARBAGE\r\n\r\n", 400, "unknown method"),
    (b"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400, "malformed request"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without Host"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request line too long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 9000 + b"\r\n\r\n", 431, "header field too long"),
]


@pytest.mark.parametrize(("data", "status", "logged"), MISTAKES, ids=[m[2] for m in MISTAKES])
def test_client_mistake_logged_at_info_only(server, data, status, logged):
    before = len(error_lines(server))
    assert_answered_and_closed(server, [data], status)
    new = wait_until(lambda: error_lines(server)[before:])
    assert any("[info]" in line and logged in line for line in new), new
    assert not [line for line in new if re.search(r"\[(error|warn|crit|alert)\]", line)]


def test_mistakes_leave_nothing_at_the_default_level(webserv):
    """At nginx's default level (notice) none of it is in the error log, while a server
    failure is."""
    srv = webserv(
        CONF.replace("error_log {tmp}/error.log info;", "error_log {tmp}/error.log;"), FILES
    )
    for data, status, _ in MISTAKES:
        with RawConn(srv.port) as conn:
            conn.send(data)
            assert conn.response()[0] == status
            assert conn.closed_by_peer()
    with RawConn(srv.port) as conn:
        conn.send(b"GET /broken-cgi/x.py HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[0] == 502
    lines = wait_until(lambda: [line for line in error_lines(srv) if "client" in line])
    assert len(lines) == 1 and "[error]" in lines[0] and "/nonexistent/python3" in lines[0]
    assert srv.alive()


def test_server_failure_stays_at_error(server):
    before = len(error_lines(server))
    with RawConn(server.port) as conn:
        conn.send(b"GET /broken-cgi/x.py HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[0] == 502
    new = wait_until(lambda: error_lines(server)[before:])
    assert any("[error]" in line and "/nonexistent/python3" in line for line in new), new
