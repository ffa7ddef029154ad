"""A `rewrite` redirect's target as nginx builds it (ngx_http_script_regex_end_code): its
captures escaped when the request's path was (quoted_uri), then the whole target unescaped
up to its first `?` for the printable characters above `%` only, so CR, LF, space and `%`
stay escaped and a header line is never split; the request's arguments follow as they came.
Side by side with nginx where it is installed; each answer is followed by another request
on the same connection (nginx-tests' rewrite_unescape.t covers the first cases too)."""

from __future__ import annotations

import pytest
from conformance.nginx import webserv_and_nginx
from support import RawConn

from webserv.rewrite import unescape_redirect

BLOCK = """
        absolute_redirect off;  # (webserv's default; nginx's is on: not what is compared)
        location /t1 { rewrite ^ $arg_r? redirect; }
        location /t2 { rewrite ^/t2/(.*)$ /to/$1 redirect; }
        location /t3 { rewrite ^/t3/(.*)$ http://example.com/x/$1; }
        location /t4 { rewrite ^ /fixed%41%20%25b%3Fq%41 permanent; }
        location /t6 { rewrite "^/t6/([\\s\\S]*)$" /to/$1 redirect; }
        location /to/ { return 200 "to"; }
"""
TARGETS = [
    "/t1?r=http%3A%2F%2Fexample.com%2F%3Ffrom",
    "/t1?r=http%3A%2F%2Fexample.com%0D%0Asplit",
    "/t1?r=%2Fa%7E%7F%e9%25",
    "/t1?r=%2Fa%",
    "/t1?r=%2Fa%4",
    "/t1?r=%2Fa%zz",
    "/t1?r=%2Fa%4zb",
    "/t2/a%20b",
    "/t2/100%25",
    "/t2/a+b",
    "/t2/plain?x=1",
    "/t6/a%0d%0aSet-Cookie:%20x=1",
    "/t3/%3F?k=v",
    "/t4",
    "/t4?k=v",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ws, ng = webserv_and_nginx(tmp_path_factory.mktemp("redirects"), BLOCK)
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def ask(port: int, target: str) -> tuple[int, str | None, bool]:
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, headers, _ = conn.response()
        assert "set-cookie" not in headers
        conn.send(b"GET /to/next HTTP/1.1\r\nHost: localhost\r\n\r\n")  # still serving
        return status, headers.get("location"), conn.response()[0] == 200


@pytest.mark.parametrize("target", TARGETS)
def test_redirect_target_as_nginx(servers, target):
    ws, ng = servers
    status, location, kept = ask(ws.port, target)
    assert status in (301, 302) and location is not None and kept
    assert "\r" not in location and "\n" not in location
    if ng is not None:
        assert ask(ng.port, target) == (status, location, kept)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("http%3A%2F%2Fexample.com%2F%3Ffrom", "http://example.com/?from"),
        ("http%3A%2F%2Fexample.com%0D%0Asplit", "http://example.com%0D%0Asplit"),
        ("/a%3Fb%41", "/a?b%41"),  # the first ?, decoded, ends it
        ("/a?%41", "/a?%41"),
        ("/%41%7e%7F%e9%25%20", "/A~%7F%e9%25%20"),
        ("/a%", "/a"),
        ("/a%4", "/a"),
        ("/a%zz", "/azz"),
        ("/a%4zb", "/ab"),
        ("/plain", "/plain"),
    ],
)
def test_unescape_redirect(raw, want):
    assert unescape_redirect(raw) == want
