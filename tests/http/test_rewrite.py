"""rewrite (and return with variables) over real sockets: flags, captures, the query
string, server rules before the location, the redirect limit, rewrite_log, hostile input."""

from __future__ import annotations

import pytest
from support import RawConn, RunningServer, request

CONF = r"""
error_log {tmp}/error.log notice;
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        rewrite ^/old/(.*)$ /a/$1;
        rewrite_log on;
        location /a/ {{ }}
        location = /echo {{ return 200 "uri=$uri args=$args host=$host"; }}
        location /last/ {{ rewrite ^/last/(.*)$ /a/$1 last; }}
        location /loop/ {{ rewrite ^ /loop/again last; }}
        location /red/ {{ rewrite ^/red/(.*)$ /x/$1 redirect; }}
        location /redall/ {{ rewrite "^/redall/([\s\S]*)$" /x/$1 redirect; }}
        location /arg/ {{ rewrite ^ /a/$arg_f break; }}
        location /https/ {{ return 301 https://$host$request_uri; }}
        location /q/ {{ rewrite ^/q/(.*)$ /echo?v=$1 last; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name other;
        root {root};
        location = /echo {{ return 200 "other $uri"; }}
    }}
}}
"""
FILES = {"a/f.txt": "a f\n", "secret.txt": "not under /a\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("rewrite"), CONF, FILES).start()
    yield srv
    srv.stop()


def get(server, target, **kw):
    return request(server.port, target, **kw)


def test_server_rules_run_before_the_location_is_chosen(server):
    assert get(server, "/old/f.txt")[::2] == (200, b"a f\n")
    # the route memo keeps the route as the client asked; the rules run for every request
    assert get(server, "/old/f.txt")[::2] == (200, b"a f\n")
    # another server of the same address has no rules
    assert get(server, "/old/f.txt", host="other")[0] == 404


def test_last_and_captures_and_query(server):
    assert get(server, "/last/f.txt")[::2] == (200, b"a f\n")
    assert get(server, "/q/abc?z=1")[::2] == (200, b"uri=/echo args=v=abc&z=1 host=localhost")


def test_redirect_keeps_the_query(server):
    status, headers, _ = get(server, "/red/p?k=v")
    assert (status, headers["location"]) == (302, "/x/p?k=v")


def test_return_with_variables(server):
    status, headers, _ = get(server, "/https/p?q=1", host="localhost")
    assert (status, headers["location"]) == (301, "https://localhost/https/p?q=1")


def test_a_rewrite_loop_is_500_after_ten_and_closes(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /loop/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 500 and headers.get("connection") == "close"
        assert conn.closed_by_peer()
    log = (server.tmp / "error.log").read_text()
    assert "rewrite or internal redirection cycle" in log
    assert get(server, "/last/f.txt")[::2] == (200, b"a f\n")


def test_rewrite_log(server):
    get(server, "/last/f.txt")
    log = (server.tmp / "error.log").read_text()
    assert '"^/last/(.*)$" matches "/last/f.txt"' in log
    assert 'rewritten data: "/a/f.txt", args: ""' in log


def test_crlf_in_a_capture_never_splits_the_redirect(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /redall/a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 302 and "set-cookie" not in headers
        assert headers["location"] == "/x/a%0D%0ASet-Cookie:%20x=1"
        conn.send(b"GET /a/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[::2] == (200, b"a f\n")  # kept alive


@pytest.mark.parametrize(
    "target", ["/arg/?f=../secret.txt", "/arg/?f=..%2fsecret.txt", "/arg/?f=%2e%2e/secret.txt"]
)
def test_dot_segments_from_the_query_never_leave_the_root(server, target):
    # the rewritten path is cleaned: "/a/../secret.txt" is "/secret.txt", served by static
    # under the root as any path is (here: the file at the root, which is inside it)
    status, _, body = get(server, target)
    assert status in (200, 404) and (status == 404 or body == b"not under /a\n")


def test_an_escaped_nul_in_an_argument_stays_escaped(server):
    # $arg_f is the raw value, as nginx's: "%00" names a file "%00" (not found), never a NUL
    with RawConn(server.port) as conn:
        conn.send(b"GET /arg/?f=%00 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 404
        conn.send(b"GET /a/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[::2] == (200, b"a f\n")  # kept alive
    assert get(server, "/a/f.txt")[::2] == (200, b"a f\n")
