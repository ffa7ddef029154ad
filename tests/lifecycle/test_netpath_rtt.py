"""Handshake RTT and retransmits on a real delayed, lossy path (tests/netpath).

webserv runs in the server network namespace; the test's sockets live in the client one.
Every packet between them goes through a userspace relay that holds it for 25 ms each way
and drops exactly the segment it is told to. So the kernel's handshake RTT sample (SYN-ACK
sent → ACK received, read with TCP_INFO at accept) must be ≈ 50 ms, and a dropped response
segment must show up as a retransmit in TCP_INFO at close, with the response still intact.

This is the one test of the set that asserts a duration: tracking the delay is its point.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys

import pytest
from lifecycle_support import client_info, get, read_response, status_of
from netpath.fixtures import netpath  # noqa: F401  (the fixture)
from support import REPO, wait_until

DELAY_MS = 25  # one way
TOLERANCE_MS = 10
SAMPLES = 3  # connections; the median is checked
PORT = 8080  # the server namespace is empty: any port is free there

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/access.log;
    lifecycle_log {tmp}/lifecycle.log;
    server {{
        listen {ip}:{port};
        root {tmp}/www;
        location /status {{ status on; }}
    }}
}}
"""
BIG = bytes(i * 7 % 251 for i in range(64 * 1024))  # ~45 segments of 1448 bytes


@pytest.fixture
def served(netpath, tmp_path):  # noqa: F811
    """(path, server process) with webserv listening on path.server_ip:PORT."""
    path = netpath(delay_ms=DELAY_MS)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "big.bin").write_bytes(BIG)
    (tmp_path / "www" / "a.txt").write_text("hello\n")
    conf = tmp_path / "webserv.conf"
    conf.write_text(CONF.format(tmp=tmp_path, ip=path.server_ip, port=PORT))
    out = open(tmp_path / "server.out", "wb")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    proc = path.run_in_server(
        [sys.executable, "-m", "webserv", str(conf)], env=env, stdout=out, stderr=subprocess.STDOUT
    )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"webserv exited {proc.returncode}: {read(tmp_path)}")
        sock = path.client_socket()
        sock.settimeout(5)
        try:
            sock.connect((path.server_ip, PORT))
            return True
        except OSError:
            return False
        finally:
            sock.close()

    wait_until(listening, timeout=20, interval=0.1)
    yield path, tmp_path
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out.close()


def read(tmp_path) -> str:
    return (tmp_path / "server.out").read_text(errors="replace")


def client(path) -> socket.socket:
    sock = path.client_socket()
    sock.settimeout(30)
    sock.connect((path.server_ip, PORT))
    return sock


def status_json(path) -> dict:
    with client(path) as sock:
        sock.sendall(get("/status?format=json", "Connection: close\r\n"))
        response = read_response(sock)
    assert status_of(response) == 200
    return json.loads(response.partition(b"\r\n\r\n")[2])


def record_of(path, client_port: int) -> dict:
    def find():
        for record in status_json(path)["recent"]:
            if record["client"]["port"] == client_port:
                return record
        return None

    return wait_until(find, timeout=20, interval=0.2)


def test_handshake_rtt_tracks_the_delay(served):
    path, tmp = served
    expected_us = 2 * DELAY_MS * 1000
    tolerance_us = TOLERANCE_MS * 1000
    records, theirs = [], []
    for _ in range(SAMPLES):
        sock = client(path)
        port = sock.getsockname()[1]
        theirs.append(client_info(sock)["rtt"])  # the client's own handshake sample
        sock.sendall(get("/a.txt"))
        assert read_response(sock).endswith(b"hello\n")
        sock.close()
        records.append(record_of(path, port))
    ours = [r["handshake"]["rtt_us"] for r in records]
    print(f"handshake RTT (us): server {ours}, client {theirs}, 2 x delay {expected_us}")
    # a packet can be late (a busy machine delays the relay) but never early: every sample
    # is above the path's RTT minus the tolerance, and the median is within it
    assert min(ours) >= expected_us - tolerance_us, ours
    assert abs(statistics.median(ours) - expected_us) <= tolerance_us, ours
    for record in records:
        assert record["handshake"]["rttvar_us"] > 0
        # the smallest RTT sample the kernel saw on the connection is the path's RTT too
        assert abs(record["tcp_info"]["min_rtt"] - expected_us) <= tolerance_us
        assert record["tcp_info"]["rtt"] >= expected_us - tolerance_us
        assert record["tcp_info"]["total_retrans"] == 0
        assert record["syn"]["src"] == path.client_ip and record["syn"]["ttl"] == 64

    # the lifecycle_log, written in the server namespace, is an ordinary file here
    log = tmp / "lifecycle.log"
    port = records[0]["client"]["port"]

    def logged():
        if not log.exists():
            return None
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        return [x for x in lines if x["client"]["port"] == port]

    assert wait_until(logged)[0]["handshake"]["rtt_us"] == ours[0]


def test_dropped_response_segment_is_retransmitted(served):
    path, _ = served
    sock = client(path)
    port = sock.getsockname()[1]
    # the first data segment from the server to the client is lost on the way
    path.drop_next(1, "s2c", only_data=True)
    dropped_before = path.stats["s2c"].dropped
    sock.sendall(get("/big.bin"))
    response = read_response(sock)
    assert path.stats["s2c"].dropped == dropped_before + 1
    body = response.partition(b"\r\n\r\n")[2]
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()  # intact
    sock.close()

    record = record_of(path, port)
    info = record["tcp_info"]
    print(
        f"after one dropped segment: total_retrans {info['total_retrans']}, "
        f"bytes_retrans {info['bytes_retrans']}, bytes_sent {info['bytes_sent']}, "
        f"bytes_acked {info['bytes_acked']}, lost {info['lost']}"
    )
    assert info["total_retrans"] >= 1
    assert info["bytes_retrans"] >= 1
    # retransmitted bytes count in bytes_sent once more; bytes_acked counts each byte once
    assert info["bytes_acked"] == len(response)
    assert info["bytes_sent"] == len(response) + info["bytes_retrans"]
    assert record["sequence"]["server_data_bytes_acked"] == len(response)
    assert record["requests"][0]["status"] == 200


def test_retransmits_reach_the_histogram(served):
    """The retransmit of a dropped segment lands in the status page's aggregate too."""
    path, _ = served
    before = status_json(path)["stats"]["retransmits_per_connection"]
    sock = client(path)
    port = sock.getsockname()[1]
    path.drop_next(1, "s2c", only_data=True)
    sock.sendall(get("/big.bin"))
    read_response(sock)
    sock.close()
    record_of(path, port)
    after = status_json(path)["stats"]["retransmits_per_connection"]
    # the zero bucket got the status requests; one connection had >= 1 retransmit
    assert sum(after["counts"][1:]) == sum(before["counts"][1:]) + 1
    assert after["sum"] >= before["sum"] + 1


def test_server_close_records_the_whole_response(served):
    """The server closes first (Connection: close): FIN after the response, then it waits
    for the client's FIN before taking the record, so the record covers every segment of
    the response, the retransmit included, and the server's FIN (+1 in bytes_acked)."""
    path, _ = served
    sock = client(path)
    port = sock.getsockname()[1]
    path.drop_next(1, "s2c", only_data=True)
    sock.sendall(get("/big.bin", "Connection: close\r\n"))
    response = read_response(sock)
    assert sock.recv(1) == b""
    sock.close()
    record = record_of(path, port)
    assert record["close"]["closed_by"] == "server"
    assert record["close"]["client_fin_received"] is True
    info = record["tcp_info"]
    assert info["bytes_acked"] == len(response) + 1  # + the server's FIN
    assert info["bytes_sent"] == len(response) + info["bytes_retrans"]
    assert info["total_retrans"] >= 1
    assert record["sequence"]["server_data_bytes_acked"] == len(response)
