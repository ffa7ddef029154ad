"""The process layer, measured: what the master costs, what a second worker buys, how
workers share connections, and reloads under load — webserv against nginx in one run.

    python benchmarks/bench_process.py                 # everything, ~3 min
    python benchmarks/bench_process.py --only reload   # one part: cost, scale, balance, reload

cost     master + 1 worker (the default) against `master_process off;` (one process, the
         layout before the master existed): requests per CPU-second of the server, keep-alive
         1 KiB, server on CPU 0 and wrk on CPU 1, alternating rounds; the issue asks ≥ 0.98.
scale    2 workers against 1, nobody pinned: wrk (one thread) shares the 2 cores with the
         workers, so 2 workers cannot double anything here; req/s and CPU per request.
balance  how 2 workers share `wrk -c100` (keep-alive: connections, then requests) and 2 s
         of `Connection: close` load (accepted connections), one shared socket against
         `listen ... reuseport` (one socket per worker): each worker's share, from /status.
reload   wrk keep-alive (-c50) and `Connection: close` (-c20) at once, 20 SIGHUPs one
         second apart; wrk's errors (connect, read, write, timeout) and non-2xx for webserv
         (2 workers, shared socket and reuseport) and nginx (2 workers).

Writes nothing to the repository; prints a table a README row can be copied from.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parent

from measure import cpu_seconds, free_port, group_pids, parse_wrk  # noqa: E402

NGINX = "/usr/sbin/nginx"


def webserv_conf(tmp: Path, port: int, main: str, listen: str = "") -> str:
    return f"""
{main}
error_log {tmp}/error-{port}.log notice;
pid {tmp}/webserv-{port}.pid;
http {{
    default_type application/octet-stream;
    access_log {tmp}/access-{port}.log combined;
    server {{
        listen 127.0.0.1:{port} {listen};
        root {tmp}/www;
        location = /status {{ status on; access_log off; }}
    }}
}}
"""


def nginx_conf(tmp: Path, port: int, workers: int) -> str:
    return f"""
worker_processes {workers};
daemon off;
pid {tmp}/nginx-{port}.pid;
error_log {tmp}/nginx-error-{port}.log notice;
events {{ worker_connections 1024; }}
http {{
    types {{ }}
    default_type application/octet-stream;
    access_log {tmp}/nginx-access-{port}.log combined buffer=64k flush=1s;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/nb; proxy_temp_path {tmp}/np; fastcgi_temp_path {tmp}/nf;
    uwsgi_temp_path {tmp}/nu; scgi_temp_path {tmp}/ns;
    server {{ listen 127.0.0.1:{port}; root {tmp}/www; }}
}}
"""


class Server:
    def __init__(self, argv: list[str], port: int, tmp: Path, cpu: int | None = None):
        self.port = port
        env = dict(os.environ, PYTHONPATH=str(REPO))
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.proc = subprocess.Popen(
            argv,
            cwd=tmp,
            env=env,
            stdout=open(tmp / f"out-{port}.txt", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/1k.bin", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"{argv} did not start (status {self.proc.poll()})"
                    ) from None
                time.sleep(0.05)
        time.sleep(0.3)  # every worker up

    def pids(self) -> list[int]:
        return group_pids(self.proc.pid)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def webserv(tmp: Path, main: str, listen: str = "", cpu: int | None = None) -> Server:
    port = free_port()
    conf = tmp / f"webserv-{port}.conf"
    conf.write_text(webserv_conf(tmp, port, main, listen))
    return Server([sys.executable, "-m", "webserv", str(conf)], port, tmp, cpu)


def nginx(tmp: Path, workers: int) -> Server:
    port = free_port()
    conf = tmp / f"nginx-{port}.conf"
    conf.write_text(nginx_conf(tmp, port, workers))
    return Server([NGINX, "-p", str(tmp), "-e", str(tmp / "nginx.err"), "-c", str(conf)], port, tmp)


def wrk(port: int, seconds: int, connections: int = 50, close: bool = False, cpu=None) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/1k.bin"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=pin,
    ).stdout
    return parse_wrk(out)


def loaded(server: Server, seconds: int, **kw) -> tuple[dict, float]:
    """wrk against the server, and the server's CPU seconds (every process of it) used."""
    pids = server.pids()
    before = cpu_seconds(pids)
    result = wrk(server.port, seconds, **kw)
    return result, cpu_seconds(pids) - before


def status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status?format=json", timeout=5) as r:
        return json.load(r)


def errors(result: dict) -> int:
    return sum(result["errors"].values()) + result["non2xx"]


# --- the parts ---------------------------------------------------------------------------


def cost(tmp: Path, rounds: int, seconds: int) -> None:
    print("\n== cost: master + 1 worker against one process (master_process off) ==")
    print("keep-alive 1 KiB, server on CPU 0, wrk on CPU 1, alternating rounds")
    variants = {"master + 1 worker": "worker_processes 1;", "one process": "master_process off;"}
    per_cpu: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, main in variants.items():
            server = webserv(tmp, main, cpu=0)
            try:
                wrk(server.port, 1, cpu=1)  # warm-up
                result, used = loaded(server, seconds, cpu=1)
            finally:
                server.stop()
            value = result["requests"] / used if used else 0.0
            per_cpu[name].append(value)
            print(f"  round {r + 1} {name:18} {result['rps']:>9.0f} req/s {value:>9.0f} req/CPU-s")
    best = {name: max(v) for name, v in per_cpu.items()}
    med = {name: sorted(v)[len(v) // 2] for name, v in per_cpu.items()}
    a, b = "master + 1 worker", "one process"
    print(f"  ratio per CPU-second: best {best[a] / best[b]:.3f}, median {med[a] / med[b]:.3f}")


def scale(tmp: Path, seconds: int) -> None:
    print("\n== scale: 2 workers against 1 (nothing pinned: wrk shares the 2 cores) ==")
    rows = {}
    for workers in (1, 2):
        server = webserv(tmp, f"worker_processes {workers};")
        try:
            wrk(server.port, 1)
            for close in (False, True):
                result, used = loaded(server, seconds, close=close)
                rows[(workers, close)] = result["rps"]
                print(
                    f"  {workers} worker(s) {'close' if close else 'keep-alive':10}"
                    f" {result['rps']:>9.0f} req/s, server CPU {used / seconds:.2f} cores,"
                    f" errors {errors(result)}"
                )
        finally:
            server.stop()
    for close in (False, True):
        label = "close" if close else "keep-alive"
        print(f"  2 / 1 workers, {label}: {rows[(2, close)] / rows[(1, close)]:.2f}x req/s")


def balance(tmp: Path, seconds: int) -> None:
    print("\n== balance: how 2 workers share the load ==")
    for label, listen in (("shared socket", ""), ("reuseport", "reuseport")):
        server = webserv(tmp, "worker_processes 2;", listen)
        try:
            # connections stay open during a keep-alive run: count them while it runs
            shares: dict[str, list] = {}
            thread = threading.Thread(target=wrk, args=(server.port, seconds, 100))
            thread.start()
            time.sleep(seconds / 2)
            during = status(server.port)["workers"]
            thread.join()
            after = status(server.port)["workers"]
            shares["open (-c100 keep-alive)"] = [w["open"] for w in during]
            shares["requests (keep-alive)"] = [w["requests"] for w in after]
            before = {w["pid"]: w["accepted"] for w in after}
            wrk(server.port, max(2, seconds // 2), connections=100, close=True)
            closes = status(server.port)["workers"]
            shares["accepted (Connection: close)"] = [
                w["accepted"] - before.get(w["pid"], 0) for w in closes
            ]
            for what, values in shares.items():
                total = sum(values) or 1
                parts = " / ".join(f"{v / total:.0%}" for v in values)
                print(f"  {label:14} {what:30} {parts}   ({values})")
        finally:
            server.stop()


def reload_run(tmp: Path, reloads: int) -> None:
    print(f"\n== reload: {reloads} SIGHUPs one second apart under keep-alive and close load ==")
    servers = [
        ("webserv, 2 workers, shared socket", lambda: webserv(tmp, "worker_processes 2;")),
        (
            "webserv, 2 workers, reuseport",
            lambda: webserv(tmp, "worker_processes 2;", "reuseport"),
        ),
    ]
    if shutil.which(NGINX) or Path(NGINX).exists():
        servers.append(("nginx 2 workers", lambda: nginx(tmp, 2)))
    else:
        print("  nginx not found (apt-get install nginx-light): webserv only")
    seconds = reloads + 4
    for label, make in servers:
        server = make()
        results: dict[str, dict] = {}
        try:

            def run(kind: str, port: int, connections: int, close: bool, out=results) -> None:
                out[kind] = wrk(port, seconds, connections, close)

            threads = [
                threading.Thread(target=run, args=("keep-alive", server.port, 50, False)),
                threading.Thread(target=run, args=("close", server.port, 20, True)),
            ]
            for t in threads:
                t.start()
            time.sleep(1.5)
            for _ in range(reloads):
                os.kill(server.proc.pid, signal.SIGHUP)
                time.sleep(1)
            for t in threads:
                t.join()
        finally:
            server.stop()
        for kind, result in results.items():
            print(
                f"  {label:36} {kind:10} {result['requests']:>8} requests,"
                f" errors {result['errors']}, non-2xx {result['non2xx']}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="cost,scale,balance,reload")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--reloads", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="webserv-bench-process-"))
    tmp.chmod(0o755)  # nginx's workers run as nobody
    (tmp / "www").mkdir()
    (tmp / "www" / "1k.bin").write_bytes(os.urandom(1024))
    try:
        parts = args.only.split(",")
        if "cost" in parts:
            cost(tmp, args.rounds, args.duration)
        if "scale" in parts:
            scale(tmp, args.duration)
        if "balance" in parts:
            balance(tmp, args.duration)
        if "reload" in parts:
            reload_run(tmp, args.reloads)
    finally:
        if os.environ.get("KEEP") is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
