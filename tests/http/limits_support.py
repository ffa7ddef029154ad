"""Helpers for the limit tests: clients bound to a chosen loopback address, pipelined bursts,
/metrics scrapes, reloads."""

from __future__ import annotations

import os
import re
import signal
import socket
from collections import Counter

from support import RawConn, RunningServer, wait_until

OTHER = "127.0.0.2"  # a second client address: every 127/8 address is local on Linux


def conn_from(port: int, source: str = "127.0.0.1", timeout: float = 20.0) -> RawConn:
    """A RawConn to 127.0.0.1:PORT whose local address is SOURCE."""
    conn = RawConn.__new__(RawConn)
    conn.sock = socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
    )
    conn.buf = b""
    return conn


def get(port: int, path: str = "/", source: str = "127.0.0.1", headers: str = ""):
    with conn_from(port, source) as conn:
        conn.send(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        return conn.response()


def pipelined(port: int, path: str, count: int, source: str = "127.0.0.1") -> list[int]:
    """COUNT requests written at once on one keep-alive connection: their statuses, in order.
    The connection must stay open through all of them."""
    with conn_from(port, source) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() * count)
        statuses = []
        for _ in range(count):
            status, headers, _ = conn.response()
            assert headers.get("connection") == "keep-alive", headers
            statuses.append(status)
        return statuses


def metrics(port: int) -> dict[str, float]:
    status, _, body = get(port, "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def limit_count(port: int, kind: str, zone: str, result: str) -> int:
    key = f'webserv_limit_{kind}_total{{result="{result}",zone="{zone}"}}'
    return int(metrics(port).get(key, 0))


def error_text(server: RunningServer) -> str:
    return server.error_log.read_text(errors="replace") if server.error_log.exists() else ""


def reload(server: RunningServer, text: str) -> None:
    """Write TEXT as the config, HUP, wait until the master says the new generation serves."""
    values = {"root": str(server.root), "tmp": str(server.tmp), "port": server.port}
    server.conf.write_text(text.format(**values))
    done = len(re.findall(r"reconfigured: generation \d+", error_text(server)))
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(
        lambda: len(re.findall(r"reconfigured: generation \d+", error_text(server))) > done,
        timeout=30,
    )


def counts(statuses) -> Counter:
    return Counter(statuses)
