"""limit_req and limit_conn side by side with nginx (skipped without /usr/sbin/nginx): the
statuses of a burst on one keep-alive connection, with burst=, nodelay, delay=,
limit_req_status and several zones, and whether the connection stays open."""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

ZONES = """
    limit_req_zone $http_x_key zone=z:1m rate=1r/m;
    limit_req_zone $http_x_key zone=y:1m rate=2r/m;
    limit_conn_zone $http_x_key zone=c:1m;
"""
BLOCK = """
        root {root};
        location /zero/ { limit_req zone=z; }
        location /burst/ { limit_req zone=z burst=3 nodelay; }
        location /delay/ { limit_req zone=z burst=4 delay=2; }
        location /status/ { limit_req zone=z burst=1 nodelay; limit_req_status 429; }
        location /two/ { limit_req zone=z burst=4 nodelay; limit_req zone=y burst=1 nodelay; }
        location /conn/ { limit_conn c 1; limit_req zone=z burst=2 nodelay; }
"""
PATHS = ["/zero/f.txt", "/burst/f.txt", "/status/f.txt", "/two/f.txt", "/conn/f.txt"]
FILES = {p.lstrip("/"): "f\n" for p in PATHS} | {"delay/f.txt": "f\n"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits-nginx")
    ws = RunningServer(
        tmp / "webserv",
        "error_log {tmp}/error.log info;\nhttp {{ access_log off;\n"
        + ZONES.replace("{", "{{").replace("}", "}}")
        + "server {{\nlisten 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n",
        FILES,
    )
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    ws.start()
    (tmp / "nginx").mkdir()
    ng = RunningNginx(tmp / "nginx", ws.root, BLOCK)
    ng.conf.write_text(ng.conf.read_text().replace("    server {", ZONES + "    server {", 1))
    ng.start()
    yield ws, ng
    ng.stop()
    ws.stop()


def burst(port, path, key, count):
    with RawConn(port) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: l\r\nX-Key: {key}\r\n\r\n".encode() * count)
        answers = []
        for _ in range(count):
            status, headers, _ = conn.response()
            answers.append((status, headers.get("connection")))
        return answers


@pytest.mark.parametrize("path", PATHS)
def test_a_burst_is_answered_as_nginx_answers_it(pair, path):
    ws, ng = pair
    key = path.strip("/").replace("/", "-")
    ours, theirs = burst(ws.port, path, key, 8), burst(ng.port, path, key, 8)
    assert ours == theirs
    assert {s for s, _ in ours} != {200}  # (a case that refuses nothing would prove little)


def test_delay_passes_the_first_ones_at_once_as_nginx(pair):
    """burst=4 delay=2 at 1r/m: the first three at once, the fourth waits a minute: both
    answer three, then neither answers the fourth yet."""
    ws, ng = pair
    seen = []
    for port in (ws.port, ng.port):
        with RawConn(port, timeout=1.5) as conn:
            conn.send(b"GET /delay/f.txt HTTP/1.1\r\nHost: l\r\nX-Key: d\r\n\r\n" * 4)
            statuses = [conn.response()[0] for _ in range(3)]
            with pytest.raises(TimeoutError):
                conn.response()
            seen.append(statuses)
    assert seen[0] == seen[1] == [200, 200, 200]
