"""TRACE and CONNECT: nginx refuses both with 405 before any location is looked at (a
`return` does not answer them), sends no Allow and closes. CONNECT with an authority
(`host:port`, the form RFC 9110 §9.3.6 gives it) is a 400 in nginx 1.22, as in webserv.
Side by side with nginx where it is installed."""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer, wait_until

BLOCK = """
        server_name localhost;
        root {root};
        location / { return 200 "returned"; }
        location /static/ { }
"""

# (request head, status)
CASES = [
    ("TRACE / HTTP/1.1\r\nHost: localhost\r\n", 405),
    ("TRACE /static/a.txt HTTP/1.1\r\nHost: localhost\r\n", 405),
    ("TRACE / HTTP/1.0\r\n", 405),
    ("TRACE / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n", 405),  # + a body
    ("TRACE / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n", 405),
    ("CONNECT / HTTP/1.1\r\nHost: localhost\r\n", 405),
    ("CONNECT localhost:8080 HTTP/1.1\r\nHost: localhost\r\n", 400),
    ("CONNECT localhost HTTP/1.1\r\nHost: localhost\r\n", 400),
]
BODIES = {"Content-Length: 5": b"hello", "chunked": b"5\r\nhello\r\n0\r\n\r\n"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace")
    inner = BLOCK.replace("{", "{{").replace("}", "}}").replace("{{root}}", "{root}")
    conf = "error_log {tmp}/trace-error.log info;\n"
    conf += "http {{ access_log off; server {{ listen 127.0.0.1:{port};" + inner + "}} }}\n"
    ws = RunningServer(tmp / "webserv", conf, {"static/a.txt": "a\n"}).start()
    ng = None
    if NGINX is not None:
        (tmp / "nginx").mkdir()
        ng = RunningNginx(tmp / "nginx", ws.root, BLOCK).start()
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def ask(port: int, head: str) -> tuple[int, str | None, bool]:
    """(status, Allow, whether the server closed), a GET pipelined behind the request."""
    body = next((b for k, b in BODIES.items() if k in head), b"")
    with RawConn(port) as conn:
        conn.send(head.encode() + b"\r\n" + body + b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        return status, headers.get("allow"), conn.closed_by_peer()


@pytest.mark.parametrize("head, status", CASES, ids=[c[0].split("\r\n")[0] for c in CASES])
def test_refused_before_any_location(servers, head, status):
    ws, ng = servers
    assert ask(ws.port, head) == (status, None, True)  # not 200 from `return`: closed
    with RawConn(ws.port) as conn:  # the server serves on
        conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[::2] == (200, b"returned")
    if ng is not None:
        assert ask(ng.port, head) == ask(ws.port, head)


def test_logged_as_nginx_does(servers):
    ws, _ = servers
    ask(ws.port, "CONNECT / HTTP/1.1\r\nHost: localhost\r\n")
    log = ws.tmp / "trace-error.log"
    line = wait_until(lambda: [x for x in log.read_text().splitlines() if "CONNECT" in x])[0]
    assert "[info]" in line and "client sent CONNECT method" in line  # a client's doing
