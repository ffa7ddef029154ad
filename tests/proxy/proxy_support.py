"""What the PROXY protocol tests share: headers built by hand, a client that can pick its
source address (127.0.0.2 is a visitor distinct from the balancer's 127.0.0.1), and readers
of the error, access and lifecycle logs. Nothing here measures time."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from support import wait_until

from webserv.proxy_protocol import v1_header, v2_header  # noqa: F401  (re-exported)

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
MARK = "while reading PROXY protocol"


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def error_lines(path: Path, text: str = "") -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if text in line]


def wait_error_line(path: Path, text: str, count: int = 1) -> list[str]:
    return wait_until(lambda: len(error_lines(path, text)) >= count and error_lines(path, text))


def lifecycle_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # whole lines only: the last may be half-written
    return [json.loads(line) for line in lines if line.strip()]


def lifecycle_record(
    path: Path, balancer_port: int, since: float, timeout: float = 10.0
) -> dict[str, Any]:
    """The lifecycle_log line of the connection webserv accepted from BALANCER_PORT (the
    TCP hop's port: `client` in the record is the balancer) at or after SINCE (time.time()
    before connecting: a port is reused, and an older connection's record has it too)."""

    def find() -> dict[str, Any] | None:
        for record in reversed(lifecycle_records(path)):
            if record["client"]["port"] == balancer_port and record["accepted_at"] >= since:
                return record
        return None

    return wait_until(find, timeout)
