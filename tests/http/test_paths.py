"""Nothing outside root/alias is ever served: traversal attempts over raw sockets.

Targets are sent byte for byte (no client library normalises them). After each attempt the
connection must end as it should (kept after a 404/403, closed after a 400) and the server
must keep serving others.
"""

from __future__ import annotations

import os

import pytest
from support import RawConn

CONF = """
http {{
    access_log off;
    open_file_cache off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /static/ {{ alias {tmp}/assets/; }}
        location /bare {{ alias {tmp}/assets; }}
    }}
}}
"""
SECRET = b"TOP SECRET outside the root\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import RunningServer

    tmp = tmp_path_factory.mktemp("paths")
    (tmp / "secret.txt").write_bytes(SECRET)
    (tmp / "assets").mkdir()
    (tmp / "assets" / "app.css").write_text("css\n")
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "data.txt").write_bytes(SECRET)
    files = {"index.html": "home\n", "sub/page.html": "page\n", "100%.txt": "percent\n"}
    srv = RunningServer(tmp, CONF, files)
    root = srv.root
    os.symlink(tmp / "secret.txt", root / "link_out.txt")
    os.symlink(outside, root / "dir_out")
    os.symlink("sub/page.html", root / "link_in.html")
    os.symlink(root / "sub", root / "dir_in")
    os.symlink("../../secret.txt", root / "sub" / "up.txt")
    srv.start()
    yield srv
    srv.stop()


def exchange(server, target: bytes, extra: bytes = b""):
    """Send one request (keep-alive) and a normal one after it on the same connection."""
    with RawConn(server.port) as conn:
        conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n")
        status, headers, body = conn.response()
        assert SECRET not in body
        if headers.get("connection") == "close":
            assert conn.closed_by_peer()
            return status, headers, body, None
        conn.send(b"GET /sub/page.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
        follow = conn.response()
        return status, headers, body, follow


TRAVERSALS_404 = [
    b"/../secret.txt",
    b"/../../../../secret.txt",
    b"/../../etc/passwd",
    b"/sub/../../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/%2e%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/..%2f..%2f..%2fsecret.txt",
    b"/%2e%2e%2f%2e%2e%2fsecret.txt",
    b"/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
    b"/./.././secret.txt",
    b"//etc/passwd",
    b"///../secret.txt",
    b"/..\\secret.txt",
    b"/\\..\\..\\secret.txt",
    b"/%5c..%5csecret.txt",
    b"/static/../../secret.txt",
    b"/static/..%2f..%2fsecret.txt",
    b"/static/%2e%2e/%2e%2e/secret.txt",
    b"/bare/../secret.txt",
    b"/bare../secret.txt",  # nginx's classic alias-without-slash traversal
    b"/bare..%2fsecret.txt",
    b"/dir_out/../secret.txt",
    b"/index.html%00",
    b"/index.html%00.txt",
    b"/%00",
    b"http://localhost/../secret.txt",
    b"http://localhost/%2e%2e/%2e%2e/secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS_404, ids=lambda t: t.decode("latin-1"))
def test_traversal_is_404_and_connection_stays(server, target):
    status, headers, body, follow = exchange(server, target)
    assert status == 404
    assert b"<title>404 Not Found</title>" in body
    assert headers["connection"] == "keep-alive"
    assert follow[0] == 200 and follow[2] == b"page\n"
    assert server.alive()


@pytest.mark.parametrize(
    "target",
    [b"/%zz", b"/%2", b"/sub/%", b"/%g0/secret.txt", b"/..%2", b"../secret.txt", b"secret.txt"],
    ids=lambda t: t.decode("latin-1"),
)
def test_bad_target_is_400_and_closes(server, target):
    status, headers, body, _ = exchange(server, target)
    assert status == 400
    assert headers["connection"] == "close"
    assert b"<title>400 Bad Request</title>" in body
    assert server.alive()


@pytest.mark.parametrize(
    "target",
    [b"/link_out.txt", b"/dir_out/data.txt", b"/sub/up.txt", b"/dir_in/up.txt", b"/dir_out/"],
)
def test_symlink_out_of_root_is_403(server, target):
    status, headers, body, follow = exchange(server, target)
    assert status == 403
    assert b"<title>403 Forbidden</title>" in body
    assert headers["connection"] == "keep-alive"
    assert follow[0] == 200
    assert server.alive()


@pytest.mark.parametrize(
    "target, content",
    [
        (b"/link_in.html", b"page\n"),
        (b"/dir_in/page.html", b"page\n"),
        (b"/sub/../sub/./page.html", b"page\n"),
        (b"/%73ub/page%2Ehtml", b"page\n"),
        (b"/sub%2fpage.html", b"page\n"),
        (b"/100%25.txt", b"percent\n"),
        (b"/static/app.css", b"css\n"),
        (b"/static/./app.css", b"css\n"),
        (b"/bare/app.css", b"css\n"),
        (b"http://localhost/sub/page.html", b"page\n"),
    ],
)
def test_allowed_paths_inside_root(server, target, content):
    status, _, body, follow = exchange(server, target)
    assert (status, body) == (200, content)
    assert follow[0] == 200


def test_dot_segments_never_redirect_outside(server):
    # "/sub/.." is the directory "/" (dot segments removed first), not a 301 elsewhere
    status, _, body, _ = exchange(server, b"/sub/..")
    assert (status, body) == (200, b"home\n")
    status, headers, _, _ = exchange(server, b"/sub/../sub")
    assert (status, headers["location"]) == (301, "/sub/")


def test_cached_file_still_checked_against_each_locations_root(webserv):
    # one file path, two locations: "/" (root) may follow the link, /strict/ (alias of a
    # subfolder) may not; the open file cache must not carry the first answer to the second
    conf = """
    http {{
        access_log off;
        server {{
            listen 127.0.0.1:{port};
            root {root};
            location /strict/ {{ alias {root}/pub/; }}
        }}
    }}
    """
    files = {
        "inside.txt": "inside the root\n",
        "pub/plain.txt": "plain\n",
        "sub/page.html": "page\n",
    }
    server = webserv(conf, files=files)
    os.symlink(server.root / "inside.txt", server.root / "pub" / "link.txt")
    for _ in range(2):
        status, _, body, _ = exchange(server, b"/pub/link.txt")
        assert (status, body) == (200, b"inside the root\n")
        status, _, body, follow = exchange(server, b"/strict/link.txt")
        assert status == 403 and b"inside the root" not in body
        assert follow[0] == 200
    assert exchange(server, b"/strict/plain.txt")[:3:2] == (200, b"plain\n")
