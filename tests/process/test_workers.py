"""Many workers under one master: how many start, a dead one restarted (with a back-off),
signals a worker must survive, one server to the observer (/metrics, /status), logs from
many writers, and the single-process mode."""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest
from process_support import error_text, get, metrics, status_json, wait_log
from support import RawConn, children_of, wait_until

CONF = """
worker_processes WORKERS;
MAIN
error_log {tmp}/error.log info;
pid {tmp}/webserv.pid;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port} LISTEN_OPTS;
        root {root};
        location = /status {{ status on; access_log off; }}
        location = /metrics {{ metrics on; access_log off; }}
    }}
}}
"""
FILES = {"v.txt": "one\n", "index.html": "home\n"}


def conf(workers="2", main: str = "", listen_opts: str = "") -> str:
    return (
        CONF.replace("WORKERS", str(workers))
        .replace("MAIN", main)
        .replace("LISTEN_OPTS", listen_opts)
    )


def test_worker_processes_starts_that_many_workers(webserv):
    server = webserv(conf(3), FILES)
    pids = server.worker_pids(3)
    assert os.getpid() not in pids and server.proc.pid not in pids
    log = wait_log(server, "start worker process", count=3)
    assert f"master process {server.proc.pid}, 3 worker processes" in log
    assert (server.tmp / "webserv.pid").read_text().strip() == str(server.proc.pid)
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_worker_processes_auto_is_the_cpus_it_may_run_on(webserv):
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})  # the server inherits one CPU
    try:
        server = webserv(conf("auto"), FILES)
    finally:
        os.sched_setaffinity(0, before)
    assert len(server.worker_pids(1)) == 1
    assert "1 worker processes" in wait_log(server, "master process")


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(webserv):
    server = webserv(conf(2), FILES)
    with RawConn(server.port) as conn:
        conn.send(b"GET /status?format=json HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = conn.response()
        assert status == 200
        survivor = int(re.search(rb'"pid":(\d+)', body)[1])  # the worker this connection has
        victim = next(pid for pid in server.worker_pids(2) if pid != survivor)
        os.kill(victim, signal.SIGKILL)
        log = wait_log(server, f"worker process {victim} exited on signal 9")
        assert "[alert]" in log
        replaced = server.worker_pids(2)
        wait_until(lambda: victim not in server.worker_pids(2))
        replaced = server.worker_pids(2)
        assert survivor in replaced
        for _ in range(20):  # the survivor's keep-alive connection never noticed
            conn.send(b"GET /v.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response()[2] == b"one\n"
    for _ in range(20):
        assert get(server.port, "/v.txt")[2] == b"one\n"
    assert metrics(server.port)["webserv_worker_restarts_total"] == 1


def test_a_worker_that_keeps_dying_is_restarted_with_a_growing_back_off(webserv):
    server = webserv(conf(1), FILES)
    for _ in range(4):  # kill each new worker as soon as it exists: it dies right after start
        pid = wait_until(lambda: _kill(server.worker_pid()))
        wait_until(lambda pid=pid: pid not in children_of(server.proc.pid))
    log = wait_log(server, "right after start", count=4)
    delays = re.findall(r"died (\d+) time\(s\) right after start: starting it again in (\S+)s", log)
    assert delays == [("1", "0.1"), ("2", "0.2"), ("3", "0.4"), ("4", "0.8")]
    assert get(server.port, "/v.txt")[2] == b"one\n"  # and it serves once left alone


def _kill(pid: int) -> int | None:
    """SIGKILL PID; None when it was already gone (a child listed as it exited: CI saw
    one once), so that the caller looks for the worker again."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return pid


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGPIPE])
def test_a_stray_signal_never_kills_a_worker(webserv, signum):
    server = webserv(conf(1), FILES)
    pid = server.worker_pid()
    os.kill(pid, signum)
    for _ in range(5):
        assert get(server.port, "/v.txt")[2] == b"one\n"
    assert server.worker_pid() == pid
    assert "exited" not in error_text(server)


def test_metrics_count_every_request_whichever_worker_answers(webserv):
    server = webserv(conf(2, listen_opts="reuseport"), FILES)
    connections = 120
    for _ in range(connections):
        assert get(server.port, "/v.txt")[0] == 200
    scrapes = 0

    def counted() -> bool:
        nonlocal scrapes
        scrapes += 1
        m = metrics(server.port)
        per_worker = [v for k, v in m.items() if k.startswith("webserv_worker_connections_acc")]
        # every connection: RunningServer.start's probe, the requests, the scrapes — this
        # one included (counted as a connection before it is answered, as a request after),
        # in the total and in the sum of the workers (none has exited); another worker's
        # numbers may lag its sweep tick, hence the polling
        total = 1 + connections + scrapes
        return (
            m["webserv_connections_accepted_total"] == total
            and sum(per_worker) == total
            and m['webserv_requests_total{status_class="2xx"}'] == connections + scrapes - 1
            and len(per_worker) == 2
            and all(v > 0 for v in per_worker)  # reuseport spreads connections
        )

    wait_until(counted)
    assert metrics(server.port)["webserv_workers"] == 2


def test_status_shows_every_workers_connections_with_unique_ids(webserv):
    server = webserv(conf(2, listen_opts="reuseport"), FILES)
    ports = set()
    for _ in range(40):
        with RawConn(server.port) as conn:
            ports.add(conn.sock.getsockname()[1])
            conn.send(b"GET /v.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.response()[0] == 200

    def all_there():
        data = status_json(server.port)
        mine = [c for c in data["recent"] if c["client"]["port"] in ports]
        return len(mine) == len(ports) and data

    data = wait_until(all_there)
    mine = [c for c in data["recent"] if c["client"]["port"] in ports]
    workers = {c["worker"]["pid"] for c in mine}
    assert workers == set(server.worker_pids(2))  # both workers' connections, in one answer
    ids = [c["id"] for c in (*data["recent"], *data["open"])]
    assert len(ids) == len(set(ids))  # ids are unique across workers
    assert {w["pid"] for w in data["workers"]} == workers
    assert all(w["state"] == "serving" for w in data["workers"])


def test_log_lines_of_many_workers_never_interleave(webserv):
    server = webserv(conf(3), FILES)
    threads, per_thread = 6, 150

    def client(n: int) -> None:
        for i in range(per_thread):
            long = "x" * (300 + (n * 37 + i) % 1500)  # lines of many lengths
            status = get(server.port, f"/v.txt?n={n}&i={i}&pad={long}")[0]
            assert status == 200

    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    os.kill(server.proc.pid, signal.SIGQUIT)  # every worker flushes its buffer and exits
    assert server.proc.wait(30) == 0
    lines = server.access_lines()
    assert len(lines) == threads * per_thread
    shape = re.compile(
        r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /v\.txt\?n=(\d+)&i=(\d+)&pad=x+ HTTP/1\.1" 200 4 '
        r'"-" "-"$'
    )
    seen = set()
    for line in lines:
        match = shape.match(line)
        assert match, f"a broken line: {line[:200]!r}"
        seen.add((match[1], match[2]))
    assert len(seen) == threads * per_thread
    error_shape = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\] \d+#0: ")
    for line in error_text(server).splitlines():
        assert error_shape.match(line), f"a broken error-log line: {line[:200]!r}"


def test_master_process_off_serves_alone_and_survives_a_hup(webserv):
    server = webserv(conf(4, main="master_process off;"), FILES)
    assert children_of(server.proc.pid) == []
    assert get(server.port, "/v.txt")[2] == b"one\n"
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_log(server, "signal SIGHUP received")
    assert server.proc.poll() is None
    assert get(server.port, "/v.txt")[2] == b"one\n"
    assert "worker_processes is ignored" in error_text(server)
