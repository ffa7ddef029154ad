"""`lifecycle off;`: no SYN saved or read, no TCP_INFO read for the record, nothing recorded;
yet `$tcpinfo_rtt` still works in a log line, read when the line is written (nginx's meaning).

What the server asks the kernel is watched with strace (setsockopt/getsockopt only), with
`lifecycle on;` as the control that shows the same trace does catch those calls.
"""

from __future__ import annotations

import re
import shutil

import pytest
from lifecycle_support import Straced, connect, get, read_response, status_json, status_of
from support import RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format tcp '$remote_port $status $tcpinfo_rtt $tcpinfo_rttvar $tcpinfo_snd_cwnd '
                   '$tcpinfo_rcv_space $handshake_rtt $syn_isn $syn_ttl $closed_by';
    access_log {tmp}/logs/access.log tcp;
    lifecycle_log {tmp}/logs/lifecycle.log;
    lifecycle LIFECYCLE;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; access_log off; }}
    }}
}}
"""
FILES = {"a.txt": "hello\n"}
CONNECTIONS = 3


def exercise(server: RunningServer) -> list[int]:
    """CONNECTIONS connections, one logged request each, closed by the client."""
    ports = []
    for _ in range(CONNECTIONS):
        with connect(server.port) as sock:
            sock.sendall(get("/a.txt"))
            assert status_of(read_response(sock)) == 200
            ports.append(sock.getsockname()[1])
    return ports


@pytest.fixture
def straced(tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    started = []

    def start(lifecycle: str) -> Straced:
        conf = CONF.replace("LIFECYCLE", lifecycle)
        server = Straced(tmp_path / lifecycle, conf, FILES, trace="setsockopt,getsockopt")
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def count(calls: list[str], call: str, option: str) -> int:
    """How many `call`s (getsockopt / setsockopt) of SOL_TCP `option` the trace holds."""
    return sum(1 for c in calls if re.search(rf"\b{call}\(\d+, SOL_TCP, {option}\b", c))


def test_lifecycle_off_reads_nothing_but_the_log_variables(straced):
    server = straced("off")
    ports = exercise(server)
    lines = server.wait_access_lines(CONNECTIONS)
    data = status_json(server.port)
    server.stop()  # flushes the trace and the logs

    calls = server.calls()
    assert calls, "strace recorded nothing"
    assert count(calls, "setsockopt", "TCP_SAVE_SYN") == 0  # no listener asked to keep SYNs
    assert count(calls, "getsockopt", "TCP_SAVED_SYN") == 0
    # TCP_INFO only where a log line asked for $tcpinfo_*: once per line, however many
    # $tcpinfo_ fields it names
    assert count(calls, "getsockopt", "TCP_INFO") == len(lines) == CONNECTIONS

    assert data["lifecycle"] is False
    assert data["open"] == [] and data["recent"] == []
    stats = data["stats"]  # connections and requests are counted; nothing from the kernel
    # + the connection asking for the status and the readiness probe of the test support
    assert stats["accepted"] >= CONNECTIONS + 1
    assert stats["closed_by"]["client"] >= 1  # counted without any kernel read
    assert stats["handshake_rtt_seconds"]["count"] == 0
    assert stats["retransmits_per_connection"]["count"] == 0
    assert stats["requests_by_class"]["2xx"] == CONNECTIONS
    assert (
        not (server.tmp / "logs" / "lifecycle.log").exists()
        or not (server.tmp / "logs" / "lifecycle.log").read_text()
    )

    for line, port in zip(lines, ports, strict=True):
        fields = line.split()
        assert fields[:2] == [str(port), "200"]
        rtt, rttvar, cwnd, rcv_space = (int(v) for v in fields[2:6])
        assert rtt > 0 and rttvar > 0 and cwnd >= 1 and rcv_space > 0
        # what only the lifecycle record knows is "-"; $closed_by still works
        assert fields[6:] == ["-", "-", "-", "-"]


def test_lifecycle_on_control(straced):
    """The same trace with `lifecycle on;`: the calls the test above finds absent are there."""
    server = straced("on")
    exercise(server)
    lines = server.wait_access_lines(CONNECTIONS)
    server.stop()
    calls = server.calls()
    assert count(calls, "setsockopt", "TCP_SAVE_SYN") == 1  # the one listener
    assert (
        count(calls, "getsockopt", "TCP_SAVED_SYN") == CONNECTIONS + 1
    )  # + the probe connect at start
    # at accept and at close for each connection, plus once per log line
    assert count(calls, "getsockopt", "TCP_INFO") >= 2 * CONNECTIONS + len(lines)
    for line in lines:
        assert line.split()[6] != "-" and line.split()[7] != "-"
