"""lifecycle_capture at its limits, on the real server:

- a flood of hand-built SYNs and RSTs (a raw IPv4 socket, checksums computed here, no
  scapy) from thousands of 4-tuples: the pending table stays within its bound, what it
  pushed out is counted on /metrics, the worker's memory does not follow the flood, and the
  server keeps serving — with a complete wire for the next connection;
- two worker processes: each sees every segment, and every record (whichever worker made
  it) has its own complete wire, once;
- without CAP_NET_RAW (the bounding set cut by setpriv): one warning at start, however many
  workers, and the lifecycle as without capture.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_support import connect, get, read_response, status_of
from support import RunningServer, wait_until

from webserv import capture, capture_kernel, capture_match

CONF = """
error_log {tmp}/error.log info;
{main}
http {{
    access_log off;
    lifecycle_capture {mode};
    # every poll of /status is a connection too: a ring of 200 would let the test's own polls
    # push the connections it waits for out of it
    status_history 20000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; }}
        location /metrics {{ metrics on; }}
    }}
}}
"""
FILES = {"a.txt": "hello\n"}
FLOOD_SYNS = capture_match.MAX_PENDING + 2000
FLOOD_RSTS = 2000


def needs_capture() -> None:
    try:
        capture.open_socket([9]).close()
    except OSError as exc:
        pytest.skip(f"no AF_PACKET capture here ({exc}): needs Linux and CAP_NET_RAW")


# `on`: the kernel's map (capture_kernel.py); `userspace`: the worker's table (capture_match)
MODES = ("on", "userspace")


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


def conf(main: str = "master_process off;", mode: str = "on") -> str:
    return CONF.replace("{main}", main).replace("{mode}", mode)


def fetch(port: int, path: str) -> bytes:
    with connect(port) as sock:
        sock.sendall(get(path, "Connection: close\r\n"))
        response = read_response(sock)
    assert status_of(response) == 200, response[:200]
    return response.partition(b"\r\n\r\n")[2]


def status(port: int) -> dict:
    return json.loads(fetch(port, "/status?format=json"))


def one_connection(port: int) -> int:
    sock = connect(port)
    client_port = sock.getsockname()[1]
    sock.sendall(get("/a.txt"))
    assert status_of(read_response(sock)) == 200
    sock.close()
    return client_port


def wire_of(port: int, client_port: int, complete: bool = True) -> dict:
    """The closed record of `client_port` with its wire (complete, unless told otherwise)."""

    seen: list[dict] = []

    def find():
        data = status(port)
        mine = [r for r in data["recent"] if r["client"]["port"] == client_port]
        assert len(mine) <= 1, mine  # never recorded twice (by two workers)
        seen[:] = [mine[0]["wire"] if mine else "no record yet", data["capture"]]
        if not mine or not mine[0]["wire"]:
            return None
        return mine[0] if mine[0]["wire"]["complete"] or not complete else None

    try:
        return wait_until(find)
    except AssertionError:
        raise AssertionError(f"no complete wire for port {client_port}: {seen}") from None


def a_complete_one(port: int) -> dict | None:
    """A new connection's record, if its wire is complete."""
    record = wire_of(port, one_connection(port), complete=False)
    return record if record["wire"]["complete"] else None


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def segment(src: str, dst: str, sport: int, dport: int, flags: int, seq: int) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0)
    tcp_sum = checksum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", tcp_sum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text)[1])


def test_a_syn_and_rst_flood_stays_bounded(webserv, mode):
    needs_capture()
    server: RunningServer = webserv(conf(mode=mode), FILES)
    pid = server.proc.pid  # master_process off: the server is the worker
    # capture is up (the port accepts before the worker's capture socket exists: the
    # connections made meanwhile have no handshake on their wire)
    wait_until(lambda: a_complete_one(server.port), timeout=30)
    before = rss_kb(pid)
    rng = random.Random(11)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for i in range(FLOOD_SYNS):
            src = f"127.{1 + i // 60000}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            raw.sendto(segment(src, "127.0.0.1", 1024 + i % 60000, server.port, 0x02, i), (
                "127.0.0.1", 0))  # fmt: skip
        for i in range(FLOOD_RSTS):
            src = f"127.3.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            raw.sendto(segment(src, "127.0.0.1", 2000 + i, server.port, 0x04, i), ("127.0.0.1", 0))

    def flood_counted():
        cap = status(server.port)["capture"]
        dropped = cap["dropped"]["pending_full"] + cap["dropped"]["kernel"]
        return cap if dropped >= FLOOD_SYNS + FLOOD_RSTS - cap["pending_max"] else None

    cap = wait_until(flood_counted, timeout=30)
    print(f"\nafter {FLOOD_SYNS} SYNs and {FLOOD_RSTS} RSTs: {cap}")
    assert cap["pending"] <= cap["pending_max"]
    if cap["mode"] == "kernel":  # the map: room for the worker's connections and the pending
        assert cap["pending_max"] == capture_match.MAX_PENDING + 1024  # (worker_connections)
        assert cap["pending_max"] < FLOOD_SYNS + FLOOD_RSTS
    else:
        assert mode == "userspace" and cap["pending_max"] == capture_match.MAX_PENDING
    metrics = fetch(server.port, "/metrics").decode()
    found = dict(
        re.findall(r'^webserv_capture_dropped_total\{reason="(\w+)"\} (\S+)', metrics, re.M)
    )
    assert float(found["pending_full"]) + float(found["kernel"]) > 0, metrics
    # memory: the bounded tables, not the flood (6,000 tuples of a few segments each)
    assert rss_kb(pid) - before < 40_000
    # still serving, and capturing completely again once the backlog of the flood is read
    # (a connection made while the capture socket's buffer was full is "incomplete")
    assert server.alive()

    record = wait_until(lambda: a_complete_one(server.port), timeout=30)
    assert record["wire"]["client_isn"] == record["syn"]["isn"]


def test_two_workers_each_record_their_own(webserv, mode):
    needs_capture()
    # reuseport: the kernel spreads the connections over both workers' sockets, while each
    # worker's capture still sees the segments of both (`on`: the one map both workers read)
    text = conf("worker_processes 2;", mode).replace(
        "listen 127.0.0.1:{port};", "listen 127.0.0.1:{port} reuseport;"
    )
    server: RunningServer = webserv(text, FILES)
    workers = set(server.worker_pids(2))
    # a worker's capture opens when it starts serving: the connections its listening socket
    # queued before that were handshaken unseen (their wires say so). Wait until both serve.
    ready: set[int] = set()
    for _ in range(400):
        record = wire_of(server.port, one_connection(server.port), complete=False)
        if record["wire"]["complete"]:
            ready.add(record["worker"]["pid"])
        if ready == workers:
            break
    assert ready == workers, ready
    ports = [one_connection(server.port) for _ in range(30)]
    recorded_by = set()
    for client_port in ports:
        record = wire_of(server.port, client_port)
        wire = record["wire"]
        assert wire["client_isn"] == record["syn"]["isn"]
        assert wire["time_wait"] == "client"
        assert [s["role"] for s in wire["segments"]][:3] == ["syn", "syn-ack", "ack"]
        recorded_by.add(record["worker"]["pid"])
    assert recorded_by == workers  # (30 connections hashed to one socket: 2 in a billion)
    data = status(server.port)
    assert data["capture"]["on"] is True


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_without_cap_net_raw_one_warning_and_no_wire(webserv, tmp_path, monkeypatch, mode):
    needs_capture()  # (root: then setpriv can take CAP_NET_RAW away)
    wrapper = tmp_path / "python-without-net-raw"
    wrapper.write_text(f'#!/bin/sh\nexec setpriv --bounding-set -net_raw "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    probe = subprocess.run([str(wrapper), "-c", "import socket; socket.socket(17, 2, 768)"],
                           capture_output=True)  # fmt: skip
    if probe.returncode == 0:
        pytest.skip("setpriv could not take CAP_NET_RAW away here")
    monkeypatch.setattr(sys, "executable", str(wrapper))
    server: RunningServer = webserv(conf("worker_processes 2;", mode), FILES)
    monkeypatch.undo()
    client_port = one_connection(server.port)

    def record():
        found = [r for r in status(server.port)["recent"] if r["client"]["port"] == client_port]
        return found[0] if found else None

    got = wait_until(record)
    assert got["wire"] is None and got["syn"] is not None  # the rest of the lifecycle works
    text = (server.tmp / "error.log").read_text()
    warnings = [line for line in text.splitlines() if "lifecycle_capture" in line]
    assert len(warnings) == 1, warnings
    assert "[warn]" in warnings[0] and "CAP_NET_RAW" in warnings[0]
    assert status(server.port)["capture"] is None


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_without_cap_bpf_the_user_space_capture_with_one_warning(webserv, tmp_path, monkeypatch):
    """`lifecycle_capture on;` where the kernel refuses the eBPF program (no CAP_BPF, no
    CAP_SYS_ADMIN) but AF_PACKET is allowed: one warning saying so, and every connection's
    wire as complete as before, from the user-space capture."""
    needs_capture()
    wrapper = tmp_path / "python-without-bpf"
    wrapper.write_text(
        f'#!/bin/sh\nexec setpriv --bounding-set -bpf,-sys_admin,-perfmon "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    probe = subprocess.run(
        [str(wrapper), "-c", "from webserv.capture_kernel import Tap; Tap([9], 64, True)"],
        capture_output=True,
    )
    if probe.returncode == 0:
        pytest.skip("setpriv could not take CAP_BPF away here")
    monkeypatch.setattr(sys, "executable", str(wrapper))
    server: RunningServer = webserv(conf("worker_processes 2;"), FILES)
    monkeypatch.undo()
    record = wait_until(lambda: a_complete_one(server.port), timeout=30)
    assert record["wire"]["client_isn"] == record["syn"]["isn"]
    assert status(server.port)["capture"]["mode"] == "ring"
    text = (server.tmp / "error.log").read_text()
    warnings = [line for line in text.splitlines() if "lifecycle_capture" in line]
    assert len(warnings) == 1, warnings
    assert "[warn]" in warnings[0] and "no kernel matching" in warnings[0], warnings


@pytest.mark.parametrize("workers", [1, 2])
def test_a_reload_keeps_the_kernel_map_unless_it_has_a_ring(webserv, workers):
    """`-s reload` with the same captured ports: with several workers the new generation's
    read the map the old one made (capture_kernel.Tap shared); with one, the tap has a ring,
    which has one reader, so the new generation gets its own (the old worker, still
    finishing, would take the new one's entries). Either way connections after it are
    complete."""
    needs_capture()
    text = conf(f"worker_processes {workers};").replace(
        "listen 127.0.0.1:{port};", "listen 127.0.0.1:{port} reuseport;"
    )
    server: RunningServer = webserv(text, FILES)
    wait_until(lambda: a_complete_one(server.port), timeout=30)
    cap = status(server.port)["capture"]
    if cap["mode"] != "kernel":
        pytest.skip("the kernel refused the eBPF program here")
    ring = cap["handed_over"] is not None
    assert ring == (workers == 1 and capture_kernel.RING_SAFE)
    before = set(server.worker_pids(workers))
    for _ in range(40):
        one_connection(server.port)
    made = status(server.port)["capture"]["created"]
    assert made > 40
    server.proc.send_signal(signal.SIGHUP)  # (the master's reload)
    wait_until(lambda: not before & set(server.worker_pids(workers)), timeout=30)
    record = wait_until(lambda: a_complete_one(server.port), timeout=30)
    assert record["worker"]["pid"] not in before
    assert [s["role"] for s in record["wire"]["segments"]][:3] == ["syn", "syn-ack", "ack"]
    cap = status(server.port)["capture"]
    assert cap["mode"] == "kernel"
    if ring:  # a new map: it counted only the few made since
        assert cap["created"] < made
    else:  # the same map counted on
        assert cap["created"] > made
