"""wrk against webserv and its peers in one run, reported as ratios.

    python benchmarks/run.py [--duration 5] [--connections 50] [--repeat 1]
                             [--only webserv,nginx,...] [--scenario keepalive,close]
                             [--size 1k,64k,1m,10m] [--no-access-log]
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
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (  # noqa: E402
    SCENARIOS,
    WRK,
    Running,
    ServerFailed,
    measure,
    start,
    stop,
    verify,
    wait_listening,
    wrk,
)
from peers import PEERS, REPO, Context, Peer, webserv  # noqa: E402
from report import (  # noqa: E402
    Cell,
    machine_info,
    print_footer,
    print_header,
    progress,
    report,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SIZES = {"1k": 1024, "64k": 64 * 1024, "1m": 1024 * 1024, "10m": 10 * 1024 * 1024}
WARMUP_S = 1


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
    p.add_argument("--size", default="1k", help="file sizes: 1k,64k,1m,10m (default 1k)")
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
    p.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also run the webserv package found in DIR (e.g. `git archive REV webserv | tar "
        "-x -C DIR`) as row 'webserv@NAME' (repeatable), to compare versions in the same run",
    )
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="NAME=EXE",
        help="also run this tree's webserv with the interpreter EXE (a venv's python with "
        "webserv's dependencies) as row 'webserv%%NAME' (repeatable), to compare builds of "
        "CPython in the same run",
    )
    p.add_argument(
        "--pure",
        action="store_true",
        help="also run this tree as pure Python (WEBSERV_PURE=1) as row 'webserv%%pure', "
        "next to the compiled build",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="HTTPS: webserv and nginx with the same self-signed certificate (others are "
        "skipped); `close` is then a full TLS handshake per request",
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
    checkouts = []
    for c in args.checkout:
        name, sep, tree = c.partition("=")
        if not sep or not name or not (Path(tree) / "webserv" / "__main__.py").is_file():
            p.error(f"--checkout wants NAME=DIR with DIR/webserv/__main__.py, got {c!r}")
        checkouts.append((name, Path(tree).resolve()))
    args.checkout = checkouts
    pythons = []
    for spec in args.python:
        name, sep, exe = spec.partition("=")
        if not sep or not name or not os.access(exe, os.X_OK):
            p.error(f"--python wants NAME=EXE with an executable EXE, got {spec!r}")
        pythons.append((name, exe))
    args.python = pythons
    if args.duration < 1 or args.connections < 1 or args.repeat < 1:
        p.error("--duration, --connections and --repeat must be at least 1")
    return args


def selected_peers(args: argparse.Namespace) -> list[Peer]:
    """--only's servers in its order; variants and checkouts of webserv (always run when
    asked for) right after webserv, or first when webserv itself is not selected."""
    extra = args.webserv_conf_extra
    webservs = [webserv(f"webserv:{n}", e) for n, e in args.variant]
    webservs += [webserv(f"webserv@{n}", extra, tree) for n, tree in args.checkout]
    webservs += [webserv(f"webserv%{n}", extra, python=exe) for n, exe in args.python]
    if args.pure:
        webservs.append(webserv("webserv%pure", extra, pure=True))
    peers = []
    for name in args.only:
        if name == "webserv":
            peers += [webserv("webserv", extra), *webservs]
        else:
            peers.append(PEERS[name])
    return peers if "webserv" in args.only else webservs + peers


def pick_cpus() -> tuple[int, int | None]:
    """The server's CPU and wrk's CPU: the first two this process may run on."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], (allowed[1] if len(allowed) > 1 else None)


# --- the run -------------------------------------------------------------------------------


def make_files(root: Path, sizes: list[str]) -> dict[str, tuple[int, str]]:
    root.mkdir(parents=True)
    files = {}
    rng = random.Random(20240501)  # same bytes every run, not compressible
    for size in sizes:
        body = rng.randbytes(SIZES[size])
        (root / f"{size}.bin").write_bytes(body)
        (root / f"{size}.bin").chmod(0o644)  # readable by nginx's worker (nobody)
        files[f"{size}.bin"] = (len(body), hashlib.sha256(body).hexdigest())
    return files


@dataclass
class Results:
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)  # server, size, sc
    failures: dict[str, str] = field(default_factory=dict)
    header_bytes: dict[str, dict[str, int]] = field(default_factory=dict)


def measure_all(runnable: list[Peer], ctx: Context, files, args, cpus, results: Results) -> bool:
    """Every server in turn, `--repeat` rounds; False, or True when interrupted. No server
    outlives this function."""
    server_cpu, client_cpu = cpus
    running: list[Running] = []
    try:
        for round_ in range(args.repeat):
            for peer in runnable:
                if peer.name in results.failures:
                    continue
                tag = f"[{round_ + 1}/{args.repeat}]"
                server = start(peer, ctx, server_cpu)
                running.append(server)
                try:
                    wait_listening(server)
                    results.header_bytes[peer.name] = verify(server, files)
                    for size in args.size:
                        url = f"{server.scheme}://127.0.0.1:{server.port}/{size}.bin"
                        wrk(url, "keepalive", args.connections, WARMUP_S, client_cpu)
                        for sc in args.scenario:
                            r = measure(
                                server, f"{size}.bin", sc, args.connections, args.duration, cpus
                            )
                            results.cells.setdefault((peer.name, size, sc), Cell()).runs.append(r)
                            print(f"{tag} {progress(peer.name, size, sc, r)}", flush=True)
                except ServerFailed as exc:
                    results.failures[peer.name] = str(exc)
                    print(f"{tag} {peer.name}: FAILED: {exc}", flush=True)
                finally:
                    stop(server)
                    running.remove(server)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers; the table shows what was measured")
        return True
    finally:
        for server in running:
            stop(server)
    return False


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
        if args.tls and not peer.tls:
            skipped[peer.name] = "no HTTPS set up for it (--tls)"
        elif why := peer.needs():
            skipped[peer.name] = why
    runnable = [p for p in peers if p.name not in skipped]
    server_cpu, client_cpu = pick_cpus()
    machine = machine_info()
    load_before = os.getloadavg()

    cpus = (server_cpu, client_cpu)
    print_header(machine, peers, skipped, args, cpus, load_before)
    per_server = 2 + len(args.size) * (WARMUP_S + len(args.scenario) * args.duration)
    print(f"about {per_server * len(runnable) * args.repeat} s\n")

    tmp = Path(tempfile.mkdtemp(prefix="webserv-bench-"))
    tmp.chmod(0o755)  # nginx's worker runs as nobody when started as root
    files = make_files(tmp / "www", args.size)
    tls = None
    if args.tls:
        from webserv import tls_demo

        tls = tls_demo.ensure(tmp / "tls")
        for path in tls:
            path.chmod(0o644)  # readable by nginx's worker
    ctx = Context(
        tmp,
        tmp / "www",
        tuple(sorted((tmp / "www").iterdir())),
        args.access_log,
        sys.executable,
        tls,
    )
    results = Results()
    started = time.strftime("%Y%m%dT%H%M%S")
    try:
        interrupted = measure_all(runnable, ctx, files, args, cpus, results)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    cells, failures, header_bytes = results.cells, results.failures, results.header_bytes

    load_after = os.getloadavg()
    for name, why in failures.items():
        if any((name, s, sc) in cells for s in args.size for sc in args.scenario):
            print(f"\n{name} failed after some runs: {why}")
    summary = report(peers, args.scenario, args.size, cells, failures, skipped, args)
    print(
        "\nresponse header bytes (Connection: close): "
        + ", ".join(f"{n} {next(iter(h.values()))}" for n, h in header_bytes.items())
    )
    print_footer(summary, cells, args.repeat, load_after)

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
