"""absolute_redirect, server_name_in_redirect, port_in_redirect: the Location of every
redirect webserv builds from a path (a directory's slash, `return`, `rewrite ... redirect`),
side by side with nginx where it is installed (each server's own port is written PORT)."""

from __future__ import annotations

import pytest
from conformance.nginx import webserv_and_nginx
from support import RawConn

BLOCK = """
        server_name localhost;
        root {root};
        absolute_redirect off;
        location /rel/ { }
        location /abs/ { absolute_redirect on; }
        location /name/ { absolute_redirect on; server_name_in_redirect on; }
        location /noport/ { absolute_redirect on; port_in_redirect off; }
        location = /ret { absolute_redirect on; return 302 /target?q=1; }
        location = /ret-rel { return 302 /target; }
        location = /ret-url { absolute_redirect on; return 301 http://elsewhere.test/x; }
        location /rw/ { absolute_redirect on; rewrite ^/rw/(.*)$ /done/$1 redirect; }
"""
FILES = ["rel/d/f", "abs/d/f", "name/d/f", "noport/d/f"]
CASES = [
    ("/rel/d", "localhost"),
    ("/abs/d", "localhost"),
    ("/abs/d", "Other.Test:8888"),
    ("/abs/d", None),
    ("/name/d", "other.test"),
    ("/noport/d", "localhost"),
    ("/ret", "localhost"),
    ("/ret-rel", "localhost"),
    ("/ret-url", "localhost"),
    ("/rw/a?b=1", "localhost"),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ws, ng = webserv_and_nginx(
        tmp_path_factory.mktemp("redirects"), BLOCK, {name: "x" for name in FILES}
    )
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def location(port: int, target: str, host: str | None) -> tuple[int, str]:
    version, field = ("HTTP/1.0", "") if host is None else ("HTTP/1.1", f"Host: {host}\r\n")
    with RawConn(port) as conn:
        conn.send(f"GET {target} {version}\r\n{field}\r\n".encode())
        status, headers, _ = conn.response()
    return status, headers.get("location", "").replace(f":{port}/", ":PORT/")


EXPECTED = {
    ("/rel/d", "localhost"): "/rel/d/",
    ("/abs/d", "localhost"): "http://localhost:PORT/abs/d/",
    ("/abs/d", "Other.Test:8888"): "http://other.test:PORT/abs/d/",  # the name, the local port
    ("/abs/d", None): "http://127.0.0.1:PORT/abs/d/",  # no Host: the local address
    ("/name/d", "other.test"): "http://localhost:PORT/name/d/",
    ("/noport/d", "localhost"): "http://localhost/noport/d/",
    ("/ret", "localhost"): "http://localhost:PORT/target?q=1",
    ("/ret-rel", "localhost"): "/target",
    ("/ret-url", "localhost"): "http://elsewhere.test/x",
    ("/rw/a?b=1", "localhost"): "http://localhost:PORT/done/a?b=1",
}


@pytest.mark.parametrize(("target", "host"), CASES, ids=[f"{t} {h}" for t, h in CASES])
def test_location_as_nginx_builds_it(servers, target, host):
    ws, ng = servers
    status, got = location(ws.port, target, host)
    assert 300 <= status < 400 and got == EXPECTED[(target, host)]
    if ng is not None:
        assert location(ng.port, target, host) == (status, got)
