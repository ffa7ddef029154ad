"""Per-call cost of webserv.tcpinfo on a real loopback connection.

    python benchmarks/bench_tcpinfo.py [--repeat 7] [--number 200000]

Prints best-of-`repeat` microseconds per call. The saved SYN can be read only once per
connection, so its first read is timed over a batch of fresh connections instead of timeit.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import timeit
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from webserv.savedsyn import decode_syn, enable_save_syn, options_text, read_saved_syn  # noqa: E402
from webserv.tcpinfo import (  # noqa: E402
    decode_tcp_info,
    hot_fields,
    read_tcp_info,
)


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def first_saved_syn_reads_us(batch: int, rounds: int) -> tuple[float, bytes | None]:
    """Best per-call time of read_saved_syn over `batch` connections never read before."""
    best, sample = float("inf"), None
    with socket.socket() as lst:
        enable_save_syn(lst)
        lst.bind(("127.0.0.1", 0))
        lst.listen(batch)
        for _ in range(rounds):
            clients, servers = [], []
            for _ in range(batch):
                clients.append(socket.create_connection(lst.getsockname()))
                servers.append(lst.accept()[0])
            t0 = time.perf_counter()
            for s in servers:
                sample = read_saved_syn(s)
            best = min(best, (time.perf_counter() - t0) / batch * 1e6)
            for s in clients + servers:
                s.close()
    return best, sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=200_000)
    args = ap.parse_args()
    n, r = args.number, args.repeat

    with socket.socket() as lst:
        enable_save_syn(lst)
        lst.bind(("127.0.0.1", 0))
        lst.listen()
        cli = socket.create_connection(lst.getsockname())
        srv, _ = lst.accept()
        with cli, srv:
            cli.sendall(b"x" * 10_000)
            srv.recv(65536)
            raw = read_tcp_info(srv)
            assert raw is not None, "TCP_INFO unsupported here"
            short = raw[:104]
            syn_raw = read_saved_syn(srv)
            syn = decode_syn(syn_raw)
            rows: list[tuple[str, float]] = [
                ("read_tcp_info (getsockopt)", best_us(lambda: read_tcp_info(srv), n, r)),
                (f"decode_tcp_info ({len(raw)} B)", best_us(lambda: decode_tcp_info(raw), n, r)),
                ("decode_tcp_info (104 B, 3.x)", best_us(lambda: decode_tcp_info(short), n, r)),
                ("hot_fields", best_us(lambda: hot_fields(raw), n, r)),
                (
                    "read_tcp_info + hot_fields",
                    best_us(lambda: hot_fields(read_tcp_info(srv)), n, r),
                ),
                (
                    "read_tcp_info + decode",
                    best_us(lambda: decode_tcp_info(read_tcp_info(srv)), n, r),
                ),
                ("read_saved_syn (already read)", best_us(lambda: read_saved_syn(srv), n, r)),
            ]

    first_read, sample = first_saved_syn_reads_us(batch=200, rounds=5)
    syn_raw = syn_raw or sample
    rows += [
        ("read_saved_syn (first read)", first_read),
        (
            f"decode_syn (IPv4, {len(syn_raw or b'')} B)",
            best_us(lambda: decode_syn(syn_raw), n // 4, r),
        ),
        ("options_text", best_us(lambda: options_text(syn), n // 4, r)),
        (
            "read_saved_syn + decode_syn",
            first_read + best_us(lambda: decode_syn(syn_raw), n // 4, r),
        ),
    ]

    print(f"Python {sys.version.split()[0]} on {os.uname().sysname} {os.uname().release}")
    width = max(len(name) for name, _ in rows)
    print(f"{'call':<{width}}  {'µs/call':>8}")
    print(f"{'-' * width}  {'-' * 8}")
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.3f}")
    print(f"\nsaved SYN: {options_text(syn)}")


if __name__ == "__main__":
    main()
