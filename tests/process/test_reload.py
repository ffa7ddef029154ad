"""Reload (SIGHUP, `-s reload`): a new generation of workers on the new configuration, the
old one retired gracefully, nothing lost — real master, real workers, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from process_support import (
    Load,
    error_text,
    generations,
    get,
    hold_in_queue,
    status_json,
    wait_log,
)
from support import REPO, free_port, read_until_close, wait_until

CONF = """
worker_processes WORKERS;
error_log {tmp}/error.log info;
pid {tmp}/webserv.pid;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port} LISTEN_OPTS;
        server_name NAME;
        root ROOT;
        location = /status {{ status on; access_log off; }}
        location = /metrics {{ metrics on; access_log off; }}
    }}
    EXTRA
}}
"""


def conf(
    workers: int = 2,
    root: str = "{root}",
    name: str = "one.test",
    extra: str = "",
    listen_opts: str = "",
) -> str:
    return (
        CONF.replace("WORKERS", str(workers))
        .replace("ROOT", root)
        .replace("NAME", name)
        .replace("EXTRA", extra)
        .replace("LISTEN_OPTS", listen_opts)
    )


def rewrite(server, text: str) -> None:
    values = {"root": str(server.root), "tmp": str(server.tmp), "port": server.port}
    server.conf.write_text(text.format(**values))


def reload(server) -> None:
    """HUP, then wait until the master says the new generation serves."""
    done = generations(server)
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(lambda: generations(server) > done, timeout=30)


def versions(server) -> None:
    (server.root / "v.txt").write_text("one\n")
    other = server.tmp / "www2"
    other.mkdir(exist_ok=True)
    (other / "v.txt").write_text("two\n")


def test_reload_applies_a_changed_root(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    versions(server)
    assert get(server.port, "/v.txt")[2] == b"one\n"
    rewrite(server, conf(root="{tmp}/www2"))
    reload(server)
    # the old workers may still finish what they had; every new connection is the new one's
    wait_until(lambda: all(get(server.port, "/v.txt")[2] == b"two\n" for _ in range(20)))
    log = error_text(server)
    assert "signal SIGHUP received, reconfiguring" in log
    assert "gracefully shutting down" in log


def test_reload_adds_and_removes_a_listen_address(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    second = free_port()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", second), timeout=2).close()
    rewrite(server, conf(extra=f"server {{{{ listen 127.0.0.1:{second}; root {{root}}; }}}}"))
    reload(server)
    assert get(second, "/v.txt")[2] == b"one\n"
    assert get(server.port, "/v.txt")[2] == b"one\n"
    rewrite(server, conf())
    reload(server)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", second), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True

    wait_until(refused)  # closed once the workers that had it are gone
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_reload_applies_a_changed_server_name(webserv):
    extra = "server {{ listen 127.0.0.1:{port}; server_name two.test; root {tmp}/www2; }}"
    server = webserv(conf(extra=extra), {"v.txt": "one\n"})
    versions(server)
    assert get_host(server.port, "one.test") == b"one\n"
    assert get_host(server.port, "two.test") == b"two\n"
    rewrite(server, conf(name="two.test", extra=extra.replace("two.test", "one.test")))
    reload(server)
    wait_until(lambda: get_host(server.port, "two.test") == b"one\n")
    assert get_host(server.port, "one.test") == b"two\n"


def get_host(port: int, host: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /v.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return read_until_close(sock).partition(b"\r\n\r\n")[2]


def test_a_broken_config_on_reload_keeps_the_old_one_serving(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    pids = set(server.worker_pids(2))
    server.conf.write_text(server.conf.read_text().replace("server_name", "server_nmae"))
    os.kill(server.proc.pid, signal.SIGHUP)
    log = wait_log(server, "reload failed")
    assert f'unknown directive "server_nmae" in {server.conf}:' in log
    assert "still serving the previous configuration" in log
    assert set(server.worker_pids(2)) == pids  # no worker was replaced
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_a_reload_that_cannot_bind_keeps_the_old_one_serving(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rewrite(server, conf(extra=f"server {{{{ listen 127.0.0.1:{port}; }}}}"))
        os.kill(server.proc.pid, signal.SIGHUP)
        log = wait_log(server, "reload failed")
    assert f"bind() to 127.0.0.1:{port} failed (98: Address already in use)" in log
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_a_reload_that_changes_reuseport_keeps_the_old_one_serving(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    pids = set(server.worker_pids(2))
    rewrite(server, conf(listen_opts="reuseport"))
    os.kill(server.proc.pid, signal.SIGHUP)
    log = wait_log(server, "reload failed")
    assert f"reuseport of 127.0.0.1:{server.port} cannot change on a reload" in log
    assert set(server.worker_pids(2)) == pids
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_s_reload_and_the_other_s_commands(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    versions(server)
    rewrite(server, conf(root="{tmp}/www2"))

    def s(command: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return subprocess.run(
            [sys.executable, "-m", "webserv", "-s", command, str(server.conf)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )

    before = generations(server)
    assert s("reload").returncode == 0
    wait_until(lambda: generations(server) > before)
    wait_until(lambda: get(server.port, "/v.txt")[2] == b"two\n")
    assert s("reopen").returncode == 0
    wait_log(server, "signal SIGUSR1 received, logs reopened", count=3)  # master + 2 workers
    assert s("quit").returncode == 0
    assert server.proc.wait(30) == 0
    assert not (server.tmp / "webserv.pid").exists()


@pytest.mark.parametrize("listen_opts", ["", "reuseport"])
def test_twenty_reloads_under_load_lose_nothing(webserv, listen_opts):
    """Keep-alive and `Connection: close` clients all the while, some pausing between
    requests: no failed request, no reset, no refused connection, and every body is one
    generation's, never a mix. (A retiring worker answers a request that reaches an idle
    connection with `Connection: close` instead of closing it under the client's feet.)"""
    server = webserv(conf(listen_opts=listen_opts), {"v.txt": "one\n"})
    versions(server)
    bodies = {b"one\n", b"two\n"}
    with Load(server.port, "/v.txt", bodies, keepalive=3, close=3, thinking=6) as load:
        load.wait_requests(200)
        for i in range(20):
            root = "{tmp}/www2" if i % 2 == 0 else "{root}"
            rewrite(server, conf(root=root, listen_opts=listen_opts))
            reload(server)
            load.wait_requests(load.ok + 100)
    assert dict(load.failures) == {}, load.examples
    assert load.seen[b"one\n"] and load.seen[b"two\n"]
    assert "reload failed" not in error_text(server)
    assert "[alert]" not in error_text(server)  # no worker died


@pytest.mark.parametrize("listen_opts", ["", "reuseport"])
def test_connections_waiting_in_the_accept_queue_survive_a_reload(webserv, listen_opts):
    """Nobody accepts (the workers are stopped) while clients connect and send; a reload
    retires those workers: the new generation answers every waiting connection."""
    server = webserv(conf(listen_opts=listen_opts), {"v.txt": "one\n"})
    old = server.worker_pids(2)
    for pid in old:
        os.kill(pid, signal.SIGSTOP)
    try:
        waiting = hold_in_queue(server.port, 40)
        reload(server)  # the new workers start; the stopped ones get QUIT
    finally:
        for pid in old:
            os.kill(pid, signal.SIGCONT)
    answers = []
    for sock in waiting:
        with sock:
            answers.append(read_until_close(sock))
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") and a.endswith(b"one\n") for a in answers)
    wait_until(lambda: not set(old) & set(server.worker_pids(2)))


def test_status_and_metrics_describe_the_whole_server_across_a_reload(webserv):
    server = webserv(conf(), {"v.txt": "one\n"})
    for _ in range(30):
        assert get(server.port, "/v.txt")[0] == 200
    reload(server)
    for _ in range(30):
        assert get(server.port, "/v.txt")[0] == 200
    data = status_json(server.port)
    assert data["server"]["reloads"] == 1
    assert data["server"]["generation"] == 2
    assert {w["generation"] for w in data["workers"]} >= {2}
    # counters of the retired generation are kept: 60 requests answered in all (at least:
    # the status request itself is counted once answered)
    wait_until(lambda: status_json(server.port)["stats"]["requests_by_class"]["2xx"] >= 60)
