"""What a run found, for a person: the machine, the tables, the legend.

A Cell holds the raw wrk runs of one server × size × scenario; its summary is what the
tables and the JSON show (medians, and the marks that say how far a number can be trusted).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from measure import WRK
from peers import LIGHTTPD, NGINX, REPO

LABELS = {"keepalive": "keep-alive", "close": "Connection: close"}


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


# --- the report ----------------------------------------------------------------------------


CLIENT_BOUND = 0.9  # wrk used this much of its CPU: the server may be faster than measured
CONTENDED = 0.15  # this much of a pinned CPU went to something other than its process
SERVER_BOUND = 0.9  # the server used this much of its CPU: it was the limit
METRICS = ("rps", "p50_ms", "p99_ms", "server_cpu", "server_core_busy", "wrk_cpu")
METRICS += ("wrk_core_busy", "server_core_steal", "wrk_core_steal", "rps_per_server_cpu")


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
        s["best"] = max(rps) if rps else None
        s["problems"] = self.problems()
        s["client_bound"] = (s["wrk_cpu"] or 0) >= CLIENT_BOUND
        # Others on the server's CPU take time from the server. Others on wrk's CPU matter
        # only when the server was waiting for work (below SERVER_BOUND of its CPU): a server
        # that was busy all along was the limit, whatever slowed wrk down.
        server_others = (s["server_core_busy"] or 0) - (s["server_cpu"] or 0)
        wrk_others = (s["wrk_core_busy"] or 0) - (s["wrk_cpu"] or 0)
        s["contended"] = server_others >= CONTENDED or (
            wrk_others >= CONTENDED and (s["server_cpu"] or 0) < SERVER_BOUND
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
    w = max([18] + [len(p.name) for p in peers])
    for size in sizes:
        print(
            f"\n== {size} file · {args.connections} connections · {args.duration} s per run"
            f" · median of {args.repeat} =="
        )
        for peer in peers:
            for sc in scenarios:
                cell = cells.get((peer.name, size, sc))
                summary[f"{peer.name}/{size}/{sc}"] = cell.summary() if cell else None
        notes = _table(peers, scenarios, size, summary, failures, skipped, w, "rps", "req/s")
        for n in notes:
            print(n)
        print("\nper second of the server's own CPU time (least disturbed by other load):")
        key = "rps_per_server_cpu"
        _table(peers, scenarios, size, summary, failures, skipped, w, key, "req/CPU-s", False)
        print(
            f"\n{'details':<{w}} {'scenario':<17} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'server':>6} {'its CPU':>7} {'wrk':>5} {'its CPU':>7} "
            f"{'best':>8} {'spread':>6} {'B/resp':>7}"
        )
        for peer in peers:
            for sc in scenarios:
                s = summary.get(f"{peer.name}/{size}/{sc}")
                if not s or s["rps"] is None:
                    continue
                print(
                    f"{peer.name:<{w}} {LABELS[sc]:<17} {_num(s['p50_ms'], 2):>7} "
                    f"{_num(s['p99_ms'], 2):>7} {_pct(s['server_cpu']):>6} "
                    f"{_pct(s['server_core_busy']):>7} {_pct(s['wrk_cpu']):>5} "
                    f"{_pct(s['wrk_core_busy']):>7} "
                    f"{_fmt_rps(s['best']):>8} {_pct(s['spread']):>6} "
                    f"{_num(s['bytes_per_response'], 0):>7}"
                )
    return summary


def _table(peers, scenarios, size, summary, failures, skipped, w, key, unit, marks=True):
    """One table, server × scenario, of `key` with its ratios to nginx and webserv."""
    head = f"{'server':<{w}}"
    for sc in scenarios:
        head += f" | {LABELS[sc] + ' ' + unit:>28} {'×nginx':>7} {'×webserv':>8}"
    print(head)
    print("-" * len(head))
    notes = []
    for peer in peers:
        line = f"{peer.name:<{w}}"
        if not any(summary.get(f"{peer.name}/{size}/{sc}") for sc in scenarios):
            why = skipped.get(peer.name) or failures.get(peer.name, "interrupted")
            print(f"{line} | not measured: {why.splitlines()[0]}")
            continue
        for sc in scenarios:
            s = summary.get(f"{peer.name}/{size}/{sc}")
            nginx = summary.get(f"nginx/{size}/{sc}")
            ws = summary.get(f"webserv/{size}/{sc}")
            value = s[key] if s else None
            mark = _marks(s) if marks else ("!" if s and s["problems"] else "")
            line += f" | {_fmt_rps(value):>25}{mark:<3}"
            line += f" {_ratio(value, nginx[key] if nginx else None):>7}"
            line += f" {_ratio(value, ws[key] if ws else None):>8}"
            if s and s["problems"]:
                notes += [f"! {peer.name} {size} {LABELS[sc]}: {p}" for p in s["problems"]]
        print(line)
    return notes


def _steals(run: dict) -> list[float]:
    return [run[k] for k in ("server_core_steal", "wrk_core_steal") if run.get(k) is not None]


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def print_header(machine: dict, peers, skipped: dict, args, cpus: tuple, load: tuple) -> None:
    server_cpu, client_cpu = cpus
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
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load)}")
    if load[0] > 0.5:
        print("  note: the machine is busy; absolute numbers will be noisy, compare ratios")
    print("setups:")
    for peer in peers:
        state = f"SKIPPED: {skipped[peer.name]}" if peer.name in skipped else ""
        print(f"  {peer.name:<16} {state or peer.describe(args.access_log)}")


def progress(name: str, size: str, scenario: str, r: dict) -> str:
    """One line per wrk run, printed as the run goes."""
    flag = "  FLAGGED" if Cell([r]).problems() else ""
    return (
        f"{name:<16} {size:>3} {LABELS[scenario]:<17} {_fmt_rps(r.get('rps')):>9} req/s "
        f"(server {_pct(r.get('server_cpu'))} of a CPU {_pct(r.get('server_core_busy'))} "
        f"busy, wrk {_pct(r.get('wrk_cpu'))} of a CPU {_pct(r.get('wrk_core_busy'))} busy)"
        f"{flag}"
    )


def print_footer(summary: dict, cells: dict, repeat: int, load: tuple) -> None:
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load)}")
    measured = [v for v in summary.values() if v and v["rps"] is not None]
    noisy = [v for v in measured if v["contended"]]
    if noisy:
        print(
            f"WARNING: {len(noisy)} of {len(measured)} cells shared their CPUs with other "
            "processes (?): rerun when the machine is quiet"
            + (", or with --repeat 3" if repeat < 3 else "")
            + "; req/CPU-s is the least disturbed figure"
        )
    steal = [v for c in cells.values() for run in c.runs for v in _steals(run)]
    if steal and max(steal) > 0.05:
        print(f"WARNING: the hypervisor stole up to {max(steal):.0%} of a pinned CPU")
    print(
        "ratios: req/s over nginx's (×nginx) and webserv's (×webserv) in this run.\n"
        "! errors or non-2xx responses (see the notes under the table)\n"
        f"* wrk used ≥ {CLIENT_BOUND:.0%} of its CPU: client-bound, the server may be faster\n"
        f"? ≥ {CONTENDED:.0%} of the server's CPU, or of wrk's while the server was not busy, "
        "went to other processes: noisy"
    )
