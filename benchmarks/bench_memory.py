"""Memory of N idle keep-alive connections: webserv next to nginx, one run.

    python benchmarks/bench_memory.py [--connections 10000] [--batch 250] [--only webserv,nginx]
                                      [--no-access-log] [--settle 30] [--keep]
                                      [--variant NAME='directive;']

Each server in turn is started pinned to one CPU (`worker_processes 1`: a master and one
worker; `worker_connections` 2 N, `keepalive_timeout 300s`), sent one warm-up request,
and its worker's memory read from /proc/PID/smaps_rollup when idle: RSS, PSS and USS
(private clean + dirty; the worker is forked from the master, so RSS counts pages it
shares with it). Then this process, pinned to another CPU, opens N TCP connections in
batches (a batch is answered before the next one connects, so the listen backlog never
overflows) and sends one complete `GET /1k.bin HTTP/1.1` on each, reads its response
fully and keeps the connection open: N idle keep-alive connections the server holds in
its keep-alive state. When the worker's RSS has settled, its memory is read again, the
connections still open are counted (a closed one reads EOF) and so are the worker's open
descriptors. Printed: memory above idle in MiB and per connection in KiB, and where the
RSS grew (from /proc/PID/smaps: the brk heap, anonymous mappings, files). The kernel's
socket buffers are not in any process's RSS and so not here. Nothing is written into the
repository: configs and logs live in a temp dir, removed at the end (kept with --keep).
Servers are stopped whatever happens (SIGTERM to their process group, then SIGKILL).
`--variant NAME='D;'` also runs webserv with those directives in its server block, as row
`webserv:NAME` (e.g. `lifecycle off;`), to see what a feature costs per connection.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (  # noqa: E402
    Running,
    ServerFailed,
    start,
    stop,
    wait_listening,
    worker_pid,
)
from peers import (  # noqa: E402
    NGINX,
    REPO,
    Context,
    Launch,
    Peer,
    _binary,
    _modules,
    nginx_launch,
    webserv_conf,
)

TARGET_MIB = 40.0  # issue 10: webserv, 10,000 idle keep-alive connections, above idle RSS
KEEPALIVE_S = 300
BODY_SIZE = 1024
REQUEST = b"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench_memory\r\n\r\n"
BATCH_TIMEOUT_S = 30.0


# --- the two servers -----------------------------------------------------------------------


def _webserv(conns: int, stem: str = "webserv", extra: str = ""):
    def launch(ctx: Context, port: int) -> Launch:
        conf = ctx.tmp / f"{stem}-memory.conf"
        main = f"events {{ worker_connections {conns}; }}"
        http = f"keepalive_timeout {KEEPALIVE_S}s;"
        conf.write_text(webserv_conf(ctx, port, stem, extra, main, http))
        return Launch([ctx.python, "-m", "webserv", str(conf)], {"PYTHONPATH": str(REPO)})

    return launch


def _nginx(conns: int):
    def launch(ctx: Context, port: int) -> Launch:
        main = f"worker_rlimit_nofile {conns};"
        return nginx_launch(ctx, port, conns, main, f"keepalive_timeout {KEEPALIVE_S}s;")

    return launch


def servers(conns: int, variants: list[tuple[str, str]] = ()) -> dict[str, Peer]:
    """worker_connections twice N: nginx starts closing idle keep-alive connections
    ("worker_connections are not enough, reusing connections") once fewer than 1/16 of
    them are free, and preallocates all of them (~0.4 KiB each, in its idle RSS)."""
    limit = 2 * conns
    setup = (
        f"python -m webserv CONF, worker_processes 1, worker_connections {limit}, "
        f"keepalive_timeout {KEEPALIVE_S}s"
    )
    needs = _modules("uvloop", "httptools", pip="-e .")
    webservs = {"webserv": Peer("webserv", setup, needs, _webserv(limit))}
    for name, extra in variants:
        stem = "webserv-" + re.sub(r"[^\w.-]", "-", name)
        tag = f"webserv:{name}"
        launch = _webserv(limit, stem, extra)
        webservs[tag] = Peer(tag, f"{setup}; added in server {{}}: {extra}", needs, launch)
    return {
        **webservs,
        "nginx": Peer(
            "nginx",
            f"worker_processes 1, worker_connections {limit}, worker_rlimit_nofile {limit}, "
            f"keepalive_timeout {KEEPALIVE_S}s, sendfile on",
            _binary(NGINX, "nginx"),
            _nginx(limit),
        ),
    }


# --- memory of a process -------------------------------------------------------------------


def rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Uss (private clean + dirty) and Anonymous in KiB, from smaps_rollup."""
    kib = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if m := re.match(r"(\w+):\s+(\d+) kB", line):
            kib[m.group(1)] = int(m.group(2))
    kib["Uss"] = kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)
    return kib


def rss_by_kind(pid: int) -> dict[str, int]:
    """Rss in KiB per kind of mapping: the brk heap, anonymous (malloc's and pymalloc's
    mmaps, thread stacks), file-backed, other ([stack], [vdso]...)."""
    kinds = {"heap": 0, "anon": 0, "file": 0, "other": 0}
    kind = "other"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 6)
        if head and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", head[0]):
            name = head[5] if len(head) > 5 else ""
            if name == "[heap]":
                kind = "heap"
            elif not name:
                kind = "anon"
            elif name.startswith("/"):
                kind = "file"
            else:
                kind = "other"
        elif head and head[0] == "Rss:":
            kinds[kind] += int(head[1])
    return kinds


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(pid: int, timeout: float) -> tuple[float, bool]:
    """Wait until the worker's RSS is unchanged (±64 KiB) over 2 s; (seconds, settled)."""
    t0 = time.monotonic()
    samples: list[int] = []
    while time.monotonic() - t0 < timeout:
        samples.append(rollup(pid)["Rss"])
        if len(samples) >= 5 and max(samples[-5:]) - min(samples[-5:]) <= 64:
            return time.monotonic() - t0, True
        time.sleep(0.5)
    return time.monotonic() - t0, False


# --- the client: N keep-alive connections --------------------------------------------------


class Client:
    """Non-blocking sockets on one selector: connect, send one request, read its response
    (Content-Length framed), then keep the socket open and idle."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.idle: list[socket.socket] = []
        self.failed: list[str] = []

    def open_batch(self, count: int) -> None:
        pending: dict[socket.socket, bytearray] = {}
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", self.port))
            if err not in (0, 115):  # EINPROGRESS
                s.close()
                self.failed.append(f"connect: {os.strerror(err)}")
                continue
            pending[s] = bytearray()
            self.sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + BATCH_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for key, events in self.sel.select(timeout=1.0):
                s = key.fileobj
                if events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self._fail(s, pending, f"connect: {os.strerror(err)}")
                        continue
                    s.send(REQUEST)  # 70 bytes into an empty send buffer: all of it
                    self.sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    chunk = s.recv(65536)
                except OSError as exc:
                    self._fail(s, pending, f"recv: {exc}")
                    continue
                if not chunk:
                    self._fail(s, pending, "closed before the response ended")
                    continue
                buf = pending[s]
                buf += chunk
                if why := self._complete(buf):
                    if why == "ok":
                        self.sel.unregister(s)
                        del pending[s]
                        self.idle.append(s)
                    else:
                        self._fail(s, pending, why)
        for s in list(pending):
            self._fail(s, pending, f"no full response in {BATCH_TIMEOUT_S:.0f} s")

    @staticmethod
    def _complete(buf: bytearray) -> str:
        """'' while incomplete, 'ok' for a whole 200 response kept alive, else why not."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return ""
        head = bytes(buf[:end]).decode("latin-1").lower()
        if not head.startswith("http/1.1 200"):
            return f"status line {head.splitlines()[0]!r}"
        if re.search(r"^connection:\s*close", head, re.M):
            return "the server closes (Connection: close)"
        m = re.search(r"^content-length:\s*(\d+)", head, re.M)
        if not m:
            return "no Content-Length"
        if int(m.group(1)) != BODY_SIZE:
            return f"Content-Length {m.group(1)}, expected {BODY_SIZE}"
        have = len(buf) - end - 4
        if have < BODY_SIZE:
            return ""
        return "ok" if have == BODY_SIZE else f"{have - BODY_SIZE} bytes after the body"

    def _fail(self, s: socket.socket, pending: dict, why: str) -> None:
        self.sel.unregister(s)
        del pending[s]
        s.close()
        self.failed.append(why)

    def still_open(self) -> int:
        """Connections the server has not closed: not readable (no EOF, no stray bytes)."""
        sel = selectors.DefaultSelector()
        for s in self.idle:
            sel.register(s, selectors.EVENT_READ)
        readable = len(sel.select(timeout=0.2))
        sel.close()
        return len(self.idle) - readable

    def close(self) -> None:
        for s in self.idle:
            s.close()
        self.idle.clear()
        self.sel.close()


# --- one server ----------------------------------------------------------------------------


@dataclass
class Result:
    idle: dict[str, int] = field(default_factory=dict)  # rollup, KiB
    loaded: dict[str, int] = field(default_factory=dict)
    kinds_idle: dict[str, int] = field(default_factory=dict)
    kinds_loaded: dict[str, int] = field(default_factory=dict)
    after_close: dict[str, int] = field(default_factory=dict)
    opened: int = 0
    still_open: int = 0
    fds_added: int = 0
    open_s: float = 0.0
    settle_s: float = 0.0
    settled: bool = False
    failed: list[str] = field(default_factory=list)


def warm_up(port: int) -> None:
    """One complete request on its own connection, closed afterwards."""
    c = Client(port)
    try:
        c.open_batch(1)
        if c.failed or len(c.idle) != 1:
            raise ServerFailed(f"warm-up GET /1k.bin: {c.failed[:1] or 'no response'}")
    finally:
        c.close()


def run_one(server: Running, args: argparse.Namespace) -> Result:
    r = Result()
    wait_listening(server)
    warm_up(server.port)
    pid = worker_pid(server.proc.pid)
    time.sleep(1.0)  # the warm-up connection's close handled, the access log flushed
    r.idle, r.kinds_idle = rollup(pid), rss_by_kind(pid)
    fds0 = open_fds(pid)
    client = Client(server.port)
    try:
        t0 = time.monotonic()
        left = args.connections
        while left > 0:
            n = min(args.batch, left)
            client.open_batch(n)
            left -= n
            if server.proc.poll() is not None:
                raise ServerFailed(f"died while connections opened\n{server.tail()}")
        r.open_s = time.monotonic() - t0
        r.opened, r.failed = len(client.idle), client.failed
        r.settle_s, r.settled = settle(pid, args.settle)
        r.loaded, r.kinds_loaded = rollup(pid), rss_by_kind(pid)
        r.fds_added = open_fds(pid) - fds0
        r.still_open = client.still_open()
    finally:
        client.close()
    deadline = time.monotonic() + 10
    while open_fds(pid) > fds0 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    r.after_close = rollup(pid)
    return r


# --- report --------------------------------------------------------------------------------


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def report(results: dict[str, Result], n: int) -> None:
    w = max(9, *(len(name) for name in results))
    print(f"\n== {n:,} idle keep-alive connections: the worker's memory ==")
    print(
        f"{'server':<{w}} {'idle RSS':>9} {'with N':>9} {'ΔRSS MiB':>9} {'KiB/conn':>9} "
        f"{'ΔPSS MiB':>9} {'ΔUSS MiB':>9} {'KiB/conn':>9} {'open':>7} {'+fds':>7}"
    )
    for name, r in results.items():
        d = {k: r.loaded.get(k, 0) - r.idle.get(k, 0) for k in ("Rss", "Pss", "Uss")}
        per = max(r.opened, 1)
        print(
            f"{name:<{w}} {mib(r.idle['Rss']):>9} {mib(r.loaded['Rss']):>9} {mib(d['Rss']):>9} "
            f"{d['Rss'] / per:>9.2f} {mib(d['Pss']):>9} {mib(d['Uss']):>9} "
            f"{d['Uss'] / per:>9.2f} {r.still_open:>7,} {r.fds_added:>7,}"
        )
    print("idle RSS / with N in MiB; KiB/conn: ΔRSS and then ΔUSS over the connections opened")
    print("open: connections still open at the end; +fds: the worker's descriptors above idle")
    print("\ndetails")
    for name, r in results.items():
        grew = ", ".join(
            f"{k} {mib(r.kinds_loaded[k] - r.kinds_idle[k])}" for k in ("heap", "anon", "file")
        )
        print(
            f"{name:<{w}} RSS grew in (MiB): {grew}; opened {r.opened:,} in {r.open_s:.1f} s, "
            f"RSS {'settled' if r.settled else 'NOT settled'} after {r.settle_s:.1f} s; "
            f"after closing them RSS {mib(r.after_close['Rss'])} MiB"
        )
        if r.failed:
            counts: dict[str, int] = {}
            for why in r.failed:
                counts[why] = counts.get(why, 0) + 1
            print(f"{'':<{w}} {len(r.failed)} connections failed: {counts}")
    for name, r in results.items():
        if r.still_open < r.opened:
            print(
                f"WARNING: {name} closed {r.opened - r.still_open:,} of the {r.opened:,} "
                "connections before the end (its error log says why: --keep)"
            )
    rows = [(name, r) for name, r in results.items() if name.startswith("webserv")]
    if rows:
        print(
            f"\ntarget (issue 10): webserv ≤ {TARGET_MIB:.0f} MiB above idle RSS for 10,000 "
            "idle keep-alive connections"
        )
    for name, ws in rows:
        above = (ws.loaded["Rss"] - ws.idle["Rss"]) / 1024
        scaled = above * 10000 / max(ws.opened, 1)
        print(
            f"  {name}: {above:.1f} MiB for {ws.opened:,}"
            f"{f' (scaled to 10,000: {scaled:.1f})' if ws.opened != 10000 else ''}: "
            f"{'met' if scaled <= TARGET_MIB else 'NOT met'}"
        )
    if (ws := results.get("webserv")) and (ng := results.get("nginx")):
        dw, dn = (r.loaded["Rss"] - r.idle["Rss"] for r in (ws, ng))
        if dn > 0:
            print(f"webserv / nginx, RSS above idle: {dw / dn:.1f}×")


# --- main ----------------------------------------------------------------------------------


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=10000, help="N (default 10000)")
    p.add_argument("--batch", type=int, default=250, help="connections per batch (default 250)")
    p.add_argument("--only", default="webserv,nginx", help="webserv,nginx (default both)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=DIRECTIVES",
        help="also run webserv as row 'webserv:NAME' with DIRECTIVES in its server block "
        "(repeatable), e.g. lifecycle_off='lifecycle off;'",
    )
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="access log off in both (default on: combined to a file, as run.py)",
    )
    p.add_argument("--settle", type=float, default=30, help="max seconds for RSS to settle")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = p.parse_args(argv)
    if args.connections < 1 or not 1 <= args.batch <= 500:
        p.error("--connections must be at least 1, --batch 1 to 500 (the listen backlog: 511)")
    variants = []
    for v in args.variant:
        name, sep, extra = v.partition("=")
        if not sep or not name:
            p.error(f"--variant wants NAME=DIRECTIVES, got {v!r}")
        variants.append((name, extra))
    known = servers(args.connections, variants)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    for name in names:
        if name not in ("webserv", "nginx"):
            p.error(f"unknown server {name!r}; known: webserv, nginx")
    extra_rows = [f"webserv:{name}" for name, _ in variants]
    at = names.index("webserv") + 1 if "webserv" in names else 0
    names[at:at] = extra_rows  # variants right after webserv, as run.py
    signal.signal(signal.SIGTERM, _on_sigterm)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.connections  # the servers inherit it too (worker_connections = 2 N)
    if soft < need and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = hard if hard != resource.RLIM_INFINITY else max(need, soft)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < need:
        print(f"RLIMIT_NOFILE is {soft} (hard {hard}): {args.connections} connections need")
        print(f"{need}; use --connections {max(soft // 2, 1)} or raise the hard limit.")
        return 1

    allowed = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = allowed[0], (allowed[1] if len(allowed) > 1 else None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})  # this process is the client; servers pin anew
    print("memory benchmark: N idle keep-alive connections, webserv vs nginx, one run")
    print(
        f"N = {args.connections:,} in batches of {args.batch}, one GET /1k.bin each; "
        f"RLIMIT_NOFILE {soft}; access log {'on (combined, to a file)' if args.access_log else 'off'}"
    )
    print(f"pinning: servers on CPU {server_cpu}, this client on CPU {client_cpu}")
    load = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load)}")
    for name in names:
        print(f"  {name:<8} {known[name].setup}")

    tmp = Path(tempfile.mkdtemp(prefix="webserv-bench-mem-"))
    tmp.chmod(0o755)  # nginx's worker runs as nobody when started as root
    root = tmp / "www"
    root.mkdir()
    (root / "1k.bin").write_bytes(random.Random(20240501).randbytes(BODY_SIZE))
    (root / "1k.bin").chmod(0o644)
    ctx = Context(tmp, root, (root / "1k.bin",), args.access_log, sys.executable)
    results: dict[str, Result] = {}
    code = 0
    try:
        for name in names:
            peer = known[name]
            if why := peer.needs():
                print(f"  {name}: SKIPPED: {why}")
                continue
            server = start(peer, ctx, server_cpu)
            try:
                results[name] = r = run_one(server, args)
                print(
                    f"{name:<9} opened {r.opened:,} in {r.open_s:.1f} s, "
                    f"RSS {mib(r.idle['Rss'])} → {mib(r.loaded['Rss'])} MiB",
                    flush=True,
                )
            except ServerFailed as exc:
                print(f"  {name}: FAILED: {exc}\n{server.tail()}")
                code = 1
            finally:
                stop(server)
    except KeyboardInterrupt:
        print("interrupted: servers stopped")
        code = 130
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if results:
        report(results, args.connections)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return code


if __name__ == "__main__":
    sys.exit(main())
