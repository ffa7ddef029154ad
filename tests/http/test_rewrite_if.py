"""`if` (nginx's rewrite module) against the real server: every operator, captures, two
`if`s, `if` with `rewrite`, `return` and `break` in the order written, server-level `if`, file
tests on a plain file, a directory, an executable and a missing path; and the same requests
side by side with nginx where it is installed (status, Location, 200 bodies).
The config side (syntax, errors): tests/config/test_rewrite_if_directives.py.
"""

from __future__ import annotations

import os

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RunningServer, request

FILE_OPS = ("-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x")
FILE_LOCATIONS = "".join(
    f'        location = /file{i} {{ if ({op} {{root}}/t/$arg_p) {{ return 200 "yes"; }} '
    f'return 200 "no"; }}\n'
    for i, op in enumerate(FILE_OPS)
)
BLOCK = (
    r"""
        root {root};
        default_type text/plain;
        if ($arg_srv = go) { return 200 "server if"; }
        if ($arg_srvrw) { rewrite ^ /a/f.txt last; }
        location /a/ { }
        location = /echo { return 200 "uri=$uri args=$args"; }
        location /var/ { if ($arg_c) { return 204; } return 200 "false"; }
        location /sp/ { if ( $arg_c ) { return 204; } return 200 "false"; }
        location /eq/ { if ($arg_c = "a;b") { return 200 "eq"; } return 200 "ne"; }
        location /eqv/ { if ($arg_c = $arg_d) { return 200 "same"; } return 200 "differ"; }
        location /ne/ { if ($arg_c != x) { return 200 "ne"; } return 200 "eq"; }
        location /re/ { if ($arg_c ~ ^(\w+)-(\d+)$) { return 200 "re $1 $2"; } return 200 "no"; }
        location /rei/ { if ($arg_c ~* ^foo(?<tail>.*)$) { return 200 "t=$tail"; } return 200 "no"; }
        location /nre/ { if ($arg_c !~ ^foo) { return 200 "not foo"; } return 200 "foo"; }
        location /nrei/ { if ($arg_c !~* ^foo) { return 200 "not foo"; } return 200 "foo"; }
        location /after/ { if ($arg_c ~ ^(\w+)$) { } return 200 "after $1"; }
        location /after2/ { if ($arg_c ~ ^(\w+)$) { } if ($arg_c ~ \w) { } return 200 "a $1"; }
        location /after3/ { if ($arg_c ~ ^(\w+)$) { } if ($arg_c ~ zz) { } return 200 "a $1"; }
        location /after4/ { if ($arg_c ~ ^(\w+)$) { } rewrite zz /x; return 200 "a $1"; }
        location /order/ {
            rewrite ^/order/(.*)$ /a/$1;
            if ($uri = /a/f.txt) { return 200 "saw $uri"; }
            return 200 "after $uri";
        }
        location /first/ { return 200 "first"; if ($arg_c) { return 200 "never"; } }
        location /both/ {
            if ($arg_a) { return 200 "a"; }
            if ($arg_b) { return 200 "b"; }
            return 200 "none";
        }
        location /two/ {
            if ($arg_a) { rewrite ^ /echo?from=a; }
            if ($arg_b) { rewrite ^ /echo?from=b; }
            return 200 "fell $uri $args";
        }
        location /fall/ { if ($arg_c) { rewrite ^ /echo?from=if; } }
        location /brk/ { if ($arg_c) { rewrite ^/brk/(.*)$ /a/$1 break; } return 200 "no"; }
        location /brkd/ { rewrite ^/brkd/(.*)$ /a/$1; if ($arg_c) { break; } return 200 "on"; }
        location /last/ { if ($arg_c ~ (\w+)) { rewrite ^ /echo?c=$1 last; } return 200 "no"; }
        location /nm/ { if ($arg_c ~ ^(?<w>[a-z]+)$) { rewrite ^ /echo?w=$w? last; } }
        location /red/ { if ($arg_c) { rewrite ^ /a/f.txt permanent; } return 200 "no"; }
        location /ret301/ { if ($arg_c) { return 301 /a/$arg_c; } return 404; }
        location ~ ^/rx/(\w+)$ { if ($arg_c) { return 200 "loc $1"; } return 200 "none $1"; }
"""
    + FILE_LOCATIONS
)
FILES = {"a/f.txt": "a f\n", "a/g.txt": "a g\n", "t/plain": "", "t/dir/x": "", "t/exe": ""}
CASES = [
    "/var/?c=1",
    "/var/?c=0",
    "/var/?c=",
    "/var/",
    "/var/?c=00",
    "/sp/?c=1",
    "/sp/",
    "/eq/?c=a;b",
    "/eq/?c=ab",
    "/eqv/?c=1&d=1",
    "/eqv/?c=1&d=2",
    "/ne/?c=x",
    "/ne/?c=y",
    "/re/?c=ab-12",
    "/re/?c=ab-x",
    "/rei/?c=FOObar",
    "/rei/?c=bar",
    "/nre/?c=foo",
    "/nre/?c=Foo",
    "/nrei/?c=Foo",
    "/nrei/?c=bar",
    "/after/?c=word",
    "/after2/?c=word",
    "/after3/?c=word",
    "/after4/?c=word",
    "/order/f.txt",
    "/order/g.txt",
    "/first/?c=1",
    "/both/?a=1&b=1",
    "/both/?a=1",
    "/both/?b=1",
    "/both/",
    "/two/?a=1",
    "/two/?a=1&b=1",
    "/two/",
    "/fall/?c=1",
    "/brk/f.txt?c=1",
    "/brk/f.txt",
    "/brkd/g.txt?c=1",
    "/brkd/g.txt",
    "/last/?c=zz",
    "/nm/?c=abc",
    "/nm/?c=ABC",
    "/red/?c=1",
    "/ret301/?c=g.txt",
    "/ret301/",
    "/rx/word?c=1",
    "/rx/word",
    "/a/f.txt?srv=go",
    "/nowhere?srv=go",
    "/nowhere?srvrw=1",
    "/a/f.txt",
] + [
    f"/file{i}?p={p}"
    for i in range(len(FILE_OPS))
    for p in ("plain", "dir", "exe", "nx", "plain/x")
]


def ask(port: int, target: str) -> dict:
    status, headers, body = request(port, target)
    location = headers.get("location")
    if location is not None:
        for prefix in (f"http://localhost:{port}", "http://localhost"):
            if location.startswith(prefix + "/"):
                location = location[len(prefix) :]
    return {"status": status, "location": location, "body": body if status == 200 else None}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rewrite-if")
    conf = (
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    ws = RunningServer(tmp / "webserv", conf, FILES)
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    os.chmod(ws.root / "t" / "exe", 0o755)
    os.chmod(ws.root / "t" / "plain", 0o644)
    ws.start()
    yield ws
    ws.stop()


@pytest.fixture(scope="module")
def nginx(server, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    ng = RunningNginx(tmp_path_factory.mktemp("rewrite-if-nginx"), server.root, BLOCK).start()
    yield ng
    ng.stop()


def body(server, target: str) -> tuple[int, bytes]:
    status, _, data = request(server.port, target)
    return status, data


# --- webserv alone: what each case answers ----------------------------------------------


@pytest.mark.parametrize(
    "target, status, text",
    [
        ("/var/?c=1", 204, b""),
        ("/var/?c=0", 200, b"false"),
        ("/var/?c=", 200, b"false"),
        ("/var/?c=00", 204, b""),
        ("/sp/?c=1", 204, b""),
        ("/eq/?c=a;b", 200, b"eq"),
        ("/eq/?c=ab", 200, b"ne"),
        ("/eqv/?c=1&d=1", 200, b"same"),
        ("/eqv/?c=1&d=2", 200, b"differ"),
        ("/ne/?c=x", 200, b"eq"),
        ("/ne/?c=y", 200, b"ne"),
        ("/re/?c=ab-12", 200, b"re ab 12"),
        ("/re/?c=ab-x", 200, b"no"),
        ("/rei/?c=FOObar", 200, b"t=bar"),
        ("/rei/?c=bar", 200, b"no"),
        ("/nre/?c=foo", 200, b"foo"),
        ("/nre/?c=Foo", 200, b"not foo"),
        ("/nrei/?c=Foo", 200, b"foo"),
        ("/nrei/?c=bar", 200, b"not foo"),
        ("/after/?c=word", 200, b"after word"),
        ("/after2/?c=word", 200, b"a "),  # (a later match without groups: none)
        ("/after3/?c=word", 200, b"a "),  # (a later regex that did not match: none)
        ("/after4/?c=word", 200, b"a "),
        ("/order/f.txt", 200, b"saw /a/f.txt"),
        ("/order/g.txt", 200, b"after /a/g.txt"),
        ("/first/?c=1", 200, b"first"),
        ("/both/?a=1&b=1", 200, b"a"),
        ("/both/?b=1", 200, b"b"),
        ("/both/", 200, b"none"),
        ("/two/?a=1", 200, b"fell /echo from=a&a=1"),
        ("/two/?a=1&b=1", 200, b"fell /echo from=b&from=a&a=1&b=1"),
        ("/two/", 200, b"fell /two/ "),
        ("/fall/?c=1", 200, b"uri=/echo args=from=if&c=1"),
        ("/brk/f.txt?c=1", 200, b"a f\n"),
        ("/brk/f.txt", 200, b"no"),
        ("/brkd/g.txt?c=1", 200, b"a g\n"),
        ("/brkd/g.txt", 200, b"on"),
        # (the rewrite's own regex has no groups: its $1 is empty, as nginx's)
        ("/last/?c=zz", 200, b"uri=/echo args=c=&c=zz"),
        ("/nm/?c=abc", 200, b"uri=/echo args=w=abc"),  # (the if's named capture)
        ("/rx/word?c=1", 200, b"loc word"),
        ("/rx/word", 200, b"none word"),
        ("/a/f.txt?srv=go", 200, b"server if"),
        ("/nowhere?srv=go", 200, b"server if"),
        ("/nowhere?srvrw=1", 200, b"a f\n"),
        ("/a/f.txt", 200, b"a f\n"),
    ],
)
def test_answers(server, target, status, text):
    assert body(server, target) == (status, text)


def test_redirects_inside_if(server):
    assert ask(server.port, "/red/?c=1")["location"] == "/a/f.txt?c=1"
    assert ask(server.port, "/red/?c=1")["status"] == 301
    assert ask(server.port, "/ret301/?c=g.txt") == {
        "status": 301,
        "location": "/a/g.txt",
        "body": None,
    }
    assert body(server, "/ret301/")[0] == 404


EXPECTED_FILES = {
    # op: (plain, dir, exe, missing, under a file)
    "-f": ("yes", "no", "yes", "no", "no"),
    "!-f": ("no", "yes", "no", "yes", "yes"),
    "-d": ("no", "yes", "no", "no", "no"),
    "!-d": ("yes", "no", "yes", "yes", "yes"),
    "-e": ("yes", "yes", "yes", "no", "no"),
    "!-e": ("no", "no", "no", "yes", "yes"),
    "-x": ("no", "yes", "yes", "no", "no"),  # (a directory has its x bit: nginx says yes)
    "!-x": ("yes", "no", "no", "yes", "yes"),
}


@pytest.mark.parametrize("op", FILE_OPS)
def test_file_tests(server, op):
    i = FILE_OPS.index(op)
    got = tuple(
        body(server, f"/file{i}?p={p}")[1].decode()
        for p in ("plain", "dir", "exe", "nx", "plain/x")
    )
    assert got == EXPECTED_FILES[op]


def test_keeps_serving_after_odd_paths(server):
    # a NUL (the argument is not decoded: "%00" stays as text) and a long name: "missing"
    assert body(server, "/file0?p=%00") == (200, b"no")
    assert body(server, "/file0?p=" + "x" * 5000) == (200, b"no")
    assert body(server, "/var/?c=1") == (204, b"")


# --- side by side with nginx ---------------------------------------------------------------


@pytest.mark.parametrize("target", CASES)
def test_same_as_nginx(server, nginx, target):
    assert ask(server.port, target) == ask(nginx.port, target)
