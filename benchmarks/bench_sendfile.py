"""How a 1 KiB body best leaves a Python server: five ways, in one run, as ratios.

    python benchmarks/bench_sendfile.py [--rounds 3] [--duration 5] [--size 1024]

The same bare uvloop + httptools Protocol (sendfile_protocol.py) answers every request with
the same file, by each MODE in turn, pinned to one CPU, wrk (-t1 -c50, keep-alive) on the
other; rounds alternate the order. Reported: median req/s and the server's CPU time per
request, each as a ratio to `sendfile` (webserv's way: a cached descriptor, send(MSG_MORE)
for the header, then sendfile). It backs three design decisions in README's "Speed":
the open file cache (open-each), switching files back to blocking mode (sendfile-nonblock),
and the copy path left unused for small files (pread-write).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import WRK, ServerFailed, measure, start, stop, wait_listening  # noqa: E402
from peers import Context, Launch, Peer  # noqa: E402

HERE = Path(__file__).resolve().parent
MODES = ("sendfile", "sendfile-nonblock", "open-each", "pread-write", "memory")


def peer(mode: str) -> Peer:
    def launch(ctx: Context, port: int) -> Launch:
        argv = [ctx.python, str(HERE / "sendfile_protocol.py"), str(port), str(ctx.files[0]), mode]
        return Launch(argv, {})

    return Peer(mode, f"bare protocol, {mode}", lambda: None, launch)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--size", type=int, default=1024, help="file size in bytes (default 1024)")
    args = p.parse_args(argv)
    if shutil.which(WRK) is None:
        print("wrk is not installed (apt-get install wrk): nothing measured")
        return 0
    cpus = sorted(os.sched_getaffinity(0))
    pins = (cpus[0], cpus[1] if len(cpus) > 1 else None)
    with tempfile.TemporaryDirectory(prefix="webserv-bench-sendfile-") as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        body = root / "file.bin"
        body.write_bytes(os.urandom(args.size))
        ctx = Context(Path(tmp), root, (body,), False, sys.executable)
        rps: dict[str, list[float]] = {m: [] for m in MODES}
        cpu: dict[str, list[float]] = {m: [] for m in MODES}
        for n in range(args.rounds):
            order = MODES if n % 2 == 0 else MODES[::-1]
            for mode in order:
                server = start(peer(mode), ctx, pins[0])
                try:
                    wait_listening(server)
                    measure(server, "x", "keepalive", 50, 1, pins)  # warm-up
                    r = measure(server, "x", "keepalive", 50, args.duration, pins)
                except ServerFailed as exc:
                    print(f"{mode}: failed: {exc}")
                    continue
                finally:
                    stop(server)
                if r.get("rps") and r.get("server_cpu"):
                    rps[mode].append(r["rps"])
                    cpu[mode].append(r["server_cpu"] / r["rps"] * 1e6)
                    print(f"[{n + 1}/{args.rounds}] {mode:18} {r['rps']:>9,.0f} req/s "
                          f"{cpu[mode][-1]:6.2f} µs CPU/req")  # fmt: skip
    base_rps = statistics.median(rps["sendfile"]) if rps["sendfile"] else None
    base_cpu = statistics.median(cpu["sendfile"]) if cpu["sendfile"] else None
    print(f"\n{args.size}-byte body, keep-alive, -c50, {args.duration} s × {args.rounds}, median")
    print(f"{'mode':18} {'req/s':>9} {'× sendfile':>11} {'CPU µs/req':>11} {'× sendfile':>11}")
    for mode in MODES:
        if not rps[mode] or not base_rps:
            print(f"{mode:18} (no measurement)")
            continue
        r, c = statistics.median(rps[mode]), statistics.median(cpu[mode])
        print(f"{mode:18} {r:9,.0f} {r / base_rps:11.2f} {c:11.2f} {c / base_cpu:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
