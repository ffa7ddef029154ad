"""gzip on the fly: webserv against nginx, both `gzip on;` (level 1, text/html), with wrk
sending `Accept-Encoding: gzip`, on 1 KiB and 64 KiB HTML pages; plus what a cache of
compressed small files would buy (zlib's time per response at levels 1 and 6).

    python benchmarks/bench_gzip.py [--duration 5] [--connections 50] [--repeat 1]

Reuses measure.py / peers.py (pinned CPUs, wrk, CPU seconds of the server's process
group); reports requests/s and requests per server CPU-second, with webserv / nginx ratios.
The pages are HTML-like text (compressible, ~4:1 at level 1), the same bytes every run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure  # noqa: E402
import peers  # noqa: E402

SIZES = {"1k": 1024, "64k": 64 * 1024}
GZIP = "gzip on; gzip_comp_level 1;"
measure.SCENARIOS["gzip"] = ["-H", "Accept-Encoding: gzip"]


def page(size: int) -> bytes:
    rng = random.Random(size)
    words = [b"server", b"request", b"<p>", b"</p>", b"gzip", b"the", b"of", b"file", b"nginx"]
    out = bytearray(b"<!doctype html><html><body>\n")
    while len(out) < size:
        out += rng.choice(words) + b" "
        if rng.random() < 0.1:
            out += b"\n"
    return bytes(out[:size])


def compress_cost(data: bytes, level: int, rounds: int = 2000) -> float:
    """Seconds zlib takes to gzip DATA once (what every response pays without a cache)."""
    start = time.perf_counter()
    for _ in range(rounds):
        z = zlib.compressobj(level, zlib.DEFLATED, 31)
        z.compress(data)
        z.flush()
    return (time.perf_counter() - start) / rounds


def nginx_peer() -> peers.Peer:
    def launch(ctx: peers.Context, port: int) -> peers.Launch:
        return peers.nginx_launch(ctx, port, http="types { text/html html; } " + GZIP)

    return peers.Peer("nginx", "nginx, gzip on", peers._binary(peers.NGINX, "nginx"), launch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    print("zlib time per response (what a cache of compressed small files would save):")
    for name, size in SIZES.items():
        data = page(size)
        for level in (1, 6):
            cost = compress_cost(data, level, 2000 if size < 4096 else 200)
            ratio = len(zlib.compress(data, level)) / len(data)
            print(f"  {name:>4} level {level}: {cost * 1e6:7.1f} us, {ratio:.2f} of the size")
    if shutil.which(measure.WRK) is None:
        print("wrk not found: apt-get install wrk")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-gzip-"))
    tmp.chmod(0o755)  # nginx's workers (nobody) must read the pages
    root = tmp / "www"
    root.mkdir()
    for name, size in SIZES.items():
        (root / f"{name}.html").write_bytes(page(size))
        (root / f"{name}.html").chmod(0o644)
    ctx = peers.Context(tmp, root, tuple(root.iterdir()), False, sys.executable)
    servers = [
        peers.webserv(extra="types { text/html html; } " + GZIP),
        nginx_peer(),
    ]
    cpus = measure_cpus()
    rows: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeat):
        for peer in servers:
            if peer.needs() is not None:
                print(f"skipped {peer.name}: {peer.needs()}")
                continue
            server = measure.start(peer, ctx, cpus[0])
            try:
                measure.wait_listening(server)
                for name in SIZES:
                    measure.wrk(
                        f"http://127.0.0.1:{server.port}/{name}.html", "gzip", 10, 1, cpus[1]
                    )
                    result = measure.measure(
                        server, f"{name}.html", "gzip", args.connections, args.duration, cpus
                    )
                    rows.setdefault((peer.name, name), []).append(result)
            finally:
                measure.stop(server)
    print(
        f"\nwrk -c{args.connections} -d{args.duration}s -H 'Accept-Encoding: gzip', median of {args.repeat}"
    )
    print(f"{'size':>5} {'server':>8} {'req/s':>9} {'req/CPU-s':>10}   webserv/nginx")
    for name in SIZES:
        got = {}
        for peer in ("webserv", "nginx"):
            runs = sorted(rows.get((peer, name), []), key=lambda r: r.get("rps") or 0)
            if runs:
                mid = runs[len(runs) // 2]
                got[peer] = (mid.get("rps") or 0, mid.get("rps_per_server_cpu") or 0)
        for peer, (rps, per_cpu) in got.items():
            ratio = ""
            if peer == "webserv" and "nginx" in got and got["nginx"][1]:
                ratio = f"{rps / got['nginx'][0]:.2f}x req/s, {per_cpu / got['nginx'][1]:.2f}x per CPU-s"
            print(f"{name:>5} {peer:>8} {rps:9.0f} {per_cpu:10.0f}   {ratio}")
    return 0


def measure_cpus() -> tuple[int, int | None]:
    import os

    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], (allowed[1] if len(allowed) > 1 else None)


if __name__ == "__main__":
    sys.exit(main())
