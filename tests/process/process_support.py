"""Helpers for the process-layer tests: a steady load that records every failure, log waits,
the status JSON and metrics of a running master + workers."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from support import RawConn, RunningServer, wait_until


def error_text(server: RunningServer) -> str:
    return server.error_log.read_text(errors="replace") if server.error_log.exists() else ""


def wait_log(server: RunningServer, text: str, count: int = 1, timeout: float = 30.0) -> str:
    """Until the error log holds TEXT at least COUNT times; the log."""
    return wait_until(
        lambda: error_text(server).count(text) >= count and error_text(server), timeout
    )


def get(port: int, path: str = "/", headers: str = "") -> tuple[int, dict[str, str], bytes]:
    with RawConn(port) as conn:
        conn.send(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n".encode()
        )
        return conn.response()


def status_json(port: int) -> dict:
    status, _, body = get(port, "/status?format=json")
    assert status == 200
    return json.loads(body)


def metrics(port: int) -> dict[str, float]:
    """`name{labels}` → value of a /metrics scrape."""
    status, _, body = get(port, "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def generations(server: RunningServer) -> int:
    """How many reloads the master has finished (its `reconfigured` lines)."""
    return len(re.findall(r"reconfigured: generation \d+", error_text(server)))


@dataclass
class Load:
    """Clients that keep requesting PATH until stopped, each failure recorded by kind.

    `keepalive` clients reuse their connection as long as the server keeps it (a
    `Connection: close` answer is not a failure: the next request opens a new one);
    the others send `Connection: close`. A body not in `bodies` is a failure (a response
    mixing two configurations), so is any status but 200, a reset, a refused connection,
    or a connection closed before a whole response.
    """

    port: int
    path: str
    bodies: set[bytes]
    keepalive: int = 4
    close: int = 4
    # keep-alive clients that think between requests (a random pause up to this long, as a
    # browser does between clicks): their connections are idle when a worker retires
    thinking: int = 0
    think: float = 0.2
    ok: int = 0
    failures: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        kinds = [(True, 0.0)] * self.keepalive + [(False, 0.0)] * self.close
        kinds += [(True, self.think)] * self.thinking
        self.threads = [
            threading.Thread(target=self._run, args=kind, daemon=True) for kind in kinds
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def wait_requests(self, count: int) -> None:
        wait_until(lambda: self.ok + sum(self.failures.values()) >= count, timeout=60)

    def _fail(self, kind: str, detail: str) -> None:
        with self.lock:
            self.failures[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {detail}")

    def _run(self, keepalive: bool, think: float) -> None:
        pause = random.Random()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: localhost\r\n"
            + ("" if keepalive else "Connection: close\r\n")
            + "\r\n"
        ).encode()
        conn: RawConn | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = RawConn(self.port)
                conn.send(request)
                status, headers, body = conn.response()
            except ConnectionRefusedError as exc:
                self._fail("refused", repr(exc))
                conn = None
                continue
            except (ConnectionError, OSError) as exc:
                kind = "reset" if isinstance(exc, ConnectionResetError) else "cut"
                self._fail(kind, repr(exc))
                if conn is not None:
                    conn.sock.close()
                conn = None
                continue
            if status != 200:
                self._fail("status", str(status))
            elif body not in self.bodies:
                self._fail("body", repr(body[:80]))
            else:
                with self.lock:
                    self.ok += 1
                    self.seen[body] += 1
            if not keepalive or headers.get("connection") == "close":
                conn.sock.close()
                conn = None
            if think:
                self.stop.wait(pause.uniform(0, think))
        if conn is not None:
            conn.sock.close()


def hold_in_queue(port: int, count: int) -> list[socket.socket]:
    """COUNT connections with a request sent, for whoever accepts them later."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /v.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        socks.append(sock)
    return socks
