"""The per-request cost of limit_req + limit_conn: a limited location next to an unlimited
one, same file, same server, one run.

    python benchmarks/bench_limits.py [--duration 2] [--rounds 5] [--connections 10]

One webserv (`worker_processes 1`, access log off) serves a 1 KiB file at /free/ and at
/lim/ (`limit_req zone=z burst=1000000 nodelay;` with a rate no client reaches, and
`limit_conn c 60000;`, both keyed on $binary_remote_addr: every request takes the zone
lock, reads its bucket, writes its entry, twice). wrk measures each location in turn,
pinned away from the server's CPU where there are two; printed: req/s of each, the ratio,
and the microseconds a request costs more (1/req/s apart). Without wrk nothing is measured
over sockets. Also printed, in this process and without wrk: what the two phases cost a
request (LimitReqPhase.run; LimitConnPhase.run and its release), on real shared zones.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONF = """
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/w.pid;
http {{
    access_log off;
    lifecycle off;
    limit_req_zone $binary_remote_addr zone=z:10m rate=100000000r/s;
    limit_conn_zone $binary_remote_addr zone=c:10m;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location /free/ {{ }}
        location /lim/ {{ limit_req zone=z burst=1000000 nodelay; limit_conn c 60000; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port: int, path: str, duration: int, connections: int, cpus: list[int]) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}{path}"]
    if len(cpus) > 1:
        cmd = ["taskset", "-c", str(cpus[1]), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def micro() -> None:
    import timeit
    from types import SimpleNamespace

    sys.path.insert(0, str(REPO))
    from webserv import limits

    conn = SimpleNamespace(remote_addr="127.0.0.1", id=1)
    req = limits.make_zone("limit_req", "z", 10 << 20, "$binary_remote_addr", 10**11)
    cz = limits.make_zone("limit_conn", "c", 10 << 20, "$binary_remote_addr", 0)
    phases = {
        "limit_req": limits.LimitReqPhase(
            (limits.ReqLimit(req, 10**9, limits.NODELAY),), 503, "error", False
        ),
        "limit_conn": limits.LimitConnPhase((limits.ConnLimit(cz, 60000),), 503, "error", False),
    }
    for name, phase in phases.items():

        def one(phase=phase):
            ex = SimpleNamespace(conn=conn, cleanup=None)
            phase.run(ex)
            if ex.cleanup is not None:
                ex.cleanup()

        n = 50000
        print(
            f"{name:10} {timeit.timeit(one, number=n) / n * 1e6:6.2f} us per request (in-process)"
        )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=int, default=2)
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    micro()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): nothing measured")
        return 0
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        for d in ("www/free", "www/lim"):
            os.makedirs(f"{tmp}/{d}")
            Path(f"{tmp}/{d}/1k.bin").write_bytes(os.urandom(1024))
        port = free_port()
        Path(f"{tmp}/w.conf").write_text(CONF.format(tmp=tmp, port=port))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        cmd = [sys.executable, "-m", "webserv", f"{tmp}/w.conf"]
        if len(cpus) > 1:
            cmd = ["taskset", "-c", str(cpus[0]), *cmd]
        server = subprocess.Popen(cmd, env=env, start_new_session=True)
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            wrk(port, "/free/1k.bin", 1, args.connections, cpus)  # warm-up
            wrk(port, "/lim/1k.bin", 1, args.connections, cpus)
            # alternated, the median of each: a machine whose load drifts favours neither
            frees, lims = [], []
            for _ in range(args.rounds):
                frees.append(wrk(port, "/free/1k.bin", args.duration, args.connections, cpus))
                lims.append(wrk(port, "/lim/1k.bin", args.duration, args.connections, cpus))
            free, limited = sorted(frees)[len(frees) // 2], sorted(lims)[len(lims) // 2]
            print(
                "unlimited runs",
                [round(x) for x in frees],
                "limited runs",
                [round(x) for x in lims],
            )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
    print(f"unlimited  {free:10.0f} req/s")
    print(f"limited    {limited:10.0f} req/s   ratio {limited / free:.3f}")
    print(
        f"cost       {(1 / limited - 1 / free) * 1e6:+.1f} us per request (limit_req + limit_conn)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
