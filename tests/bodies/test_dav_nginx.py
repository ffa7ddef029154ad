"""WebDAV side by side with nginx: the same tree, the same sequence of PUT, DELETE, MKCOL,
COPY, MOVE and GET requests (dav_cases.py), the same answer at every step.

Compared per step: the status, the path of `Location` (nginx makes it absolute with
`absolute_redirect on`; webserv sends it as a path: README's differences), whether a 2xx
says `Content-Length`, and a GET's body. Skipped where nginx is not installed.
"""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from dav_cases import SERVER, STEPS, TREE
from support import RawConn, RunningServer

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def make_tree(root) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in TREE.items():
        path = root / name
        if text is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_text(text)


def send(port: int, method: str, target: str, fields: dict[str, str], body: bytes) -> tuple:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in fields.items()]
    if method == "PUT" and "Content-Length" not in fields:
        lines.append(f"Content-Length: {len(body)}")
    with RawConn(port) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status, headers, got = conn.response()
    location = headers.get("location")
    if location and "://" in location:
        location = "/" + location.split("://", 1)[1].split("/", 1)[1]
    length = ("content-length" in headers) if status < 300 else None
    return status, location, length, got if method == "GET" and status == 200 else b""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dav-pair")
    make_tree(tmp / "nginx" / "www")
    nginx = RunningNginx(tmp / "nginx", tmp / "nginx" / "www", SERVER.format(root="{root}"))
    nginx.start()
    conf = "http {{ server {{ listen 127.0.0.1:{port};" + SERVER + "}} }}"
    webserv = RunningServer(tmp / "webserv", conf)
    make_tree(webserv.root)
    webserv.start()
    yield nginx, webserv
    webserv.stop()
    nginx.stop()


def test_the_same_answers_as_nginx(pair):
    nginx, webserv = pair
    differences = []
    for step in STEPS:
        theirs, ours = send(nginx.port, *step), send(webserv.port, *step)
        if theirs != ours:
            differences.append((step, theirs, ours))
    assert not differences
    assert webserv.alive()
