"""auth_basic_user_file with variables: the user file is chosen per request (`$arg_f`,
`$host`), relative names from the prefix; a file that does not exist, an empty name and a
name that escapes nothing special are answered as nginx answers them (500 for a file that
cannot be read, 401 for a wrong user), and the server serves on."""

from __future__ import annotations

import base64

import pytest
from support import RawConn, RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /var/ {{ auth_basic "by arg"; auth_basic_user_file $arg_f; }}
        location /host/ {{ auth_basic "by host"; auth_basic_user_file users/$host; }}
    }}
}}
"""
FILES = {"var/f.txt": "var\n", "host/f.txt": "host\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth-var")
    srv = RunningServer(tmp, CONF, FILES)
    (tmp / "users").mkdir()
    (tmp / "one.htpasswd").write_text("alice:{PLAIN}a-secret\n")
    (tmp / "two.htpasswd").write_text("bob:{PLAIN}b-secret\n")
    (tmp / "users" / "a.test").write_text("carol:{PLAIN}c-secret\n")
    (tmp / "users" / "b.test").write_text("dave:{PLAIN}d-secret\n")
    srv.start()
    yield srv
    srv.stop()


def ask(port: int, target: str, user: str | None, password: str = "", host: str = "x"):
    auth = ""
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auth = f"Authorization: Basic {token}\r\n"
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode())
        status, headers, body = conn.response()
        if status < 500:  # kept alive: the connection serves another request
            conn.send(b"GET /var/f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response()[0] == 401
        return status, headers.get("www-authenticate"), body


def test_the_file_named_by_an_argument(server):
    assert ask(server.port, "/var/f.txt?f=one.htpasswd", "alice", "a-secret")[0] == 200
    assert ask(server.port, "/var/f.txt?f=two.htpasswd", "bob", "b-secret")[0] == 200
    # each user only in their own file
    assert ask(server.port, "/var/f.txt?f=two.htpasswd", "alice", "a-secret")[:2] == (
        401,
        'Basic realm="by arg"',
    )
    absolute = server.tmp / "one.htpasswd"
    assert ask(server.port, f"/var/f.txt?f={absolute}", "alice", "a-secret")[0] == 200
    assert ask(server.port, "/var/f.txt?f=one.htpasswd", "alice", "wrong")[0] == 401
    assert ask(server.port, "/var/f.txt?f=one.htpasswd", None)[0] == 401


@pytest.mark.parametrize("query", ["?f=nx", "", "?f=", "?f=users"])
def test_a_file_that_cannot_be_read_is_500(server, query):
    """Missing, empty name, a directory: nothing to check against (nginx: 500 too)."""
    assert ask(server.port, f"/var/f.txt{query}", "alice", "a-secret")[0] == 500
    assert ask(server.port, "/var/f.txt?f=one.htpasswd", "alice", "a-secret")[0] == 200
    log = (server.tmp / "error.log").read_text()
    assert "unhandled" not in log  # a 500 of its own reason, never a handler's exception
    assert "auth_basic_user_file is empty" in log or "failed" in log


def test_the_file_named_by_the_host(server):
    assert ask(server.port, "/host/f.txt", "carol", "c-secret", host="a.test")[0] == 200
    assert ask(server.port, "/host/f.txt", "dave", "d-secret", host="b.test")[0] == 200
    assert ask(server.port, "/host/f.txt", "dave", "d-secret", host="a.test")[0] == 401


def test_files_named_per_request_are_bounded(tmp_path):
    """A client naming a new file with every request keeps at most USER_FILES_KEPT."""
    from webserv import htpasswd

    (tmp_path / "real").write_text("alice:{PLAIN}a\n")
    files = htpasswd.UserFilePerRequest(lambda name: name, str(tmp_path))
    for n in range(htpasswd.USER_FILES_KEPT * 3):
        assert files.current(f"nx{n}").error is not None
        assert len(files.files) <= htpasswd.USER_FILES_KEPT
    assert b"alice" in files.current("real").users
    assert files.current("").error == "auth_basic_user_file is empty for this request"
