"""lifecycle_capture against tcpdump: every segment webserv recorded for a connection's
handshake and close is on the wire with the same sequence and acknowledgement numbers, at a
time within 1 ms of tcpdump's, and nothing of the handshake or close that tcpdump saw is
missing from the record.

tcpdump captures the loopback (`-S -tt -n -i lo -x`: absolute numbers, epoch times in µs,
the headers in hex, from which the sequence number of a pure ACK is read: tcpdump prints
none for it) while the test makes connections over IPv4 and [::1]: closed by the client,
closed by the server (`Connection: close`), reset by the client. Root only (CAP_NET_RAW for
webserv's capture and for tcpdump); skipped cleanly otherwise.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator

import pytest
from lifecycle_support import (
    closed_record,
    connect,
    get,
    log_record,
    read_response,
    reset,
    start_tcpdump,
    status_of,
)
from support import RunningServer, ipv6_loopback, wait_until

from webserv import capture

CONF = """
error_log {tmp}/error.log info;
master_process off;
http {{
    access_log off;
    lifecycle_log {tmp}/logs/lifecycle.log;
    lifecycle_capture {mode};
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
        location /status {{ status on; }}
        location /metrics {{ metrics on; }}
    }}
}}
"""
FILES = {"a.txt": "hello\n" * 100}
TOLERANCE = 0.001  # seconds: each recorded time against tcpdump's
LINE = re.compile(
    r"^(?P<t>\d+\.\d+) IP6? (?P<src>\S+)\.(?P<sport>\d+) > (?P<dst>\S+)\.(?P<dport>\d+): "
    r"Flags \[(?P<flags>[^\]]+)\](?:, seq (?P<seq>\d+)(?::\d+)?)?(?:, ack (?P<ack>\d+))?"
)


def can_capture() -> str | None:
    try:
        capture.open_socket([9]).close()
    except OSError as exc:
        return f"no AF_PACKET capture here ({exc}): needs Linux and CAP_NET_RAW"
    return None


# `on`: matched in the kernel by the eBPF program (capture_kernel.py), where the kernel
# takes it; `userspace`: the classic filter and the worker's table (capture_match.py)
MODES = ("on", "userspace")


@pytest.fixture(scope="module", params=MODES)
def server(tmp_path_factory, request):
    why = can_capture()
    if why:
        pytest.skip(why)
    srv = RunningServer(
        tmp_path_factory.mktemp("capture"), CONF.replace("{mode}", request.param), FILES
    )
    if not ipv6_loopback():
        srv.conf.write_text(srv.conf.read_text().replace(f"listen [::1]:{srv.port};", ""))
    srv.start()
    # the master listens before the worker starts: a SYN sent before the worker has opened
    # its capture socket is not seen (an answer saying `on` means it has)
    wait_until(lambda: (_status(srv) or {}).get("capture", {}).get("on"))
    yield srv
    srv.stop()


def parse_tcpdump(out: str) -> list[dict]:
    """tcpdump's lines with their hex dump: time, addresses, flags, seq and ack."""
    segments: list[dict] = []
    hexes: list[str] = []

    def finish() -> None:
        if segments and hexes:
            raw = bytes.fromhex("".join(hexes))
            tcp = (raw[0] & 15) * 4 if raw[0] >> 4 == 4 else 40
            segments[-1]["raw_seq"] = int.from_bytes(raw[tcp + 4 : tcp + 8], "big")
        hexes.clear()

    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            finish()
            d = m.groupdict()
            segments.append({
                "t": float(d["t"]), "src": d["src"], "sport": int(d["sport"]),
                "dst": d["dst"], "dport": int(d["dport"]), "flags": d["flags"],
                "seq": int(d["seq"]) if d["seq"] else None,
                "ack": int(d["ack"]) if d["ack"] else None,
            })  # fmt: skip
        elif line.startswith("\t0x"):
            hexes.append("".join(line.split(":", 1)[1].split()))
    finish()
    for seg in segments:
        if seg["seq"] is None:
            seg["seq"] = seg["raw_seq"]
        assert seg["seq"] == seg["raw_seq"], seg  # the hex dump is this line's
    return segments


@contextlib.contextmanager
def tcpdump(port: int, timeout: float = 10.0) -> Iterator[list[dict]]:
    argv = ["tcpdump", "-S", "-tt", "-n", "-i", "lo", "-l", "-x", "-U", f"tcp port {port}"]
    proc = start_tcpdump(argv, timeout)
    result: list[dict] = []
    try:
        yield result
        time.sleep(0.3)  # the last segments reach tcpdump's buffer (not an assertion)
        proc.terminate()
        out, _ = proc.communicate(timeout=timeout)
        result.extend(parse_tcpdump(out))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def make(how: str, port: int, host: str) -> int:
    """One connection ended `how`; its client port."""
    sock = connect(port, host)
    client_port = sock.getsockname()[1]
    if how == "server":
        sock.sendall(get("/a.txt", "Connection: close\r\n"))
        assert status_of(read_response(sock)) == 200
        assert sock.recv(1) == b""  # the server's FIN
        sock.close()
    elif how == "client":
        sock.sendall(get("/a.txt"))
        assert status_of(read_response(sock)) == 200
        sock.close()
    else:
        sock.sendall(get("/a.txt"))
        assert status_of(read_response(sock)) == 200
        reset(sock)
    return client_port


EXPECTED = {  # how → (who ends in TIME_WAIT, who reset)
    "client": ("client", []),
    "server": ("server", []),
    "reset": (None, ["client"]),
}


def test_every_recorded_number_and_time_is_the_wires(server):
    hosts = ["127.0.0.1"] + (["::1"] if ipv6_loopback() else [])
    made: list[tuple[str, str, int]] = []
    with tcpdump(server.port) as wire:
        for host in hosts:
            for how in ("client", "server", "reset"):
                made.append((host, how, make(how, server.port, host)))
        records = {}
        for host, _how, client_port in made:

            def settled(host=host, client_port=client_port):
                record = closed_record(server.port, client_port, host)
                return record if record["wire"] and record["wire"]["complete"] else None

            records[client_port] = wait_until(settled)
    assert wire, "tcpdump saw nothing"
    worst_us = 0.0
    checked = 0
    for host, how, client_port in made:
        record = records[client_port]
        w = record["wire"]
        mine = [s for s in wire if client_port in (s["sport"], s["dport"])]
        assert w["client_isn"] == record["syn"]["isn"]  # the saved SYN says the same
        time_wait, rst_from = EXPECTED[how]
        assert w["time_wait"] == time_wait, (how, w)
        assert w["rst_from"] == rst_from, (how, w)
        assert w["first_fin"] == (None if how == "reset" else how)
        for seg in w["segments"]:
            from_client = seg["from"] == "client"
            src_port = client_port if from_client else server.port
            flags = seg["flags"].replace("P", "")
            matches = [
                s
                for s in mine
                if s["sport"] == src_port
                and s["flags"].replace("P", "") == flags
                and s["seq"] == seg["seq"]
                and s["ack"] == seg["ack"]
            ]
            assert matches, f"{how} {host}: {seg} is not on the wire: {mine}"
            diff = min(abs(s["t"] - seg["t"]) for s in matches)
            assert diff <= TOLERANCE, f"{seg} recorded {diff * 1e6:.0f} µs from tcpdump's time"
            worst_us = max(worst_us, diff * 1e6)
            checked += 1
        # and every handshake or close segment tcpdump saw is in the record
        recorded = {(s["from"] == "client", s["seq"], s["ack"]) for s in w["segments"]}
        for s in mine:
            if re.search("[SFR]", s["flags"]):
                key = (s["sport"] == client_port, s["seq"], s["ack"])
                assert key in recorded, f"{how} {host}: tcpdump's {s} is not in {w['segments']}"
        y = w["server_isn"]
        synack = next(s for s in w["segments"] if s["role"] == "syn-ack")
        ack = next(s for s in w["segments"] if s["role"] == "ack")
        assert synack["seq"] == y and synack["ack"] == (w["client_isn"] + 1) % 2**32
        assert ack["ack"] == (y + 1) % 2**32
        # the lifecycle log line carries the same wire
        logged = log_record(server.tmp / "logs" / "lifecycle.log", client_port)
        assert logged["wire"] == w
    print(f"\n{checked} recorded segments of {len(made)} connections checked against tcpdump: "
          f"max seq/ack mismatch 0, max time difference {worst_us:.1f} µs")  # fmt: skip


def test_metrics_and_status_show_the_capture(server):
    make("client", server.port, "127.0.0.1")
    data = wait_until(lambda: _status(server))
    cap = data["capture"]
    assert cap["on"] is True and cap["ports"] == [server.port]
    kernel = "lifecycle_capture on;" in server.conf.read_text()
    assert (cap["mode"] == "kernel") == kernel, cap  # (root, Linux ≥ 5.12: the kernel's)
    assert cap["captured"] > 0
    assert cap["dropped"] == {"kernel": 0, "pending_full": 0, "wire_full": 0}
    metrics = _get(server, "/metrics").decode()
    assert re.search(r"^webserv_capture_segments_total [1-9]", metrics, re.M), metrics
    assert 'webserv_capture_dropped_total{reason="kernel"} 0.0' in metrics


def _get(server: RunningServer, path: str) -> bytes:
    with connect(server.port) as sock:
        sock.sendall(get(path, "Connection: close\r\n"))
        return read_response(sock).partition(b"\r\n\r\n")[2]


def _status(server: RunningServer) -> dict | None:
    data = json.loads(_get(server, "/status?format=json"))
    return data if data.get("capture") else None
