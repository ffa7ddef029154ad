"""A connection the kernel accepted through a SYN cookie: no SYN saved, and the record says
why — `"syn": null, "syn_reason": "syncookie"` in the lifecycle log and the status JSON,
`$syn_reason` in the access log, webserv_connections_without_syn_total{reason="syncookie"}
and the kernel's own TcpExt counters on /metrics — against a control connection made the
same way with cookies off, whose SYN is saved.

The kernel is made to answer with cookies in a network namespace the test creates (and
always deletes): net.ipv4.tcp_syncookies is per namespace, and at 2 the kernel answers every
SYN with a cookie (tcp_conn_request: `syncookies == 2 || inet_csk_reqsk_queue_is_full`),
so no SYN flood (and no tiny backlog) is needed to get one. The server runs in it under
`ip netns exec`, and so does every client (CLIENT below, a script of its own). Needs root
and `ip netns`; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lifecycle_support import log_record
from prometheus_client.parser import text_string_to_metric_families
from support import REPO, RunningServer, ipv6_loopback, wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs Linux, root and iproute2's `ip netns`",
)

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format why '$remote_port $syn_reason';
    access_log {tmp}/logs/access.log why;
    lifecycle_log {tmp}/logs/lifecycle.log;
    server {{
        listen HOST:{port};
        root {root};
        location /status {{ status on; access_log off; }}
        location = /metrics {{ metrics on; access_log off; }}
    }}
}}
"""

# One HTTP/1.1 GET with `Connection: close`, read to the server's close; prints the client's
# port and the response. `wait` retries the connect until the server listens.
CLIENT = r"""
import json, socket, sys, time
host, port, path, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "wait"
deadline = time.monotonic() + 15
while True:
    try:
        sock = socket.create_connection((host, port), timeout=10)
        break
    except OSError:
        if not wait or time.monotonic() > deadline:
            raise
        time.sleep(0.02)
with sock:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    print(json.dumps({"port": sock.getsockname()[1], "response": data.decode("latin-1")}))
"""


class Netns:
    """A network namespace of the test's own, with lo up; deleted by `delete`."""

    def __init__(self) -> None:
        self.name = f"webserv-sc-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        made = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"ip netns add failed: {made.stderr.strip()}")
        self.run("ip", "link", "set", "lo", "up")

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str) -> str:
        done = subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{argv}: {done.stderr}"
        return done.stdout

    def sysctl(self, name: str, value: int | None = None) -> int:
        path = "/proc/sys/" + name.replace(".", "/")
        if value is not None:
            self.run("sh", "-c", f"echo {value} > {path}")
        return int(self.run("cat", path))

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


class NetnsServer(RunningServer):
    """The real webserv under `ip netns exec` (the port is free there: the namespace is
    new); it is ready once a client inside the namespace gets an answer."""

    def __init__(self, netns: Netns, tmp: Path, host: str, files: Any) -> None:
        listen = f"[{host}]" if ":" in host else host
        super().__init__(tmp, CONF.replace("HOST", listen), files)
        self.netns = netns
        self.host = host
        self.client = tmp / "netns_client.py"
        self.client.write_text(CLIENT)

    def start(self) -> NetnsServer:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.netns.argv(sys.executable, "-m", "webserv", str(self.conf)),
            cwd=self.tmp,
            env=env,
            stdout=self.stderr_file,
            stderr=subprocess.STDOUT,
        )
        self.get("/", wait=True)
        return self

    def get(self, path: str, wait: bool = False) -> tuple[int, str]:
        """(the client's port, the response) of one GET made inside the namespace."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"webserv exited:\n{self.output()}")
        mode = "wait" if wait else "once"
        out = json.loads(
            self.netns.run(sys.executable, str(self.client), self.host, str(self.port), path, mode)
        )
        return out["port"], out["response"]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        _, response = self.get("/metrics")
        assert response.startswith("HTTP/1.1 200 "), response[:200]
        body = response.partition("\r\n\r\n")[2]
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    def status_record(self, client_port: int) -> dict[str, Any] | None:
        _, response = self.get("/status?format=json")
        assert response.startswith("HTTP/1.1 200 "), response[:200]
        recent = json.loads(response.partition("\r\n\r\n")[2])["recent"]
        return next((r for r in recent if r["client"]["port"] == client_port), None)


@pytest.fixture
def netns() -> Any:
    ns = Netns()
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture(params=["127.0.0.1", "::1"])
def server(netns: Netns, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if ":" in request.param and not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    # cookies off while the server starts: its readiness probe is an ordinary connection
    netns.sysctl("net.ipv4.tcp_syncookies", 1)
    srv = NetnsServer(netns, tmp_path, request.param, {"a.txt": "hello\n"})
    try:
        yield srv.start()
    finally:
        srv.stop()


def without_syn(metrics: dict[Any, float], reason: str) -> float:
    return metrics[("webserv_connections_without_syn_total", (("reason", reason),))]


def test_syn_cookie_connection_is_marked_and_counted(netns: Netns, server: NetnsServer) -> None:
    host_cookies = Path("/proc/sys/net/ipv4/tcp_syncookies").read_text()

    # the control: cookies only when the SYN queue is full (it is not): the SYN is saved
    control_port, response = server.get("/a.txt")
    assert response.startswith("HTTP/1.1 200 ") and response.endswith("hello\n")
    control = log_record(server.tmp / "logs" / "lifecycle.log", control_port)
    assert control["syn"] is not None and control["syn"]["src_port"] == control_port
    assert control["syn_reason"] is None

    # every SYN answered with a cookie, in this namespace only
    assert netns.sysctl("net.ipv4.tcp_syncookies", 2) == 2
    assert Path("/proc/sys/net/ipv4/tcp_syncookies").read_text() == host_cookies
    cookie_port, response = server.get("/a.txt")
    assert response.startswith("HTTP/1.1 200 ") and response.endswith("hello\n")
    netns.sysctl("net.ipv4.tcp_syncookies", 1)  # the scrapes below: ordinary connections

    record = log_record(server.tmp / "logs" / "lifecycle.log", cookie_port)
    assert record["syn"] is None
    assert record["syn_reason"] == "syncookie"
    # what the kernel left instead: the MSS one of the cookie's four (loopback's came down
    # to IPv4's 1460 or IPv6's 8940, less the timestamps' 12), the RTT from the echoed
    # timestamp, in whole milliseconds
    handshake = record["handshake"]
    cookie_mss = 8940 if ":" in server.host else 1460
    assert handshake["snd_mss"] == cookie_mss - 12 < control["handshake"]["snd_mss"]
    assert handshake["rtt_us"] % 1000 == 0
    # the status page says the same
    status = wait_until(lambda: server.status_record(cookie_port))
    assert status["syn"] is None and status["syn_reason"] == "syncookie"
    assert server.status_record(control_port)["syn_reason"] is None
    # and $syn_reason: "-" with a SYN
    lines = dict(
        line.split(" ", 1)
        for line in server.wait_access_lines(3)  # the readiness probe, the two GETs
    )
    assert lines[str(cookie_port)] == "syncookie"
    assert lines[str(control_port)] == "-"

    # /metrics: exactly one connection without its SYN, by cookie; the kernel's counters
    # of this new namespace count that one cookie and nothing else
    metrics = wait_until(lambda: (m := server.metrics()) and without_syn(m, "syncookie") and m)
    assert without_syn(metrics, "syncookie") == 1
    for reason in ("not_saved", "save_syn_off", "unreadable", "unsupported", "undecodable"):
        assert without_syn(metrics, reason) == 0
    assert metrics[("webserv_kernel_syncookies_sent_total", ())] == 1
    assert metrics[("webserv_kernel_syncookies_recv_total", ())] == 1
    assert metrics[("webserv_kernel_syncookies_failed_total", ())] == 0
    assert metrics[("webserv_kernel_listen_overflows_total", ())] == 0
