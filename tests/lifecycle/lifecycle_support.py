"""Helpers for the lifecycle tests: exact-byte HTTP exchanges, the client's own TCP_INFO,
and finding the server's record of one connection (status JSON or lifecycle_log) by the
client's port.

Every helper here waits for something to happen (a record to appear, an ACK to arrive); none
asserts how long it took.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import REPO, RunningServer, wait_until

from webserv import tcpinfo


def client_info(sock: socket.socket) -> dict[str, Any]:
    """The client's own TCP_INFO, decoded by the module under test (the unit tests check
    the decoder against the kernel header; here it reads the *other* end of the connection)."""
    return tcpinfo.decode_tcp_info(tcpinfo.read_tcp_info(sock))


def connect(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    # every write leaves at once, as its own segment (see send_acked)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_acked(sock: socket.socket, data: bytes, sent_before: int) -> int:
    """Send `data` and wait until the server's kernel has ACKed all of it.

    Waiting for the ACK before the next write means no two writes can share a segment (no
    Nagle, no autocorking behind an unsent skb), so the server's data_segs_in counts writes.
    Returns the bytes sent so far on this connection. The client's bytes_acked counts its
    own SYN (+1) on the connecting side: see tests/unit/test_tcpinfo.py.
    """
    sock.sendall(data)
    total = sent_before + len(data)
    wait_until(lambda: client_info(sock)["bytes_acked"] == total + 1)
    return total


def read_response(sock: socket.socket, head: bool = False) -> bytes:
    """Exactly one response, every byte of it as received (status line to last body byte).

    Needs Content-Length (webserv sends it for files and error pages); a byte past the
    response would be a framing bug, so nothing may follow unless asked for.
    """
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a full header section: {buf!r}"
        buf += chunk
    header, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head:
        length = 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        rest += chunk
    assert len(rest) == length, f"{len(rest) - length} bytes past the response"
    return header + b"\r\n\r\n" + rest


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def get(path: str, extra: str = "", host: str = "x") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def status_json(port: int, host: str = "127.0.0.1", path: str = "/status") -> dict[str, Any]:
    """The status page as JSON, on a connection of its own (`Connection: close`)."""
    with connect(port, host) as sock:
        sock.sendall(get(f"{path}?format=json", "Connection: close\r\n"))
        response = read_response(sock)
    assert status_of(response) == 200, response[:200]
    return json.loads(response.partition(b"\r\n\r\n")[2])


def closed_record(
    port: int, client_port: int, host: str = "127.0.0.1", path: str = "/status"
) -> dict[str, Any]:
    """The closed connection from `client_port`, as the status page shows it; waits until
    the server has seen the close (the client's close and the server's reading of it race)."""

    def find() -> dict[str, Any] | None:
        for record in status_json(port, host, path)["recent"]:
            if record["client"]["port"] == client_port:
                return record
        return None

    return wait_until(find)


def log_record(log: Path, client_port: int, timeout: float = 10.0) -> dict[str, Any]:
    """The lifecycle_log line of the connection from `client_port` (the log is buffered and
    flushed within a second, like the access log)."""

    def find() -> dict[str, Any] | None:
        if not log.exists():
            return None
        # whole lines only (the last may be half-written), newest first (a port is reused)
        for line in reversed(log.read_text().split("\n")[:-1]):
            record = json.loads(line)
            if record["client"]["port"] == client_port:
                return record
        return None

    return wait_until(find, timeout)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER {on, 0}: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Straced(RunningServer):
    """The real server under `strace -f -e trace=TRACE` (system call names, comma-separated);
    `calls()` are the lines strace wrote."""

    def __init__(self, tmp: Path, conf: str, files: Any, trace: str) -> None:
        super().__init__(tmp, conf, files)
        self.traced = trace

    def start(self) -> Straced:
        self.trace = self.tmp / "strace.txt"
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.stderr_file = open(self.stderr_path, "wb")
        argv = ["strace", "-f", "-qq", "-e", f"trace={self.traced}", "-o", str(self.trace)]
        self.proc = subprocess.Popen(
            [*argv, sys.executable, "-m", "webserv", str(self.conf)],
            cwd=self.tmp,
            env=env,
            stdout=self.stderr_file,
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                out = self.output()
                if "ptrace" in out or "Operation not permitted" in out:
                    pytest.skip(f"strace cannot trace here: {out.strip()[:200]}")
                raise RuntimeError(f"webserv under strace exited:\n{out}")
            try:
                connect(self.port, timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(up, timeout=30)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        # signal the traced server itself; strace exits with it
        if self.proc is not None and self.proc.poll() is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            for pid in children.read_text().split():
                os.kill(int(pid), sig)
        return super().stop(sig, timeout)

    def calls(self) -> list[str]:
        return self.trace.read_text().splitlines() if self.trace.exists() else []


def start_tcpdump(argv: list[str], timeout: float = 10.0) -> subprocess.Popen:
    """tcpdump started with `argv`, returned once it says it is capturing ("listening on");
    skips the test where tcpdump is missing or cannot capture here."""
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (scripts/system-deps.sh: apt-get install tcpdump)")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    deadline = time.monotonic() + timeout
    while "listening on" not in err:
        if proc.poll() is not None:
            err += proc.stderr.read()
            pytest.skip(f"tcpdump cannot capture here (exit {proc.returncode}): {err.strip()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"tcpdump did not start capturing: {err!r}")
        # the descriptor itself: a readline() would buffer tcpdump's second line (the
        # "listening on" one) in Python, where select() can no longer see it
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            err += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    return proc
