"""Nested `location` blocks over real sockets, side by side with nginx where it is installed.

Each location answers with its own name (`return 200 NAME`), so the body says which one
nginx's search chose; the locations without a `return` serve files, which shows what an
inner location inherits (root, alias, add_header) and what it does not (its parent's
`return`). Without nginx the expected names below still pin webserv's answers.
"""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer, request

BLOCK = r"""
        root {root};
        location /a/ {
            add_header X-Outer a;
            return 200 "a";
            location /a/b/ {
                return 200 "a/b";
                location ~ \.txt$ { return 200 "a/b txt"; }
            }
            location ~ \.png$ { return 200 "a png"; }
            location ^~ /a/s/ { return 200 "a/s"; }
            location = /a/e { return 200 "a=e"; }
            location /a/inherit/ { }
        }
        location /al/ {
            alias {root}/data/;
            location /al/sub/ { }
            location ~ \.txt$ { }
            location /al/root/ { root {root}/other; }
        }
        location ~ \.gif$ {
            return 200 "gif";
            location ~ ^/x { return 200 "gif x"; }
        }
        location ~ \.png$ { return 200 "top png"; }
        location /p.gif { return 200 "p"; }
"""
FILES = {
    "a/inherit/f.txt": "inherited root",
    "data/sub/f.txt": "alias sub",
    "data/x.txt": "alias regex",
    "other/al/root/f.html": "own root",
    "data/root/f.txt": "alias regex 2",
}
# path → what answers: a location's name, or a file's content (status 200 either way)
CASES = {
    "/a/": "a",
    "/a/x": "a",
    "/a/b/": "a/b",
    "/a/b/c": "a/b",
    "/a/b/c.txt": "a/b txt",  # a regex nested two deep
    "/a/b/c.png": "a png",  # /a/b/ has no regex: its parent's are tried next
    "/a/c.png": "a png",  # an inner regex beats the server's
    "/a/c.gif": "gif",  # no inner match: the server's regexes
    "/x/c.gif": "gif x",  # a regex nested in a regex
    "/y/c.gif": "gif",
    "/a/s/c.png": "top png",  # an inner ^~ skips its parent's regexes, not the server's
    "/a/s/c": "a/s",
    "/a/e": "a=e",
    "/a/ex": "a",
    "/a/inherit/f.txt": "inherited root",  # the parent's root, not its return
    "/al/sub/f.txt": "alias sub",  # the parent's alias replaces the parent's prefix
    "/al/x.txt": "alias regex",
    "/al/root/f.html": "own root",  # an inner root ends the inherited alias
    "/al/root/f.txt": "alias regex 2",  # the parent's regex beats the inner prefix
    "/p.gif": "gif",  # a prefix that is the whole URI still yields to a regex (nginx 1.22)
    "/p.gifx": "p",
}


def answer(port: int, path: str) -> tuple[int, str, str | None]:
    status, headers, body = request(port, path)
    return status, body.decode(errors="replace") if status == 200 else "", headers.get("x-outer")


@pytest.fixture(scope="module")
def webserv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nested")
    conf = (
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    server = RunningServer(tmp, conf, FILES)
    server.conf.write_text(server.conf.read_text().replace("@ROOT@", str(server.root)))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(("path", "chosen"), CASES.items(), ids=list(CASES))
def test_nested_search_order(webserv, path, chosen):
    assert answer(webserv.port, path)[:2] == (200, chosen)


def test_add_header_is_inherited_by_nested_locations(webserv):
    # /a/ has add_header and its nested ones none: they take the parent's list
    assert answer(webserv.port, "/a/b/c")[2] == "a"
    assert answer(webserv.port, "/a/inherit/f.txt")[2] == "a"
    assert answer(webserv.port, "/al/x.txt")[2] is None


def test_missing_file_in_a_nested_location_keeps_the_connection(webserv):
    with RawConn(webserv.port) as conn:
        for path in ("/a/inherit/missing", "/al/sub/missing", "/a/inherit/f.txt"):
            conn.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            status, headers, body = conn.response()
            assert headers.get("connection") != "close"
        assert (status, body) == (200, b"inherited root")


def test_dot_segments_never_leave_an_inherited_alias(webserv):
    # dot segments are resolved before the search (webserv stops them at "/"): a path that
    # resolves elsewhere is that location's, never a file above the alias
    with RawConn(webserv.port) as conn:
        conn.send(b"GET /al/sub/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = conn.response()
        assert status == 404 and b"root:" not in body
        conn.send(b"GET /al/sub/f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, b"alias sub")  # the same connection goes on
    assert answer(webserv.port, "/al/sub/%2e%2e/%2e%2e/a/inherit/f.txt")[:2] == (
        200,
        "inherited root",
    )
    assert answer(webserv.port, "/al/sub/f.txt")[:2] == (200, "alias sub")
    assert (webserv.root / "data" / "sub" / "f.txt").read_text() == "alias sub"


@pytest.fixture(scope="module")
def nginx(webserv, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    tmp = tmp_path_factory.mktemp("nested-nginx")
    ng = RunningNginx(tmp, webserv.root, BLOCK).start()
    yield ng
    ng.stop()


@pytest.mark.parametrize("path", [*CASES, "/a/inherit/missing", "/nothing"])
def test_same_as_nginx(webserv, nginx, path):
    assert answer(webserv.port, path) == answer(nginx.port, path)
