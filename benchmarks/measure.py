"""Start, check, load and stop one server: processes pinned to a CPU, wrk, CPU accounting.

Every server is started the same way (its own process group, pinned with sched_setaffinity
as `taskset -c` does) and stopped the same way (SIGTERM to the group, SIGKILL after a
timeout), whatever it is. Nothing here knows which servers exist (peers.py) or how results
are shown (report.py).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peers import Context, Peer

WRK = "wrk"
SCENARIOS = {"keepalive": [], "close": ["-H", "Connection: close"]}
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class ServerFailed(Exception):
    """A server did not start, served the wrong bytes, or died: its rows say why."""


# --- processes -----------------------------------------------------------------------------


def _pin(cpu: int | None):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    peer: Peer
    port: int
    proc: subprocess.Popen
    out: Path
    scheme: str = "http"  # "https" with run.py --tls

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.out.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in text[-lines:])


def start(peer: Peer, ctx: Context, cpu: int | None) -> Running:
    port = free_port()
    launch = peer.launch(ctx, port)
    out = ctx.tmp / (re.sub(r"[^\w.-]", "-", peer.name) + ".out")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **launch.env)
    if "PYTHONPATH" in launch.env and os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = launch.env["PYTHONPATH"] + os.pathsep + os.environ["PYTHONPATH"]
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            launch.argv,
            cwd=ctx.tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, never by Ctrl-C
            preexec_fn=_pin(cpu),
        )
    return Running(peer, port, proc, out, "https" if ctx.tls else "http")


def wait_listening(server: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise ServerFailed(f"exited with status {server.proc.returncode}\n{server.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerFailed(f"not listening after {START_TIMEOUT_S:.0f} s\n{server.tail()}")


def stop(server: Running) -> None:
    proc = server.proc
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the group left behind
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"  warning: {server.peer.name} (pid {proc.pid}) did not exit", file=sys.stderr)


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] is the state, [1] ppid, [2] pgid, [11:15]
    utime, stime, cutime, cstime. OSError if the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), proc_stat(int(entry))
            except OSError:
                continue


def group_pids(pgid: int) -> list[int]:
    return [pid for pid, fields in _processes() if int(fields[2]) == pgid]


def worker_pid(master: int, timeout: float = 10.0) -> int:
    """The one worker of a master (webserv's and nginx's both fork it): its only child that
    is not a zombie; ServerFailed if there are several, or none within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [p for p, f in _processes() if int(f[1]) == master and f[0] != "Z"]
        if len(children) == 1:
            return children[0]
        if len(children) > 1:
            raise ServerFailed(f"{len(children)} children of the master, expected one worker")
        time.sleep(0.05)
    raise ServerFailed(f"no worker process after {timeout:g} s")


def core_times(cpus: list[int | None]) -> dict[int, tuple[int, int, int]]:
    """(busy, steal, total) jiffies of each CPU in `cpus`, from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(x) for x in values[:8]]  # user nice system idle iowait irq softirq steal
            out[int(name[3:])] = (sum(v) - v[3] - v[4] - v[7], v[7], sum(v))
    return out


def core_busy(before: dict, after: dict, cpu: int | None) -> tuple[float | None, float | None]:
    """Fraction of `cpu` busy (anything: our process, others, softirq) and stolen."""
    if cpu is None or cpu not in before or cpu not in after:
        return None, None
    busy, steal, total = (a - b for a, b in zip(after[cpu], before[cpu], strict=True))
    return (busy / total, steal / total) if total else (None, None)


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


# --- checking what is served ---------------------------------------------------------------


def verify(server: Running, files: dict[str, tuple[int, str]]) -> dict[str, int]:
    """Every file: 200, same length and sha256 as on disk, twice on one keep-alive
    connection; and `Connection: close` honoured. Returns the header bytes per file."""
    header_bytes = {}
    for name, (size, digest) in files.items():
        if server.scheme == "https":
            conn = http.client.HTTPSConnection(
                "127.0.0.1", server.port, timeout=10, context=_unverified()
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for attempt in (1, 2):
                conn.request("GET", f"/{name}")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise ServerFailed(f"GET /{name}: status {resp.status}")
                got = hashlib.sha256(body).hexdigest()
                if len(body) != size or got != digest:
                    raise ServerFailed(
                        f"GET /{name}: {len(body)} bytes sha256 {got[:16]}…, "
                        f"expected {size} bytes {digest[:16]}…"
                    )
                if resp.will_close:
                    raise ServerFailed(f"GET /{name}: keep-alive not honoured (request {attempt})")
        except (OSError, http.client.HTTPException) as exc:
            raise ServerFailed(f"GET /{name}: {exc!r}") from None
        finally:
            conn.close()
        header_bytes[name] = _check_close(server.port, name, server.scheme == "https")
    return header_bytes


def _unverified() -> ssl.SSLContext:
    """The benchmark's own self-signed certificate: encrypted, not verified."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _check_close(port: int, name: str, tls: bool = False) -> int:
    request = f"GET /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    data = b""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with _unverified().wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw as s:
            s.sendall(request)
            while chunk := s.recv(65536):  # EOF: the server closed as asked
                data += chunk
    except OSError as exc:
        raise ServerFailed(f"GET /{name} with Connection: close: no close ({exc!r})") from None
    head = data.split(b"\r\n\r\n", 1)[0]
    if not head.startswith(b"HTTP/1.1 200"):
        raise ServerFailed(f"GET /{name} with Connection: close: {head[:40]!r}")
    return len(head) + 4


# --- wrk -----------------------------------------------------------------------------------

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
UNITS_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def _ms(text: str) -> float | None:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None


def parse_wrk(out: str) -> dict:
    result: dict = {"rps": None, "requests": None, "bytes": None, "non2xx": 0}
    result["errors"] = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", out):
        result["requests"] = int(m.group(1))
        result["bytes"] = float(m.group(2)) * UNITS_BYTES[m.group(3)]
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["errors"] = dict(zip(result["errors"], map(int, m.groups()), strict=True))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["non2xx"] = int(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M):
            result[f"p{pct}_ms"] = _ms(m.group(1))
    return result


def wrk(url: str, scenario: str, connections: int, duration: int, cpu: int | None) -> dict:
    """One wrk run pinned to `cpu`: its parsed output and its own CPU use."""
    argv = [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    argv += SCENARIOS[scenario] + [url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, preexec_fn=_pin(cpu)
        )
    except subprocess.TimeoutExpired:
        return {"rps": None, "failure": "wrk did not finish"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(out.stdout)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wrk_cpu"] = used / duration
    if out.returncode != 0 or result["rps"] is None:
        result["failure"] = f"wrk exit {out.returncode}: {(out.stderr or out.stdout).strip()[:200]}"
    return result


def measure(
    server: Running, name: str, scenario: str, connections: int, duration: int, cpus: tuple
) -> dict:
    """wrk against /name; with the server's CPU use and how busy both pinned CPUs were."""
    url = f"{server.scheme}://127.0.0.1:{server.port}/{name}"
    pids = group_pids(server.proc.pid)
    cores0, cpu0, t0 = core_times(list(cpus)), cpu_seconds(pids), time.monotonic()
    result = wrk(url, scenario, connections, duration, cpus[1])
    result["server_cpu"] = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
    cores1 = core_times(list(cpus))
    result["server_core_busy"], result["server_core_steal"] = core_busy(cores0, cores1, cpus[0])
    result["wrk_core_busy"], result["wrk_core_steal"] = core_busy(cores0, cores1, cpus[1])
    if result.get("rps") and result["server_cpu"]:
        # requests per second of the server's own CPU time: barely moved by other processes
        # taking turns on its CPU, as long as wrk is not the bottleneck
        result["rps_per_server_cpu"] = result["rps"] / result["server_cpu"]
    if server.proc.poll() is not None:
        raise ServerFailed(
            f"died during the run (status {server.proc.returncode})\n{server.tail()}"
        )
    return result
