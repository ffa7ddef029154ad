"""wrk against webserv and its peers in one run, reported as ratios.

    python benchmarks/run.py [--duration 5] [--connections 50] [--repeat 1]
                             [--only webserv,nginx,...] [--scenario keepalive,close]
                             [--size 1k,64k,1m] [--no-access-log]
                             [--webserv-conf-extra 'directive;'] [--variant NAME='directive;']

Each server in turn is started pinned to one CPU, checked to serve the same bytes as the
others (sha256), warmed up for 1 s, measured with wrk pinned to another CPU for every
scenario, and stopped. Absolute numbers depend on the machine and whatever else runs on
it; the ratios between servers measured in the same run are what to compare. A peer that
is not installed is skipped with the command that installs it. Results also go to
benchmarks/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import LIGHTTPD, NGINX, PEERS, REPO, Context, Peer, webserv  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WRK = "wrk"
SIZES = {"1k": 1024, "64k": 64 * 1024, "1m": 1024 * 1024}
SCENARIOS = {"keepalive": [], "close": ["-H", "Connection: close"]}
LABELS = {"keepalive": "keep-alive", "close": "Connection: close"}
WARMUP_S = 1
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class ServerFailed(Exception):
    """A server did not start, served the wrong bytes, or died: its rows say why."""


# --- command line --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="wrk against webserv and its peers in one run, reported as ratios"
    )
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is reported")
    p.add_argument(
        "--only",
        default=",".join(PEERS),
        help=f"comma-separated servers (default all: {','.join(PEERS)})",
    )
    p.add_argument("--scenario", default="keepalive,close", help="keepalive,close (default both)")
    p.add_argument("--size", default="1k", help="file sizes: 1k,64k,1m (default 1k)")
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="turn the access log off in webserv, nginx and lighttpd (default on)",
    )
    p.add_argument(
        "--webserv-conf-extra",
        default="",
        metavar="DIRECTIVES",
        help="appended inside webserv's server block, e.g. 'keepalive_timeout 10s;'",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=DIRECTIVES",
        help="also run webserv as row 'webserv:NAME' with DIRECTIVES in its server block "
        "(repeatable), to compare configurations in the same run",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = p.parse_args(argv)
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    args.scenario = [s.strip() for s in args.scenario.split(",") if s.strip()]
    args.size = [s.strip().lower() for s in args.size.split(",") if s.strip()]
    for name in args.only:
        if name not in PEERS:
            p.error(f"unknown server {name!r}; known: {', '.join(PEERS)}")
    for s in args.scenario:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    for s in args.size:
        if s not in SIZES:
            p.error(f"unknown size {s!r}; known: {', '.join(SIZES)}")
    variants = []
    for v in args.variant:
        name, sep, extra = v.partition("=")
        if not sep or not name:
            p.error(f"--variant wants NAME=DIRECTIVES, got {v!r}")
        variants.append((name, extra))
    args.variant = variants
    if args.duration < 1 or args.connections < 1 or args.repeat < 1:
        p.error("--duration, --connections and --repeat must be at least 1")
    return args


def selected_peers(args: argparse.Namespace) -> list[Peer]:
    peers = []
    for name in args.only:
        if name == "webserv":
            peers.append(webserv("webserv", args.webserv_conf_extra))
            peers += [webserv(f"webserv:{n}", e) for n, e in args.variant]
        else:
            peers.append(PEERS[name])
    if "webserv" not in args.only:
        peers = [webserv(f"webserv:{n}", e) for n, e in args.variant] + peers
    return peers


# --- the machine ---------------------------------------------------------------------------


def _first_line(argv: list[str], env: dict[str, str] | None = None) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in ("uvloop", "httptools", "aiohttp", "uvicorn", "starlette"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    env = dict(os.environ, PYTHONPATH=str(REPO))
    packages["webserv"] = _first_line([sys.executable, "-m", "webserv", "-v"], env)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": packages,
        "tools": {
            "wrk": _first_line([WRK, "-v"]),
            "nginx": _first_line([NGINX, "-v"]),
            "lighttpd": _first_line([LIGHTTPD, "-v"]),
        },
    }


def pick_cpus() -> tuple[int, int | None]:
    """The server's CPU and wrk's CPU: the first two this process may run on."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], (allowed[1] if len(allowed) > 1 else None)


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
    return Running(peer, port, proc, out)


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


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry))
    return pids


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
        header_bytes[name] = _check_close(server.port, name)
    return header_bytes


def _check_close(port: int, name: str) -> int:
    request = f"GET /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
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


def wrk(url: str, scenario: str, args: argparse.Namespace, duration: int, cpu: int | None):
    argv = [WRK, "-t1", f"-c{args.connections}", f"-d{duration}s", "--latency"]
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


def measure(server: Running, name: str, scenario: str, args, cpus: tuple[int, int | None]):
    url = f"http://127.0.0.1:{server.port}/{name}"
    pids = group_pids(server.proc.pid)
    cores0, cpu0, t0 = core_times(list(cpus)), cpu_seconds(pids), time.monotonic()
    result = wrk(url, scenario, args, args.duration, cpus[1])
    result["server_cpu"] = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
    cores1 = core_times(list(cpus))
    result["server_core_busy"], result["server_core_steal"] = core_busy(cores0, cores1, cpus[0])
    result["wrk_core_busy"], result["wrk_core_steal"] = core_busy(cores0, cores1, cpus[1])
    if server.proc.poll() is not None:
        raise ServerFailed(
            f"died during the run (status {server.proc.returncode})\n{server.tail()}"
        )
    return result


# --- the report ----------------------------------------------------------------------------


CLIENT_BOUND = 0.9  # wrk used this much of its CPU: the server may be faster than measured
CONTENDED = 0.15  # this much of a pinned CPU went to something other than its process
METRICS = ("rps", "p50_ms", "p99_ms", "server_cpu", "server_core_busy", "wrk_cpu")
METRICS += ("wrk_core_busy", "server_core_steal", "wrk_core_steal")


@dataclass
class Cell:
    runs: list[dict] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [r[key] for r in self.runs if r.get(key) is not None]

    def median(self, key: str) -> float | None:
        v = self.values(key)
        return statistics.median(v) if v else None

    def problems(self) -> list[str]:
        out = []
        for i, r in enumerate(self.runs, 1):
            what = [r["failure"]] if r.get("failure") else []
            errors = {k: v for k, v in r.get("errors", {}).items() if v}
            if errors:
                what.append("socket errors " + ", ".join(f"{k} {v}" for k, v in errors.items()))
            if r.get("non2xx"):
                what.append(f"{r['non2xx']} non-2xx responses")
            if what:
                out.append((f"run {i}: " if len(self.runs) > 1 else "") + "; ".join(what))
        return out

    def summary(self) -> dict:
        rps = self.values("rps")
        s = {k: self.median(k) for k in METRICS}
        reqs, read = self.values("requests"), self.values("bytes")
        s["bytes_per_response"] = sum(read) / sum(reqs) if reqs and sum(reqs) else None
        s["spread"] = (max(rps) - min(rps)) / s["rps"] if len(rps) > 1 and s["rps"] else None
        s["problems"] = self.problems()
        s["client_bound"] = (s["wrk_cpu"] or 0) >= CLIENT_BOUND
        # Others on the server's CPU take time from the server. Others on wrk's CPU matter
        # only when that CPU was full: otherwise wrk still kept its connections busy.
        server_others = (s["server_core_busy"] or 0) - (s["server_cpu"] or 0)
        wrk_others = (s["wrk_core_busy"] or 0) - (s["wrk_cpu"] or 0)
        s["contended"] = server_others >= CONTENDED or (
            wrk_others >= CONTENDED and (s["wrk_core_busy"] or 0) >= CLIENT_BOUND
        )
        return s


def _marks(s: dict | None) -> str:
    if not s:
        return ""
    return (
        ("!" if s["problems"] else "")
        + ("*" if s["client_bound"] else "")
        + ("?" if s["contended"] else "")
    )


def _fmt_rps(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _ratio(v: float | None, ref: float | None) -> str:
    return "-" if v is None or not ref else f"{v / ref:.2f}"


def report(peers, scenarios, sizes, cells, failures, skipped, args) -> dict:
    summary: dict = {}
    for size in sizes:
        print(
            f"\n== {size} file · {args.connections} connections · {args.duration} s per run"
            f" · median of {args.repeat} =="
        )
        head = f"{'server':<18}"
        for sc in scenarios:
            head += f" | {LABELS[sc] + ' req/s':>24} {'×nginx':>7} {'×webserv':>8}"
        print(head)
        print("-" * len(head))
        notes = []
        for peer in peers:
            line = f"{peer.name:<18}"
            if not any(cells.get((peer.name, size, sc)) for sc in scenarios):
                why = skipped.get(peer.name) or failures.get(peer.name, "interrupted")
                print(f"{line} | not measured: {why.splitlines()[0]}")
                continue
            for sc in scenarios:
                cell = cells.get((peer.name, size, sc))
                s = cell.summary() if cell else None
                summary[f"{peer.name}/{size}/{sc}"] = s
                nginx = cells.get(("nginx", size, sc))
                ws = cells.get(("webserv", size, sc))
                rps = s["rps"] if s else None
                mark = _marks(s)
                line += f" | {_fmt_rps(rps):>22}{mark:<2}"
                line += f" {_ratio(rps, nginx.median('rps') if nginx else None):>7}"
                line += f" {_ratio(rps, ws.median('rps') if ws else None):>8}"
                if s and s["problems"]:
                    notes += [f"! {peer.name} {size} {LABELS[sc]}: {p}" for p in s["problems"]]
            print(line)
        for n in notes:
            print(n)
        print(
            f"\n{'details':<18} {'scenario':<18} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'server':>7} {'its CPU':>7} {'wrk':>7} {'its CPU':>7} {'steal':>6} "
            f"{'B/resp':>7} {'spread':>7}"
        )
        for peer in peers:
            for sc in scenarios:
                s = summary.get(f"{peer.name}/{size}/{sc}")
                if not s or s["rps"] is None:
                    continue
                steal = (s["server_core_steal"], s["wrk_core_steal"])
                print(
                    f"{peer.name:<18} {LABELS[sc]:<18} {_num(s['p50_ms'], 2):>7} "
                    f"{_num(s['p99_ms'], 2):>7} {_pct(s['server_cpu']):>7} "
                    f"{_pct(s['server_core_busy']):>7} {_pct(s['wrk_cpu']):>7} "
                    f"{_pct(s['wrk_core_busy']):>7} {_pct(_max(steal)):>6} "
                    f"{_num(s['bytes_per_response'], 0):>7} {_pct(s['spread']):>7}"
                )
    return summary


def _max(values) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


# --- the run -------------------------------------------------------------------------------


def make_files(root: Path, sizes: list[str]) -> dict[str, tuple[int, str]]:
    root.mkdir(parents=True)
    files = {}
    rng = random.Random(20240501)  # same bytes every run, not compressible
    for size in sizes:
        body = rng.randbytes(SIZES[size])
        (root / f"{size}.bin").write_bytes(body)
        files[f"{size}.bin"] = (len(body), hashlib.sha256(body).hexdigest())
    return files


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(WRK) is None:
        print("wrk not found: apt-get install wrk (or build it from github.com/wg/wrk).")
        print("Nothing measured.")
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)

    peers = selected_peers(args)
    skipped = {}
    for peer in peers:
        if why := peer.needs():
            skipped[peer.name] = why
    runnable = [p for p in peers if p.name not in skipped]
    server_cpu, client_cpu = pick_cpus()
    machine = machine_info()
    load_before = os.getloadavg()

    print("webserv benchmark: wrk against webserv and its peers, one run, ratios")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['kernel']}, "
        f"{machine['python']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v))
    print("tools: " + ", ".join(v for v in machine["tools"].values() if v))
    if client_cpu is None:
        print(f"warning: only CPU {server_cpu} is usable: server and wrk share it")
    print(f"pinning: servers on CPU {server_cpu}, wrk on CPU {client_cpu} (as taskset -c)")
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s --latency URL"
        + (" ; and with -H 'Connection: close'" if "close" in args.scenario else "")
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    if load_before[0] > 0.5:
        print("  note: the machine is busy; absolute numbers will be noisy, compare ratios")
    print("setups:")
    for peer in peers:
        state = f"SKIPPED: {skipped[peer.name]}" if peer.name in skipped else ""
        print(f"  {peer.name:<16} {state or peer.describe(args.access_log)}")
    per_server = 2 + len(args.size) * (WARMUP_S + len(args.scenario) * args.duration)
    print(f"about {per_server * len(runnable) * args.repeat} s\n")

    tmp = Path(tempfile.mkdtemp(prefix="webserv-bench-"))
    tmp.chmod(0o755)  # nginx's worker runs as nobody when started as root
    files = make_files(tmp / "www", args.size)
    for f in (tmp / "www").iterdir():
        f.chmod(0o644)
    ctx = Context(
        tmp, tmp / "www", tuple(sorted((tmp / "www").iterdir())), args.access_log, sys.executable
    )
    cells: dict[tuple[str, str, str], Cell] = {}
    failures: dict[str, str] = {}
    header_bytes: dict[str, dict[str, int]] = {}
    running: list[Running] = []
    interrupted = False
    started = time.strftime("%Y%m%dT%H%M%S")
    try:
        for round_ in range(args.repeat):
            for peer in runnable:
                if peer.name in failures:
                    continue
                server = start(peer, ctx, server_cpu)
                running.append(server)
                try:
                    wait_listening(server)
                    header_bytes[peer.name] = verify(server, files)
                    for size in args.size:
                        url = f"http://127.0.0.1:{server.port}/{size}.bin"
                        wrk(url, "keepalive", args, WARMUP_S, client_cpu)
                        for sc in args.scenario:
                            r = measure(server, f"{size}.bin", sc, args, (server_cpu, client_cpu))
                            cells.setdefault((peer.name, size, sc), Cell()).runs.append(r)
                            flag = "  FLAGGED" if Cell([r]).problems() else ""
                            print(
                                f"[{round_ + 1}/{args.repeat}] {peer.name:<16} {size:>3} "
                                f"{LABELS[sc]:<17} {_fmt_rps(r.get('rps')):>9} req/s "
                                f"(server {_pct(r.get('server_cpu'))} of a CPU "
                                f"{_pct(r.get('server_core_busy'))} busy, "
                                f"wrk {_pct(r.get('wrk_cpu'))} of a CPU "
                                f"{_pct(r.get('wrk_core_busy'))} busy){flag}",
                                flush=True,
                            )
                except ServerFailed as exc:
                    failures[peer.name] = str(exc)
                    print(f"[{round_ + 1}/{args.repeat}] {peer.name}: FAILED: {exc}", flush=True)
                finally:
                    stop(server)
                    running.remove(server)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers; the table shows what was measured")
    finally:
        for server in running:
            stop(server)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    load_after = os.getloadavg()
    for name, why in failures.items():
        if any((name, s, sc) in cells for s in args.size for sc in args.scenario):
            print(f"\n{name} failed after some runs: {why}")
    summary = report(peers, args.scenario, args.size, cells, failures, skipped, args)
    print(
        "\nresponse header bytes (Connection: close): "
        + ", ".join(f"{n} {next(iter(h.values()))}" for n, h in header_bytes.items())
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    noisy = [k for k, v in summary.items() if v and v["contended"]]
    if noisy:
        print(
            f"WARNING: {len(noisy)} of {len(summary)} cells shared their CPUs with other "
            "processes (?): rerun when the machine is quiet, or with --repeat 3"
        )
    print(
        "ratios: req/s over nginx's (×nginx) and webserv's (×webserv) in this run.\n"
        "! errors or non-2xx responses (see the notes under the table)\n"
        f"* wrk used ≥ {CLIENT_BOUND:.0%} of its CPU: client-bound, the server may be faster\n"
        f"? ≥ {CONTENDED:.0%} of the server's CPU (or of wrk's, when it was full) went to "
        "other processes: noisy"
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started}.json"
    out.write_text(
        json.dumps(
            {
                "started": started,
                "interrupted": interrupted,
                "options": {k: v for k, v in vars(args).items()},
                "machine": machine,
                "pinning": {"server_cpu": server_cpu, "wrk_cpu": client_cpu},
                "load_before": load_before,
                "load_after": load_after,
                "setups": {p.name: p.describe(args.access_log) for p in peers},
                "skipped": skipped,
                "failures": failures,
                "header_bytes": header_bytes,
                "summary": summary,
                "runs": [
                    {"server": k[0], "size": k[1], "scenario": k[2], "runs": c.runs}
                    for k, c in cells.items()
                ],
            },
            indent=2,
            default=str,
        )
    )
    print(f"results: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
