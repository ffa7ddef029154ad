"""`listen ... reuseport` and net.ipv4.tcp_migrate_req, inside a network namespace of the
test's own (the sysctl is per namespace, so the host is never touched).

With reuseport each worker has its own socket and its own accept queue. A reload that lowers
worker_processes closes the surplus sockets; connections waiting in their queues are reset
by the kernel — unless tcp_migrate_req=1 (Linux >= 5.14) moves them to the group's other
sockets. The test makes such a queue deterministically: the worker of socket #1 is stopped
(SIGSTOP) while clients connect and send, the reload to one worker retires it, and it is
killed before it could accept anything: its socket's queue is then the kernel's to keep or
reset.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from netpath.netns import run_in_netns
from process_support import error_text, generations, hold_in_queue, wait_log
from support import REPO, RunningServer, read_until_close, wait_until

CONF = """
worker_processes WORKERS;
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
    }}
}}
"""
PORT = 8080  # a namespace of our own: nothing else listens there


def unavailable() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs Linux and root for a network namespace"
    if shutil.which("ip") is None:
        return "needs ip(8) (iproute2)"
    if not os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req"):
        return "this kernel has no net.ipv4.tcp_migrate_req (Linux >= 5.14)"
    return None


@pytest.fixture
def namespace():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    name = f"wsv-m-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


class NsServer(RunningServer):
    """The real server, started inside the namespace with `ip netns exec`."""

    def __init__(self, tmp, conf_text: str, ns: str) -> None:
        super().__init__(tmp, conf_text, {"v.txt": "served\n"})
        self.ns = ns
        self.port = PORT
        self.conf.write_text(conf_text.format(root=self.root, tmp=self.tmp, port=PORT))

    def start(self) -> NsServer:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.stderr_file = open(self.stderr_path, "wb")
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "webserv", str(self.conf)]
        self.proc = subprocess.Popen(
            argv, cwd=self.tmp, env=env, stdout=self.stderr_file, stderr=subprocess.STDOUT
        )
        wait_until(lambda: error_text(self).count("start worker process") >= self.workers)
        return self

    def connect_many(self, count: int) -> list[socket.socket]:
        return run_in_netns(self.ns, lambda: hold_in_queue(PORT, count))


def sysctl(ns: str, value: int) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv4.tcp_migrate_req={value}"],
        check=True,
    )


@pytest.mark.parametrize("migrate", [1, 0])
def test_a_reload_to_fewer_reuseport_workers_keeps_their_queues_with_migrate_req(
    tmp_path, namespace, migrate
):
    sysctl(namespace, migrate)
    server = NsServer(tmp_path, CONF.replace("WORKERS", "2"), namespace)
    server.workers = 2
    server.start()
    try:
        log = error_text(server)
        second = int(re.findall(r"start worker process (\d+)", log)[1])  # socket #1's worker
        os.kill(second, signal.SIGSTOP)
        waiting = server.connect_many(60)  # about half hash to the stopped worker's socket
        server.conf.write_text(
            server.conf.read_text().replace("worker_processes 2", "worker_processes 1")
        )
        done = generations(server)
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_until(lambda: generations(server) > done)
        os.kill(second, signal.SIGKILL)  # it never accepted: its socket's queue is left
        wait_log(server, f"worker process {second} exited on signal 9")
        answered = reset = 0
        for sock in waiting:
            with sock:
                try:
                    reply = read_until_close(sock)
                except OSError:
                    reply = b""
            if reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"served\n"):
                answered += 1
            else:
                reset += 1
        if migrate:
            assert (answered, reset) == (60, 0)
        else:
            # the kernel resets the closed socket's queue: the test can tell the difference
            assert reset > 0 and answered + reset == 60
        # and the start-up log says what the setting means, when it is 0
        assert ("net.ipv4.tcp_migrate_req is 0" in log) == (not migrate)
    finally:
        server.stop()
