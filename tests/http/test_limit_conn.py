"""limit_conn over real sockets: requests being processed per client address, shared by two
workers, released when a response ends and when the client goes away in the middle of one;
refusals with their status and log line; dry runs."""

from __future__ import annotations

import re

from limits_support import OTHER, conn_from, error_text, get, limit_count, pipelined
from support import RunningServer, wait_until

CONF = """
worker_processes 2;
error_log {tmp}/error.log info;
http {{
    limit_conn_zone $binary_remote_addr zone=c:1m;
    limit_conn_zone $binary_remote_addr zone=d:1m;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        # a slow download holds its request open: 10 KiB a second of a 400 KiB file
        location /slow/ {{ limit_conn c 2; limit_rate 10k; }}
        location /one/ {{ limit_conn c 1; }}
        location /dry/ {{ limit_conn d 1; limit_conn_dry_run on; limit_rate 10k; }}
        location /teapot/ {{ limit_conn d 1; limit_conn_status 429; limit_rate 10k; }}
        location = /metrics {{ metrics on; }}
    }}
}}
"""
BIG = bytes(range(256)) * 1600
FILES = {"slow/big.bin": BIG, "one/f.txt": "one\n", "dry/big.bin": BIG, "teapot/big.bin": BIG}
REQUEST = b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n"


def started(port, path, source=OTHER):
    """A connection whose response to PATH has begun (its header section read)."""
    conn = conn_from(port, source)
    conn.send(REQUEST % path.encode())
    while b"\r\n\r\n" not in conn.buf:
        assert conn._fill()
    return conn


def holder(port, path, source=OTHER):
    """A connection whose 200 response to PATH has begun, once a count is free (a release
    is seen by the server when it notices a client's close: not at once)."""

    def attempt():
        conn = started(port, path, source)
        if conn.buf.startswith(b"HTTP/1.1 200"):
            return conn
        conn.sock.close()
        return None

    return wait_until(attempt)


def status_of(port, path, source=OTHER):
    with conn_from(port, source) as conn:
        conn.send(REQUEST % path.encode())
        while b"\r\n\r\n" not in conn.buf:
            assert conn._fill()
        return int(conn.buf.split(b" ", 2)[1]), conn.buf.split(b"\r\n\r\n")[0]


def test_concurrent_requests_are_limited_and_released_on_disconnect(tmp_path):
    server = RunningServer(tmp_path / "s", CONF, FILES).start()
    try:
        port = server.port
        held = [started(port, "/slow/big.bin") for _ in range(2)]
        assert all(c.buf.startswith(b"HTTP/1.1 200") for c in held)
        # the third, on new connections that land on both workers: refused, kept alive
        refused = [status_of(port, "/slow/big.bin") for _ in range(10)]
        assert {s for s, _ in refused} == {503}
        assert all(b"Connection: keep-alive" in head for _, head in refused)
        # another address counts alone
        mine = started(port, "/slow/big.bin", source="127.0.0.1")
        assert mine.buf.startswith(b"HTTP/1.1 200")
        mine.sock.close()
        # one client goes away mid-response: its count goes back, a new request passes
        held[0].sock.close()
        again = holder(port, "/slow/big.bin")
        assert status_of(port, "/slow/big.bin")[0] == 503  # two held again: refused again
        again.sock.close()
        held[1].sock.close()
        assert limit_count(port, "conn", "c", "rejected") >= 10
        log = error_text(server)
        assert re.search(
            r'\[error\] \d+#\d+: \*\d+ limiting connections by zone "c", client: 127\.0\.0\.2, '
            r'server: , request: "GET /slow/big.bin HTTP/1\.1"',
            log,
        ), log[-2000:]
        assert server.alive()
    finally:
        server.stop()


def test_a_finished_response_gives_its_count_back(tmp_path):
    # one worker: with two, the next connection can reach the other worker in the moment
    # between the last write of a response and its release (nginx has the same moment)
    server = RunningServer(tmp_path / "s", CONF.replace("processes 2", "processes 1"), FILES)
    server.start()
    try:
        # limit 1: sequential requests on one connection each finish before the next
        assert pipelined(server.port, "/one/f.txt", 50, source=OTHER) == [200] * 50
        assert [get(server.port, "/one/f.txt", source=OTHER)[0] for _ in range(5)] == [200] * 5
        assert limit_count(server.port, "conn", "c", "passed") == 55
        assert limit_count(server.port, "conn", "c", "rejected") == 0
    finally:
        server.stop()


def test_dry_run_and_status(tmp_path):
    server = RunningServer(tmp_path / "s", CONF, FILES).start()
    try:
        port = server.port
        first = started(port, "/dry/big.bin")
        assert status_of(port, "/dry/big.bin")[0] == 200  # over the limit, but a dry run
        assert 'limiting connections, dry run, by zone "d"' in error_text(server)
        assert limit_count(port, "conn", "d", "rejected_dry_run") == 1
        first.sock.close()
        other = holder(port, "/teapot/big.bin")
        assert status_of(port, "/teapot/big.bin")[0] == 429
        other.sock.close()
    finally:
        server.stop()
