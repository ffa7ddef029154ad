"""Many connections closing at once: how long does the next request wait?

N keep-alive connections each carry one request; then the client closes all of them in one
burst, and at once sends a request on a connection kept open for it and times the answer.
With the lifecycle on, every close reads TCP_INFO and retires a record (and with
`lifecycle_log`, writes a JSON line): that work must not stall the loop for everyone else.

    python benchmarks/bench_stall.py                    # 1,000 and 10,000 connections
    python benchmarks/bench_stall.py --tree /tmp/prev   # the webserv package of another checkout

Prints the delay of the probe request per configuration (median of --repeat bursts).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VARIANTS = {
    "lifecycle on + lifecycle_log": "lifecycle_log {tmp}/lifecycle.log;",
    "lifecycle on": "",
    "lifecycle off": "lifecycle off;",
}


HOW = "fin"  # how the N connections end: the client's FIN or its RST


def conf(tmp: Path, port: int, extra: str) -> str:
    return f"""
worker_processes 1;
error_log {tmp}/error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_timeout 300s;
    {extra.format(tmp=tmp)}
    server {{ listen 127.0.0.1:{port}; root {tmp}; }}
}}
"""


def request(sock: socket.socket) -> None:
    sock.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not (b"\r\n\r\n" in data and len(data.partition(b"\r\n\r\n")[2]) >= 1024):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk


def burst(port: int, count: int, probe: socket.socket) -> float:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        request(sock)
        socks.append(sock)
    time.sleep(0.5)  # all idle
    for sock in socks:
        if HOW == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    start = time.perf_counter()
    request(probe)
    return time.perf_counter() - start


def run(tree: Path, extra: str, count: int, repeat: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="webserv-stall-"))
    (tmp / "1k.bin").write_bytes(os.urandom(1024))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "w.conf").write_text(conf(tmp, port, extra))
    proc = subprocess.Popen(
        [sys.executable, "-m", "webserv", str(tmp / "w.conf")],
        env=dict(os.environ, PYTHONPATH=str(tree)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                probe = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        request(probe)
        delays = []
        for _ in range(repeat):
            delays.append(burst(port, count, probe))
            time.sleep(1.5)  # the closes retired before the next burst
        probe.close()
        return statistics.median(delays)
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--how", choices=("fin", "rst"), default="fin")
    args = parser.parse_args()
    global HOW
    HOW = args.how
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"webserv from {args.tree}; delay of one request after N closes ({HOW}) at once")
    for count in map(int, args.counts.split(",")):
        if count + 100 > hard:
            print(f"  {count}: needs {count + 100} descriptors, the hard limit is {hard}")
            continue
        for name, extra in VARIANTS.items():
            delay = run(args.tree, extra, count, args.repeat)
            print(f"  {count:>6} closes  {name:30} {delay * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
