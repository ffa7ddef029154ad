"""`merge_slashes off`: repeated slashes kept in the path that chooses the location and in
$uri, as nginx 1.22 keeps them (every expected path below is what nginx answered).

nginx parses the target before the Host header chooses a server, so the address's default
server's setting applies to every request on it (checked against nginx: `off` in another
server of the address changes nothing).
"""

from __future__ import annotations

import pytest
from support import RawConn

from webserv.config.load import load
from webserv.http.errors import HttpError
from webserv.http.merge_slashes import normalize_path_unmerged
from webserv.http.request import normalize_path

# what nginx 1.22 made of each target with merge_slashes off ($uri)
NGINX_UNMERGED = [
    (b"//", "//"),
    (b"/a//", "/a//"),
    (b"///..", "//"),
    (b"/a/.//b", "/a//b"),
    (b"/a//b/..", "/a//"),
    (b"/%2F%2Fa", "///a"),
    (b"//x", "//x"),
    (b"/a//./", "/a//"),
    (b"/a//..", "/a/"),
    (b"/a/b//../..", "/a/"),
    (b"/foo//../bar", "/foo/bar"),
    (b"/foo///../bar", "/foo//bar"),
    (b"/a/b", "/a/b"),
    (b"/a/./b/../c", "/a/c"),
]


@pytest.mark.parametrize(("raw", "path"), NGINX_UNMERGED)
def test_unmerged_path_is_nginxs(raw, path):
    assert normalize_path_unmerged(raw) == path


@pytest.mark.parametrize("raw", [b"/a//%zz", b"a//b", b"/%2"])
def test_unmerged_path_refuses_what_the_default_refuses(raw):
    with pytest.raises(HttpError) as merged:
        normalize_path(raw)
    with pytest.raises(HttpError) as unmerged:
        normalize_path_unmerged(raw)
    assert (unmerged.value.status, unmerged.value.reason) == (
        merged.value.status,
        merged.value.reason,
    )


def _groups(tmp_path, text):
    path = tmp_path / "webserv.conf"
    path.write_text(text)
    return {listener.address.port: listener for listener in load(str(path)).listeners}


def test_the_default_servers_flag_decides_for_the_address(tmp_path):
    listeners = _groups(
        tmp_path,
        "http {\n"
        "  server { listen 127.0.0.1:8001; merge_slashes off; }\n"
        "  server { listen 127.0.0.1:8001; server_name b; }\n"
        "  server { listen 127.0.0.1:8002; }\n"
        "  server { listen 127.0.0.1:8002; server_name b; merge_slashes off; }\n"
        "  server { listen 127.0.0.1:8003; server_name a; }\n"
        "  server { listen 127.0.0.1:8003 default_server; merge_slashes off; }\n"
        "}\n",
    )
    norm = {port: next(iter(lst.groups.values())).normalize_path for port, lst in listeners.items()}
    assert norm == {
        8001: normalize_path_unmerged,
        8002: normalize_path,
        8003: normalize_path_unmerged,
    }


def test_merge_slashes_is_inherited_from_http(tmp_path):
    listeners = _groups(tmp_path, "http {\n  merge_slashes off;\n  server { listen 8004; }\n}\n")
    assert next(iter(listeners[8004].groups.values())).normalize_path is normalize_path_unmerged


CONF = """
http {{
    server {{
        listen 127.0.0.1:{port};
        merge_slashes off;
        location / {{ return 200 "x $uri x"; }}
        location = //x {{ return 200 "exact $uri"; }}
        location ~ ^/r//(.*)$ {{ return 200 "regex $1"; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name other;
        location / {{ return 200 "other $uri"; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        location / {{ return 200 "merged $uri"; }}
    }}
}}
"""


def ask(port, target, host="localhost"):
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, _, body = conn.response()
        assert conn.closed_by_peer()
    return status, body.decode()


def test_off_keeps_slashes_for_uri_and_location(webserv):
    srv = webserv(CONF, ports=2)
    assert ask(srv.port, "/foo//../bar") == (200, "x /foo/bar x")
    assert ask(srv.port, "/foo///../bar") == (200, "x /foo//bar x")
    assert ask(srv.port, "//x") == (200, "exact //x")
    assert ask(srv.port, "/r//a//b") == (200, "regex a//b")
    # another server of the address: the default server's flag still applies (nginx)
    assert ask(srv.port, "//a//b", host="other") == (200, "other //a//b")
    # the default, on: merged
    assert ask(srv.ports[1], "//a//b") == (200, "merged /a/b")


def test_bad_target_is_a_400_and_the_server_goes_on(webserv):
    srv = webserv(CONF, ports=2)
    assert ask(srv.port, "/a//%zz")[0] == 400
    assert ask(srv.port, "//ok") == (200, "x //ok x")
