"""rewrite (and return with variables) side by side with nginx: the same server blocks, the
same files, the same requests (skipped without /usr/sbin/nginx). Compared: status, Location
(nginx's absolute form of a local redirect made relative, as webserv sends it) and the
body of every 200 (which file, or which `return` text, answered).
"""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RunningServer, request

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

BLOCK = r"""
        root {root};
        default_type text/plain;
        rewrite ^/srv/(.*)$ /a/$1;
        rewrite ^/srvlast/(.*)$ /a/$1 last;
        rewrite ^/srvbreak/(.*)$ /a/$1 break;
        rewrite ^/srvred/(.*)$ /a/$1 redirect;
        rewrite ^/d2$ /d3;
        rewrite ^/d1$ /d2;
        location /a/ { }
        location = /echo { return 200 "uri=$uri args=$args"; }
        location /echo/ { return 200 "uri=$uri args=$args"; }
        location /loc/ { rewrite ^/loc/(.*)$ /a/$1 break; }
        location /last/ { rewrite ^/last/(.*)$ /a/$1 last; }
        location /nof/ { rewrite ^/nof/(.*)$ /a/$1; }
        location /two/ { rewrite ^/two/(.*)$ /two/x$1; rewrite ^/two/x(.*)$ /a/$1; }
        location /red/ { rewrite ^ /a/f.txt?x=1 redirect; }
        location /perm/ { rewrite ^/perm/(.*) http://example.com/$1 permanent; }
        location /abs/ { rewrite ^/abs/(.*) https://example.com/$1; }
        location /scheme/ { rewrite ^/scheme/(.*) $scheme://$host/$1?; }
        location /q/ { rewrite ^ /echo?y=2; }
        location /qq/ { rewrite ^ /echo?y=2?; }
        location /qdrop/ { rewrite ^ /echo?; }
        location /qkeep/ { rewrite ^ /echo; }
        location /ret/ { rewrite ^/ret/(.*)$ /a/$1; return 200 "ret $uri $args"; }
        location /retb/ { rewrite ^/retb/(.*)$ /a/$1 break; return 200 "never"; }
        location /retl/ { rewrite ^/retl/(.*)$ /a/$1 last; return 200 "never"; }
        location /named/ { rewrite "^/named/(?<name>[a-z]+)/(\d+)$" /echo?n=$name&d=$2 last; }
        location /caps/ { rewrite ^/caps/(a)(b)?(c)$ /echo?1=$1&2=$2&3=$3&9=$9 last; }
        location /loop/ { rewrite ^ /loop/x last; }
        location /loop2/ { rewrite ^ /loop2/x; }
        location /chain/ { rewrite ^/chain/(.*)$ /chain2/$1 last; }
        location /chain2/ { rewrite ^/chain2/(.*)$ /a/$1 last; }
        location /hostv/ { rewrite ^ /echo?h=$host&u=$request_uri last; }
        location /redq/ { rewrite ^/redq/(.*)$ /a/$1 permanent; }
        location /dots/ { rewrite ^/dots/(.*)$ /a/../a/./$1 last; }
        location /tf/ { rewrite ^/tf/(.*)$ /tf/x/$1 break; try_files $uri /echo?tf; }
        location /ret301/ { return 301 https://$host$request_uri; }
        location /retvars/ { return 200 "$scheme $host $uri $args $request_uri $is_args"; }
        location /retredir/ { return 302 /a/f.txt?from=$uri; }
        location /rwq/ { rewrite ^/rwq/(.*)$ /echo?x=$1 last; }
        location /rwp/ { rewrite ^/rwp/(.*)$ /echo/$1?x=$1 last; }
        location /permq/ { rewrite ^/permq/(.*)$ /a/$1?x=$1 permanent; }
        location ~ ^/rx/(\w+)$ { rewrite ^/rx/(\w+)$ /echo?r=$1 last; }
"""
SERVER_RETURN = r"""
        root {root};
        default_type text/plain;
        rewrite ^/go/(.*)$ /a/$1 last;
        rewrite ^/nf/(.*)$ /a/$1;
        return 403;
        location /a/ { }
        location /loc/ { rewrite ^ /a/f.txt last; }
"""
FILES = {"a/f.txt": "a f\n", "a/g.txt": "a g\n", "d2": "d2\n", "d3": "d3\n", "tf/x/f.txt": "tf\n"}
CASES = [
    "/a/f.txt",
    "/srv/f.txt",
    "/srv/f.txt?k=v",
    "/srvlast/g.txt",
    "/srvbreak/f.txt",
    "/srvred/f.txt?k=v",
    "/d1",
    "/d2",
    "/loc/f.txt",
    "/loc/missing",
    "/last/f.txt",
    "/nof/g.txt",
    "/two/f.txt",
    "/red/z",
    "/red/z?o=1",
    "/perm/a?b=1",
    "/abs/p",
    "/abs/p?x=1",
    "/scheme/p?x=1",
    "/q/?o=1",
    "/q/",
    "/qq/?o=1",
    "/qdrop/?o=1",
    "/qkeep/?o=1",
    "/ret/z?o=1",
    "/retb/f.txt",
    "/retl/f.txt",
    "/named/abc/12",
    "/named/ABC/12",
    "/caps/ac",
    "/caps/abc",
    "/loop/",
    "/loop2/",
    "/chain/f.txt",
    "/hostv/x?y",
    "/redq/f.txt?z=1",
    "/dots/f.txt",
    "/tf/f.txt",
    "/tf/nope?q=1",
    "/ret301/p?q=1",
    "/retvars/x?y=1",
    "/retvars/x",
    "/retredir/p",
    "/rx/word",
    "/rwq/a%20b",
    "/rwq/a%26b",
    "/rwq/a+b",
    "/rwq/a;b",
    "/rwq/plain",
    "/rwq/%C3%A9",
    "/rwp/a%20b",
    "/perm/a%20b",
    "/perm/a+b?c=d",
    "/permq/a%20b",
    "/permq/a+b",
    "/rx/two/parts",
]
SERVER_RETURN_CASES = ["/go/f.txt", "/nf/f.txt", "/a/f.txt", "/other", "/loc/x"]


def ask(port: int, target: str, host: str = "localhost") -> dict:
    status, headers, body = request(port, target, host=host)
    location = headers.get("location")
    if location is not None:
        for prefix in (f"http://{host}:{port}", f"http://{host}"):
            if location.startswith(prefix + "/"):
                location = location[len(prefix) :]
    return {"status": status, "location": location, "body": body if status == 200 else None}


def start_pair(tmp, block):
    conf = (
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + block.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    ws = RunningServer(tmp / "webserv", conf, FILES)
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    ws.start()
    (tmp / "nginx").mkdir()
    try:
        ng = RunningNginx(tmp / "nginx", ws.root, block).start()
    except BaseException:
        ws.stop()
        raise
    return ws, ng


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ws, ng = start_pair(tmp_path_factory.mktemp("rw-nginx"), BLOCK)
    yield ws, ng
    ng.stop()
    ws.stop()


@pytest.fixture(scope="module")
def return_pair(tmp_path_factory):
    ws, ng = start_pair(tmp_path_factory.mktemp("rw-ret-nginx"), SERVER_RETURN)
    yield ws, ng
    ng.stop()
    ws.stop()


@pytest.mark.parametrize("target", CASES)
def test_same_as_nginx(pair, target):
    ws, ng = pair
    assert ask(ws.port, target) == ask(ng.port, target)


@pytest.mark.parametrize("target", SERVER_RETURN_CASES)
def test_server_rewrites_before_its_return_same_as_nginx(return_pair, target):
    ws, ng = return_pair
    assert ask(ws.port, target) == ask(ng.port, target)
