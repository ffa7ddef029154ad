"""try_files side by side with nginx: the same server block, the same files, the same
requests (skipped without /usr/sbin/nginx). Compared: status, Location (nginx's absolute
form made relative, as webserv sends it), and the body of every 200 (which file answered).
"""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RunningServer

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

BLOCK = """
        root {root};
        default_type text/plain;
        try_files $uri /index.html;
        location /spa/ { try_files $uri $uri/ /spa/index.html; }
        location /code/ { try_files $uri =404; }
        location /code410/ { try_files $uri $uri.html =410; }
        location /dironly/ { try_files $uri/ =403; }
        location = /echo { return 200 "uri=$uri args=$args"; }
        location /noargs/ { try_files $uri /echo; }
        location /withargs/ { try_files $uri "/echo?from=tf&$args"; }
        location /loop/ { try_files $uri /loop/again; }
        location /plain/ { }
        location /host/ { try_files /hosts/$host.txt /hosts/default.txt; }
        location /args/ { try_files /args/$arg_f /args/default.txt; }
        location /chain/ { try_files $uri /spa/from-chain; }
        location /alias/ { alias {root}/aliased/; try_files $uri $uri/ =404; }
"""
FILES = {
    "index.html": "root index\n",
    "f.txt": "f\n",
    "spa/index.html": "spa index\n",
    "spa/app.js": "js\n",
    "spa/sub/index.html": "sub index\n",
    "code/f.txt": "code f\n",
    "code410/page.html": "page html\n",
    "dironly/d/index.html": "d index\n",
    "dironly/file.txt": "file\n",
    "plain/f.txt": "plain\n",
    "hosts/localhost.txt": "localhost\n",
    "hosts/default.txt": "default host\n",
    "args/a.txt": "arg a\n",
    "args/default.txt": "arg default\n",
    "aliased/x.txt": "aliased x\n",
    "aliased/d/index.html": "aliased d\n",
}
CASES = [
    "/",
    "/index.html",
    "/f.txt",
    "/missing",
    "/deep/missing/path",
    "/spa/",
    "/spa/app.js",
    "/spa/deep/link",
    "/spa/sub",
    "/spa/sub/",
    "/spa/sub/missing",
    "/code/f.txt",
    "/code/missing",
    "/code410/page",
    "/code410/nope",
    "/dironly/d",
    "/dironly/file.txt",
    "/noargs/x?a=1",
    "/withargs/x?a=1",
    "/withargs/x",
    "/loop/x",
    "/plain/f.txt",
    "/plain/missing",
    "/host/",
    "/args/?f=a.txt",
    "/args/?f=../f.txt",
    "/args/?f=nope",
    "/args/",
    "/chain/x",
    "/alias/x.txt",
    "/alias/d/",
    "/alias/nope",
    # hostile paths: dot segments, encoded dots and slashes, a very long name
    "/spa/../f.txt",
    "/spa/%2e%2e/f.txt",
    "/spa/..%2ff.txt",
    "/spa/%2fetc%2fpasswd",
    "/code/" + "a" * 300,
    "/spa/" + "b" * 3000,
]


def ask(port: int, target: str, host: str = "localhost") -> dict:
    from support import request

    status, headers, body = request(port, target, host=host)
    location = headers.get("location")
    if location is not None:
        for prefix in (f"http://{host}:{port}", f"http://{host}"):
            if location.startswith(prefix + "/"):
                location = location[len(prefix) :]
    return {"status": status, "location": location, "body": body if status == 200 else None}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tf-nginx")
    conf = (
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    ws = RunningServer(tmp / "webserv", conf, FILES)
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    ws.start()
    (tmp / "nginx").mkdir()
    ng = RunningNginx(tmp / "nginx", ws.root, BLOCK).start()
    yield ws, ng
    ng.stop()
    ws.stop()


@pytest.mark.parametrize("target", CASES, ids=[c[:60] for c in CASES])
def test_same_as_nginx(pair, target):
    ws, ng = pair
    assert ask(ws.port, target) == ask(ng.port, target)


# nginx answers 400 to a path whose ".." climbs above "/"; webserv drops such a segment
# (README, Differences from nginx): the path is "/etc/passwd", the server's try_files answers
# with its fallback, and nothing outside the root is ever read
ABOVE_ROOT = ["/spa/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/code/%2e%2e/%2e%2e/%2e%2e/etc/passwd"]


@pytest.mark.parametrize("target", ABOVE_ROOT)
def test_above_the_root_differs_safely(pair, target):
    ws, ng = pair
    assert ask(ng.port, target)["status"] == 400
    assert ask(ws.port, target) == {"status": 200, "location": None, "body": b"root index\n"}


def test_index_of_a_tried_directory_is_tried_again(pair):
    """nginx's index module answers a directory by an internal redirect to its index file,
    which runs try_files again: `try_files $uri/ =403` then refuses the file. So does
    webserv's (static.py's index, dispatch.index_redirect)."""
    ws, ng = pair
    assert ask(ng.port, "/dironly/d/")["status"] == 403
    assert ask(ws.port, "/dironly/d/") == ask(ng.port, "/dironly/d/")


def test_host_variable_same_as_nginx(pair):
    ws, ng = pair
    for host in ("localhost", "other.example"):
        assert ask(ws.port, "/host/", host) == ask(ng.port, "/host/", host)
