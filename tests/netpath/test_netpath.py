"""The path is real: the TCP stacks at both ends see its RTT and its losses."""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest

from .fixtures import unavailable_reason
from .forwarder import NetPath, cleanup_stale, list_namespaces

Factory = Callable[..., NetPath]

# struct tcp_info offsets on Linux, checked with offsetof() against <linux/tcp.h>:
# __u32 tcpi_rtt (srtt, µs) at 68, __u32 tcpi_total_retrans at 100; sizeof is 232 on 6.x.
TCPI_RTT, TCPI_TOTAL_RETRANS = 68, 100
TOLERANCE_MS = 15.0

ECHO_SERVER = """
import socket, sys
srv = socket.create_server((sys.argv[1], 0))
print(srv.getsockname()[1], flush=True)  # the test waits for this line instead of sleeping
while True:
    conn, _ = srv.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""

ECHO_CLIENT = """
import json, socket, struct, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=30)
def info():
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("I", raw, 68)[0], struct.unpack_from("I", raw, 100)[0]
handshake_rtt_us, _ = info()  # only the SYN/SYN-ACK sample so far
payload = bytes(i % 251 for i in range(size))
s.sendall(payload)
got = bytearray()
while len(got) < size and (chunk := s.recv(65536)):
    got += chunk
rtt_us, retrans = info()
print(json.dumps({"handshake_rtt_us": handshake_rtt_us, "rtt_us": rtt_us,
                  "total_retrans": retrans, "echo_ok": bytes(got) == payload}))
"""


def tcp_info(sock: socket.socket) -> tuple[int, int]:
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    assert len(raw) >= TCPI_TOTAL_RETRANS + 4
    return (
        struct.unpack_from("I", raw, TCPI_RTT)[0],
        struct.unpack_from("I", raw, TCPI_TOTAL_RETRANS)[0],
    )


def start_echo(path: NetPath) -> str:
    proc = path.run_in_server(
        [sys.executable, "-c", ECHO_SERVER, path.server_ip], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    assert port.isdigit(), f"echo server did not start (exit {proc.poll()})"
    return port


def echo_from_client(path: NetPath, port: str, size: int) -> dict[str, int]:
    return json.loads(path.python_in_client(ECHO_CLIENT, path.server_ip, port, str(size)))


def connected_pair(
    path: NetPath, family: int = socket.AF_INET
) -> tuple[socket.socket, socket.socket]:
    """(client, accepted server) sockets in this process, one in each namespace."""
    srv_ip = path.server_ip if family == socket.AF_INET else path.server_ip6
    listener = path.server_socket(family)
    listener.bind((srv_ip, 0))
    listener.listen()
    listener.settimeout(30)
    client = path.client_socket(family)
    client.settimeout(30)
    client.connect(listener.getsockname()[:2])
    server, _ = listener.accept()
    server.settimeout(30)
    listener.close()
    return client, server


@pytest.mark.parametrize("delay_ms", [10, 25, 50])
def test_client_tcp_info_rtt_follows_delay(netpath: Factory, delay_ms: int) -> None:
    path = netpath(delay_ms=delay_ms)
    port = start_echo(path)
    result = echo_from_client(path, port, 100_000)
    assert result["echo_ok"]
    for key in ("handshake_rtt_us", "rtt_us"):
        rtt_ms = result[key] / 1000
        assert abs(rtt_ms - 2 * delay_ms) <= TOLERANCE_MS, f"{key}={rtt_ms:.1f} ms"
    assert result["total_retrans"] == 0
    stats = path.stats
    assert stats["c2s"].dropped == stats["s2c"].dropped == 0
    assert stats["c2s"].forwarded > 0 and stats["s2c"].forwarded > 0
    # TUN without IFF_VNET_HDR advertises no offloads, so GSO is undone before we read.
    assert max(s.max_packet for s in stats.values()) <= 1500


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_server_sees_handshake_rtt(netpath: Factory, family: int) -> None:
    # The server's first RTT sample is SYN-ACK -> ACK: what webserv records per connection.
    path = netpath(delay_ms=25)
    client, server = connected_pair(path, family)
    with client, server:
        rtt_us, retrans = tcp_info(server)
        assert abs(rtt_us / 1000 - 50) <= TOLERANCE_MS
        assert retrans == 0


def test_dropped_data_segment_is_retransmitted(netpath: Factory) -> None:
    path = netpath(delay_ms=5, record=True)
    port = start_echo(path)
    path.drop_next(1, "c2s", only_data=True)
    result = echo_from_client(path, port, 5000)
    assert result["echo_ok"]
    assert result["total_retrans"] >= 1
    assert path.stats["c2s"].dropped == 1
    packets = path.packets
    [lost] = [p for p in packets if p.dropped]
    assert lost.direction == "c2s" and lost.payload  # the handshake went through untouched
    resent = [p for p in packets if not p.dropped and p.direction == "c2s" and p.t > lost.t]
    assert any(p.seq == lost.seq and p.payload for p in resent), "no retransmission on the wire"


def test_drop_in_server_to_client_direction(netpath: Factory) -> None:
    path = netpath(delay_ms=5)
    client, server = connected_pair(path)
    with client, server:
        path.drop_next(1, "s2c", after=1)  # second data segment from the server
        payload = os.urandom(20_000)
        server.sendall(payload)
        got = bytearray()
        while len(got) < len(payload):
            got += client.recv(65536)
        assert bytes(got) == payload
        assert tcp_info(server)[1] >= 1
        assert tcp_info(client)[1] == 0
    assert path.stats["s2c"].dropped == 1


def test_dropped_syn_is_retried(netpath: Factory) -> None:
    path = netpath(delay_ms=1)
    port = start_echo(path)
    path.drop_next(1, "c2s", only_data=False)  # the very next packet is the client's SYN
    result = echo_from_client(path, port, 100)  # costs one initial RTO (1 s)
    assert result["echo_ok"]
    assert result["total_retrans"] >= 1
    assert path.stats["c2s"].dropped == 1


def _lossy_echo(netpath: Factory, seed: int) -> list[bool]:
    """300 kB echoed over a path losing 5% of packets: it must arrive whole, every lost data
    segment must be sent again, and the client must count its own retransmissions. Returns
    the relay's drop decisions in the order it saw the packets."""
    path = netpath(delay_ms=1, loss=0.05, seed=seed, record=True)
    port = start_echo(path)
    result = echo_from_client(path, port, 300_000)
    assert result["echo_ok"]  # survivable
    packets = path.packets
    lost = [p for p in packets if p.dropped and p.payload]
    assert lost, "no data segment was lost: the loss was never exercised"
    for p in lost:  # each lost segment's first byte went by again, later, in its direction
        assert any(
            q.direction == p.direction
            and not q.dropped
            and q.payload
            and q.t > p.t
            and (p.seq - q.seq) % 2**32 < q.payload
            for q in packets
        ), f"lost {p.direction} segment seq={p.seq} never resent"
    if any(p.direction == "c2s" for p in lost):
        assert result["total_retrans"] >= 1  # the client's kernel knows it resent data
    stats = path.stats
    assert stats["c2s"].dropped + stats["s2c"].dropped == sum(p.dropped for p in packets)
    return [p.dropped for p in packets]


def test_random_loss_is_survivable_and_seeded(netpath: Factory) -> None:
    first = _lossy_echo(netpath, seed=7)
    again = _lossy_echo(netpath, seed=7)
    other = _lossy_echo(netpath, seed=8)
    # seeded: the n-th packet through the path is dropped or not the same way in both runs
    # (the runs differ in length, as retransmissions and timing do, not in the decisions)
    common = min(len(first), len(again))
    assert first[:common] == again[:common]
    assert first[: min(len(first), len(other))] != other[: min(len(first), len(other))]


def test_set_delay_at_run_time(netpath: Factory) -> None:
    path = netpath(delay_ms=1)
    path.set_delay(30)
    client, server = connected_pair(path)
    with client, server:
        assert abs(tcp_info(client)[0] / 1000 - 60) <= TOLERANCE_MS


def test_relay_copes_with_fds_beyond_fd_setsize(netpath: Factory) -> None:
    # select() cannot watch fds >= 1024, which a long test session can reach; the relay must
    # switch to poll() then rather than die.
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("RLIMIT_NOFILE too low to push fds past 1024")
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        path = netpath(delay_ms=10)
    finally:
        for fd in fillers:
            os.close(fd)
    assert min(path._relay_fds.values()) >= 1024
    client, server = connected_pair(path)
    with client, server:
        assert abs(tcp_info(client)[0] / 1000 - 20) <= TOLERANCE_MS


@pytest.fixture
def root_only() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.usefixtures("root_only")
def test_teardown_removes_namespaces_and_processes() -> None:
    with NetPath(delay_ms=5) as path:
        names = {path.client_ns, path.server_ns}
        assert names <= set(list_namespaces())
        sleeper = path.run_in_server(["sleep", "600"])
        port = start_echo(path)
        assert echo_from_client(path, port, 10)["echo_ok"]
        relay = path._relay
    assert not names & set(list_namespaces())
    assert sleeper.poll() is not None
    assert relay is not None and relay.poll() is not None
    assert path.stats["c2s"].forwarded > 0  # counters outlive the path
    path.close()  # idempotent


@pytest.mark.usefixtures("root_only")
def test_teardown_when_the_test_body_fails() -> None:
    with pytest.raises(ZeroDivisionError):
        with NetPath(delay_ms=5) as path:
            names = {path.client_ns, path.server_ns}
            sleeper = path.run_in_client(["sleep", "600"])
            1 / 0  # noqa: B018
    assert not names & set(list_namespaces())
    assert sleeper.poll() is not None


@pytest.mark.usefixtures("root_only")
def test_cleanup_stale_removes_namespaces_of_dead_runs() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"wsv-c-{dead.pid}-1"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert stale in cleanup_stale()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
    assert stale not in list_namespaces()
