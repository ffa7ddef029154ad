"""auth_delay: a request auth_basic refuses is answered with its 401 only after the delay,
while the worker answers everyone else; a right password is not held back, nor a refused
request with a body (answered at once, its body never read).

No assertion is about how long anything took: the 401 is checked to come after answers
that were asked for later (an order, with the whole delay as margin) and not before the
client has seen the others."""

from __future__ import annotations

import base64
import select
import socket

import pytest
from support import RawConn, RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            auth_delay 3s;
            auth_basic "closed";
            auth_basic_user_file {tmp}/users;
            allow_methods GET HEAD POST;
        }}
        location /open/ {{ auth_basic off; }}
    }}
}}
"""


def auth(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth-delay")
    srv = RunningServer(tmp, CONF, {"f.txt": "secret\n", "open/f.txt": "open\n"})
    (tmp / "users").write_text("user:{PLAIN}good\n")
    srv.start()
    yield srv
    srv.stop()


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_a_refusal_waits_while_others_are_answered(server):
    with RawConn(server.port) as bad:
        bad.send(f"GET /f.txt HTTP/1.1\r\nHost: x\r\n{auth('user', 'bad')}\r\n\r\n".encode())
        # asked later, answered first: a right password, an open location, no credentials
        # at all on another location (auth_basic off)
        for request in (
            f"GET /f.txt HTTP/1.1\r\nHost: x\r\n{auth('user', 'good')}\r\n\r\n",
            "GET /open/f.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            with RawConn(server.port) as other:
                other.send(request.encode())
                assert other.response()[0] == 200
                assert not readable(bad.sock)  # the refusal still waits
        status, headers, _ = bad.response()
        assert (status, headers.get("www-authenticate")) == (401, 'Basic realm="closed"')
        bad.send(f"GET /f.txt HTTP/1.1\r\nHost: x\r\n{auth('user', 'good')}\r\n\r\n".encode())
        assert bad.response()[0] == 200  # the same connection goes on


def test_no_credentials_is_held_back_too(server):
    with RawConn(server.port) as bare, RawConn(server.port) as other:
        bare.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        other.send(f"GET /f.txt HTTP/1.1\r\nHost: x\r\n{auth('user', 'good')}\r\n\r\n".encode())
        assert other.response()[0] == 200
        assert not readable(bare.sock)
        assert bare.response()[0] == 401


def test_a_refused_body_is_answered_at_once_and_never_read(server):
    with RawConn(server.port) as waiting, RawConn(server.port) as upload:
        waiting.send(f"GET /f.txt HTTP/1.1\r\nHost: x\r\n{auth('u', 'x')}\r\n\r\n".encode())
        upload.send(b"POST /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        status, headers, _ = upload.response()
        assert (status, headers.get("connection")) == (401, "close")
        assert not readable(waiting.sock)  # answered before the delayed one
        assert waiting.response()[0] == 401
    assert (server.root / "f.txt").read_text() == "secret\n"
