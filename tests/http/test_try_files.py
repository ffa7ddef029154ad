"""try_files over real sockets: the SPA fallback, =CODE, the fallback URI's query string,
the redirect limit, alias, and hostile paths (dot segments, encoded dots and slashes, NUL,
very long names, symlinks out of the root, names built from the query string)."""

from __future__ import annotations

import os

import pytest
from support import RawConn, RunningServer, request

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {root}/site;
        location / {{ try_files $uri $uri/ /index.html; }}
        location /spa/ {{ try_files $uri $uri/ /spa/index.html; }}
        location /code/ {{ try_files $uri =404; }}
        location /gone/ {{ try_files $uri $uri.html =410; }}
        location /args/ {{ try_files /args/$arg_f =404; }}
        location /loop/ {{ try_files $uri /loop/again; }}
        location /alias/ {{ alias {root}/aliased/; try_files $uri /alias/fallback.txt; }}
        location /keep/ {{ try_files $uri "/echo?$args"; }}
        location /drop/ {{ try_files $uri /echo; }}
        location = /echo {{ return 200 "uri=$uri args=$args"; }}
    }}
}}
"""
FILES = {
    "site/index.html": "root index\n",
    "site/f.txt": "f\n",
    "site/spa/index.html": "spa index\n",
    "site/spa/app.js": "js\n",
    "site/spa/sub/index.html": "sub index\n",
    "site/spa/%2e%2e": "a file named %2e%2e\n",
    "site/code/f.txt": "code f\n",
    "site/gone/page.html": "page\n",
    "site/args/a.txt": "arg a\n",
    "site/args/default.txt": "arg default\n",
    "aliased/x.txt": "aliased x\n",
    "aliased/fallback.txt": "aliased fallback\n",
    "secret.txt": "SECRET outside the root\n",
}
SPA = b"spa index\n"
ROOT = b"root index\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("try-files"), CONF, FILES)
    spa = srv.root / "site" / "spa"
    os.symlink(srv.root / "secret.txt", spa / "escape.txt")  # a file out of the root
    os.symlink(srv.root, spa / "escdir")  # a directory out of the root
    os.symlink(spa / "app.js", spa / "inside.js")  # inside: served as static serves it
    srv.start()
    yield srv
    srv.stop()


def get(server, target, **kw):
    return request(server.port, target, **kw)


def test_spa_fallback(server):
    assert get(server, "/spa/deep/link/route")[::2] == (200, SPA)
    assert get(server, "/spa/")[::2] == (200, SPA)
    assert get(server, "/spa/app.js")[::2] == (200, b"js\n")
    status, headers, _ = get(server, "/spa/sub")  # `$uri/`: the directory, then its 301
    assert (status, headers["location"]) == (301, "/spa/sub/")
    assert get(server, "/spa/sub/")[::2] == (200, b"sub index\n")
    status, headers, body = get(server, "/spa/nope", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(SPA)))


def test_fallback_is_an_internal_redirect_with_its_own_query(server):
    # nginx: the fallback URI's query string replaces the request's (none: none)
    assert get(server, "/keep/x?a=1&b=2")[::2] == (200, b"uri=/echo args=a=1&b=2")
    assert get(server, "/drop/x?a=1")[::2] == (200, b"uri=/echo args=")


def test_code(server):
    status, headers, body = get(server, "/code/missing")
    assert status == 404 and b"404" in body
    assert get(server, "/code/f.txt")[::2] == (200, b"code f\n")
    assert get(server, "/gone/page")[::2] == (200, b"page\n")  # `$uri.html`
    assert get(server, "/gone/nope")[0] == 410


def test_an_answer_keeps_the_connection(server):
    with RawConn(server.port) as conn:
        for target in ("/spa/x", "/code/missing", "/gone/nope", "/spa/app.js"):
            conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            status, headers, _ = conn.response()
            assert headers.get("connection") != "close", target
        assert not conn.closed_by_peer(timeout=0.3)


def test_alias(server):
    assert get(server, "/alias/x.txt")[::2] == (200, b"aliased x\n")
    assert get(server, "/alias/nope")[::2] == (200, b"aliased fallback\n")


def test_a_fallback_loop_is_500_after_ten_redirects(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /loop/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 500 and headers.get("connection") == "close"
        assert conn.closed_by_peer()
    log = (server.tmp / "error.log").read_text()
    assert (
        'rewrite or internal redirection cycle while internally redirecting to "/loop/again"' in log
    )
    assert get(server, "/spa/app.js")[::2] == (200, b"js\n")  # and the server goes on


# (target, status, body): what a hostile path gets; never a byte from outside the root
HOSTILE = [
    ("/spa/../../secret.txt", 200, ROOT),  # dot segments end at "/": /secret.txt is not there
    ("/spa/%2e%2e/%2e%2e/secret.txt", 200, ROOT),
    ("/spa/..%2f..%2fsecret.txt", 200, ROOT),
    ("/spa/%2E%2E%2F%2E%2E%2Fsecret.txt", 200, ROOT),
    ("/spa/%2fsecret.txt", 200, SPA),  # "/spa//secret.txt": slashes merged, not there
    ("/spa/%2f%2f..%2f..%2fsecret.txt", 200, ROOT),
    ("/spa/%252e%252e/%252e%252e/secret.txt", 200, SPA),  # once decoded: a name, not ".."
    ("/spa/%252e%252e", 200, b"a file named %2e%2e\n"),
    ("/spa/escape.txt", 200, SPA),  # a symlink out of the root is not found: the fallback
    ("/spa/escdir/secret.txt", 200, SPA),
    ("/spa/escdir", 200, SPA),  # `$uri/`: a directory out of the root, not found either
    ("/spa/escdir/", 200, SPA),
    ("/spa/inside.js", 200, b"js\n"),  # a symlink inside the root is a file like any
    ("/spa/a%00b", 200, SPA),  # a NUL is never looked up
    ("/spa/" + "x" * 4000, 200, SPA),  # ENAMETOOLONG: not found
    ("/spa/" + "/".join(["y" * 200] * 20), 200, SPA),
    ("/args/?f=../../secret.txt", 404, None),  # a name from the query string
    ("/args/?f=..%2f..%2fsecret.txt", 404, None),
    ("/args/?f=%00", 404, None),
    ("/args/?f=a.txt", 200, b"arg a\n"),
    ("/code/../../../secret.txt", 200, ROOT),  # dot segments left /code/: the server's /
    ("/code/%2e%2e%2f%2e%2e%2fsecret.txt", 200, ROOT),
    ("/code/escape%00.txt", 404, None),
]


def test_hostile_paths(server):
    before = {p: p.read_bytes() for p in server.root.rglob("*") if p.is_file()}
    with RawConn(server.port) as conn:
        for target, status, body in HOSTILE:
            conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            got, headers, got_body = conn.response()
            assert (got, headers.get("connection")) == (status, "keep-alive"), target
            if body is not None:
                assert got_body == body, target
            assert b"SECRET" not in got_body, target
        # the same connection still serves
        conn.send(b"GET /spa/app.js HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[::2] == (200, b"js\n")
    after = {p: p.read_bytes() for p in server.root.rglob("*") if p.is_file()}
    assert after == before  # nothing on disk lost or changed


def test_a_target_too_long_for_a_request_line_is_414_and_closes(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /spa/" + b"z" * 70000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 414 and conn.closed_by_peer()
    assert get(server, "/spa/x")[::2] == (200, SPA)


def test_post_falls_back_like_get_and_the_method_stays(server):
    # an internal redirect by try_files keeps the method (nginx): a POST to the SPA
    # fallback is a POST to /spa/index.html, which static refuses with 405
    status, headers, _ = request(
        server.port, "/spa/x", method="POST", headers={"Content-Length": "0"}
    )
    assert status == 405 and "GET" in headers["allow"]
