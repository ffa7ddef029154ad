"""limit_req over real sockets: nginx's leaky bucket per client address, refusals beyond the
burst, delays (asynchronous) within it unless nodelay, one limit across two workers, the
error log's wording, /metrics, dry runs, empty keys, and a zone that survives a reload."""

from __future__ import annotations

import re
import socket

from limits_support import OTHER, conn_from, error_text, get, limit_count, pipelined, reload
from support import RunningServer, wait_until

CONF = """
worker_processes {workers};
error_log {tmp}/error.log info;
http {{
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=quick:1m rate=5r/s;
    limit_req_zone $http_x_key zone=keyed:1m rate=1r/m;
    limit_req_zone $http_x_key zone=tiny:32k rate=1r/m;
    log_format pids '$pid $remote_addr $status $limit_req_status';
    access_log {tmp}/logs/access.log pids;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        location / {{ limit_req zone=one burst=5 nodelay; }}
        location /delay/ {{ limit_req zone=slow burst=3 delay=1; }}
        location /quick/ {{ limit_req zone=quick burst=1; }}
        location /teapot/ {{ limit_req zone=keyed; limit_req_status 429; }}
        location /keyed/ {{ limit_req zone=keyed; }}
        location /dry/ {{ limit_req zone=keyed; limit_req_dry_run on; }}
        location /tiny/ {{ limit_req zone=tiny; }}
        location = /metrics {{ metrics on; }}
    }}
}}
"""
FILES = {
    "index.html": "home\n",
    "delay/f.txt": "d\n",
    "quick/f.txt": "q\n",
    "teapot/f.txt": "t\n",
    "keyed/f.txt": "k\n",
    "dry/f.txt": "y\n",
    "tiny/f.txt": "z\n",
}


def start(tmp_path, workers=1, name="s"):
    return RunningServer(tmp_path / name, CONF.replace("{workers}", str(workers)), FILES).start()


def test_a_burst_of_10000_from_one_address_across_two_workers(tmp_path):
    server = start(tmp_path, workers=2)
    try:
        statuses = []
        for _ in range(40):  # 40 connections × 250 pipelined: reuseport spreads them
            statuses += pipelined(server.port, "/", 250, source=OTHER)
            # meanwhile another address has its own bucket, served as if alone
        mine = [get(server.port, "/")[0] for _ in range(6)]
        assert len(statuses) == 10000
        # one bucket for the address, whichever worker answered: 1 + burst=5, no more
        assert statuses.count(200) == 6 and statuses.count(503) == 9994
        assert statuses[:6] == [200] * 6  # nodelay: the burst at once, in order
        assert mine == [200] * 6
        assert get(server.port, "/", source=OTHER)[0] == 503  # still refused, still serving
        assert limit_count(server.port, "req", "one", "rejected") == 9995
        assert limit_count(server.port, "req", "one", "passed") == 12
        server.stop()  # (its workers flush their access log buffers)
        lines = server.access_lines()
        assert len(lines) == 10009, len(lines)  # and 6 + 1 + 2 /metrics
        pids = {line.split()[0] for line in lines if line.split()[1] == OTHER}
        assert len(pids) == 2, pids  # both workers answered the address, one limit held
        outcome = {tuple(line.split()[2:]) for line in lines if line.split()[1] == OTHER}
        assert outcome == {("200", "PASSED"), ("503", "REJECTED")}
        log = error_text(server)
        assert re.search(
            r'\[error\] \d+#\d+: \*\d+ limiting requests, excess: 5\.\d{3} by zone "one", '
            r'client: 127\.0\.0\.2, server: , request: "GET / HTTP/1\.1", host: "localhost"',
            log,
        ), log[-2000:]
    finally:
        server.stop()


def test_delay_waits_without_holding_the_worker_nodelay_does_not(tmp_path):
    server = start(tmp_path)
    try:
        port = server.port
        # rate 1r/m, burst=3, delay=1: the 1st and 2nd at once, the 3rd and 4th delayed by
        # a minute and more, the 5th refused at once
        conns = []
        answers = {}
        for i in range(5):
            conn = conn_from(port, OTHER)
            conn.send(b"GET /delay/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            conns.append(conn)
            if i in (0, 1, 4):
                answers[i] = conn.response()[0]
        assert answers == {0: 200, 1: 200, 4: 503}
        # the delayed two are waiting, and the worker serves others meanwhile (one worker)
        for _ in range(3):
            assert get(port, "/quick/f.txt")[0] in (200,)
        for conn in conns[2:4]:
            conn.sock.setblocking(False)
            try:
                assert conn.sock.recv(1) == b"", "a delayed request was answered early"
            except BlockingIOError:
                pass
        for conn in conns:
            conn.sock.close()  # the client gives up mid-delay: nothing breaks
        assert limit_count(port, "req", "slow", "delayed") == 2
        assert limit_count(port, "req", "slow", "passed") == 2
        assert limit_count(port, "req", "slow", "rejected") == 1
        assert server.alive()
        log = error_text(server)
        assert re.search(
            r'\[warn\] .* delaying request, excess: 2\.\d{3}, by zone "slow", client: 127\.0\.0\.2',
            log,
        ), log[-2000:]
    finally:
        server.stop()


def test_a_delayed_request_is_answered_after_its_delay(tmp_path):
    server = start(tmp_path)
    try:
        with conn_from(server.port, OTHER) as conn:
            conn.send(b"GET /quick/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3)
            got = [conn.response() for _ in range(3)]
        # 5r/s burst=1: the 2nd waits ~200 ms and is answered; the 3rd, right after it,
        # finds the bucket at its burst again or drained enough: never more than one waits
        assert [s for s, _, _ in got[:2]] == [200, 200]
        assert got[1][2] == b"q\n"
        assert limit_count(server.port, "req", "quick", "delayed") >= 1
        lines = server.wait_access_lines(2)
        assert any(line.endswith(" 200 DELAYED") for line in lines), lines
    finally:
        server.stop()


def test_refusals_status_keepalive_keys_and_dry_run(tmp_path):
    server = start(tmp_path)
    try:
        port = server.port
        key = "X-Key: a\r\n"
        assert get(port, "/teapot/f.txt", headers=key)[0] == 200
        status, headers, body = get(port, "/teapot/f.txt", headers=key)
        assert status == 429 and b"429" in body
        # another key has its own bucket; no key at all is never limited
        assert get(port, "/keyed/f.txt", headers="X-Key: b\r\n")[0] == 200
        assert get(port, "/keyed/f.txt", headers="X-Key: b\r\n")[0] == 503
        assert [get(port, "/keyed/f.txt")[0] for _ in range(5)] == [200] * 5
        # a refusal keeps the connection (as nginx): the next request on it is answered
        with conn_from(port) as conn:
            conn.send(b"GET /keyed/f.txt HTTP/1.1\r\nHost: l\r\nX-Key: b\r\n\r\n" * 3)
            got = [conn.response() for _ in range(3)]
        assert [(s, h["connection"]) for s, h, _ in got] == [(503, "keep-alive")] * 3
        # dry run: counted and logged, nothing refused
        assert [get(port, "/dry/f.txt", headers="X-Key: c\r\n")[0] for _ in range(3)] == [200] * 3
        assert limit_count(port, "req", "keyed", "rejected_dry_run") == 2
        assert "limiting requests, dry run, excess: 1.000 by zone" in error_text(server)
        # a key longer than an entry holds (stored as a digest) is limited all the same
        long = "X-Key: " + "k" * 300 + "\r\n"
        assert [get(port, "/keyed/f.txt", headers=long)[0] for _ in range(2)] == [200, 503]
        assert get(port, "/keyed/f.txt", headers="X-Key: " + "k" * 299 + "j\r\n")[0] == 200
        # $limit_req_status: the state of the ones limited, "-" where no limit_req applies
        get(port, "/metrics")
        assert wait_until(lambda: any(ln.endswith(" 200 -") for ln in access_lines(server)))
        assert not any(ln.endswith(" ") for ln in access_lines(server))
        assert any(ln.endswith(" 503 REJECTED") for ln in access_lines(server))
        assert any(ln.endswith(" 200 PASSED") for ln in access_lines(server))
        assert server.alive()
    finally:
        server.stop()


def access_lines(server) -> list[str]:
    path = server.tmp / "logs" / "access.log"
    return path.read_text().splitlines() if path.exists() else []


def test_a_full_zone_forgets_the_oldest_and_never_refuses_a_new_key(tmp_path):
    server = start(tmp_path)
    try:
        # a 32k zone holds ~800 states: 3000 keys, each new key passes (LRU states evicted)
        statuses = []
        for batch in range(30):
            with conn_from(server.port) as conn:  # (keepalive_requests: 1000 a connection)
                conn.send(
                    b"".join(
                        b"GET /tiny/f.txt HTTP/1.1\r\nHost: l\r\nX-Key: k%d\r\n\r\n"
                        % (batch * 100 + i)
                        for i in range(100)
                    )
                )
                statuses += [conn.response()[0] for _ in range(100)]
        assert statuses == [200] * 3000
        assert server.alive()
    finally:
        server.stop()


RELOAD = CONF.replace("{workers}", "2")


def test_a_zone_keeps_its_state_across_a_reload_unless_changed(tmp_path):
    server = RunningServer(tmp_path / "r", RELOAD, FILES).start()
    try:
        port = server.port
        assert [get(port, "/keyed/f.txt", headers="X-Key: r\r\n")[0] for _ in range(2)] == [
            200,
            503,
        ]
        # same name, size and key (a location added): the new workers see the old state
        reload(
            server,
            RELOAD.replace(
                "location = /metrics", "location /new/ {{ }}\n        location = /metrics"
            ),
        )
        assert get(port, "/keyed/f.txt", headers="X-Key: r\r\n")[0] == 503
        # a new size: a new zone, a fresh bucket
        reload(server, RELOAD.replace("zone=keyed:1m", "zone=keyed:2m"))
        assert get(port, "/keyed/f.txt", headers="X-Key: r\r\n")[0] == 200
    finally:
        server.stop()


def test_source_addresses_are_distinct():
    """The premise of these tests: 127.0.0.2 is a local address of its own."""
    with socket.socket() as s:
        s.bind((OTHER, 0))
        assert s.getsockname()[0] == OTHER
