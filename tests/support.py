"""Start the real webserv as a process on free loopback ports, and talk to it raw.

Tests write a config with placeholders ({port}, {port2}, ..., {root}, {tmp}) and get a
RunningServer: its URLs, its log files, and raw-socket helpers for input no client library
would send.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0


def ipv6_loopback() -> bool:
    """Whether this host can bind [::1] (the IPv6 tests skip without it)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll until predicate() is truthy; return its value, or fail after `timeout`.

    This waits for something to happen; it never asserts how long it took.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


class RunningServer:
    def __init__(
        self,
        tmp: Path,
        conf_text: str,
        files: dict[str, str | bytes] | None = None,
        ports: int = 1,
        extra_args: list[str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.root = tmp / "www"
        self.root.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(ports)]
        self.port = self.ports[0]
        for name, content in (files or {}).items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.encode()
            path.write_bytes(content)
        values = {"root": str(self.root), "tmp": str(tmp), "port": self.port}
        for i, port in enumerate(self.ports[1:], start=2):
            values[f"port{i}"] = port
        self.conf = tmp / "webserv.conf"
        self.conf.write_text(conf_text.format(**values))
        self.access_log = tmp / "logs" / "access.log"
        self.error_log = tmp / "error.log"
        self.stderr_path = tmp / "stderr.log"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/", port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.port}{path}"

    def start(self) -> RunningServer:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webserv", *self.extra_args, str(self.conf)],
            cwd=self.tmp,
            env=env,
            stdout=self.stderr_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webserv exited with {self.proc.returncode}:\n{self.output()}")
            if all(_accepts(port) for port in self.ports):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"webserv did not start listening:\n{self.output()}")

    def output(self) -> str:
        self.stderr_file.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.stderr_file.close()

    def access_lines(self) -> list[str]:
        if not self.access_log.exists():
            return []
        return self.access_log.read_text(errors="replace").splitlines()

    def wait_access_lines(self, count: int, timeout: float = 10.0) -> list[str]:
        return wait_until(
            lambda: len(self.access_lines()) >= count and self.access_lines(), timeout
        )

    def connect(self, port: int | None = None, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", port or self.port), timeout=timeout)

    def raw(self, data: bytes, port: int | None = None, timeout: float = 10.0) -> bytes:
        """Send bytes on a new connection and read until the server closes it."""
        with self.connect(port, timeout) as sock:
            sock.sendall(data)
            return read_until_close(sock)

    def worker_pids(self, count: int | None = None, timeout: float = 10.0) -> list[int]:
        """The master's worker processes (its children), once there are `count` of them
        (any, if None) that have started serving."""

        def ready() -> list[int] | None:
            pids = children_of(self.proc.pid)
            if count is not None and len(pids) != count:
                return None
            return pids or None

        return wait_until(ready, timeout)

    def worker_pid(self) -> int:
        """The one worker of a `worker_processes 1;` server (the default)."""
        return self.worker_pids(1)[0]

    def alive(self) -> bool:
        """The server still answers a plain request on a fresh connection."""
        reply = self.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return reply.startswith(b"HTTP/1.1 ")


def children_of(pid: int) -> list[int]:
    """The live child processes of PID (Linux's /proc), zombies left out."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    out = []
    for child in text.split():
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(int(child))
    return out


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def read_until_close(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class RawConn:
    """A raw client connection with a read buffer: send any bytes, read whole responses.

    Keeps what was read past one response, so pipelined responses arriving in one packet
    are all seen.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def __enter__(self) -> RawConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if data:
            self.buf += data
        return bool(data)

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One response; `head=True` for a HEAD request (headers say a length, no body)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before a full header section: {self.buf!r}")
        raw_head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        headers[":status-line"] = lines[0]
        if head or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buf) < length:
                if not self._fill():
                    raise ConnectionError("closed mid-body")
            body, self.buf = self.buf[:length], self.buf[length:]
            return status, headers, body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        raise ConnectionError("closed mid-chunk")
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill():
                        raise ConnectionError("closed mid-chunk")
                body += self.buf[:size]
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    return status, headers, body
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body

    def closed_by_peer(self, timeout: float = 10.0) -> bool:
        """True when the server closes (FIN or reset) with nothing more to read."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        self.buf += data
        return not data


def request(
    port: int,
    target: str | bytes = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    version: str = "HTTP/1.1",
    host: str | None = "localhost",
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh raw connection (`Connection: close`): status, headers, body.

    The target is sent byte for byte, so no client library normalises it; header names in
    the result are lower-case.
    """
    if isinstance(target, str):
        target = target.encode("utf-8", "surrogateescape")
    lines = [method.encode() + b" " + target + b" " + version.encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if not any(name.lower() == "connection" for name in headers or {}):
        lines.append(b"Connection: close")
    with RawConn(port) as conn:
        conn.send(b"\r\n".join(lines) + b"\r\n\r\n")
        return conn.response(head=method == "HEAD")


# a file not found: logged at [error], as nginx's `log_not_found on` (the default) logs it
NOT_FOUND_LINE = re.compile(r'open\(\) ".*" failed \((2|20|36): |" does not exist, client: ')


def server_failures(log: str) -> list[str]:
    """The [error]-and-above lines of an error log that are not a file not found: what no
    test's traffic should cause."""
    return [
        line
        for line in log.splitlines()
        if re.search(r"\[(error|crit|alert|emerg)\]", line) and not NOT_FOUND_LINE.search(line)
    ]
