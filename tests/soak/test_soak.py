"""A short soak, siege-style: keep-alive and `Connection: close` loops bounded by a request
count, on an empty file, a 1 KiB file and a CGI script.

Each scenario gets its own server and runs its load twice with the same concurrent users: a
warm-up (a quarter of the requests), then the rest. Every request must get a 200 with exactly
the expected body (100% availability; a keep-alive answer may not say `close`); between the
two phases and at the end, with no CGI script still running, the resident memory of the
server's whole process tree (psutil, `children(recursive=True)`: a master and its workers,
CGI scripts left out) may grow by less than 20 MiB, its open descriptors by at most 16, and
no file may be left behind in the server's directory.

Figures go to test-artifacts/soak-SCENARIO.json. `pytest -m long tests/soak` runs the `long`
variants with ten times the requests. Nothing here measures time.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pytest
from support import REPO, RawConn, RunningServer, wait_until

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
CONF = f"""
error_log {{tmp}}/error.log notice;
http {{{{
    access_log {{tmp}}/logs/access.log;
    server {{{{
        listen 127.0.0.1:{{port}};
        root {{root}};
        location /cgi-bin/ {{{{ cgi .py {PYTHON}; }}}}
    }}}}
}}}}
"""
KIB = bytes(range(256)) * 4
HELLO = b"hello from cgi\n"
FILES = {
    "empty.txt": b"",
    "1k.bin": KIB,
    "cgi-bin/hello.py": 'import sys\nsys.stdout.write("Content-Type: text/plain\\n\\nhello from cgi\\n")\n',
}
TARGETS = {
    "empty": ("/empty.txt", b""),
    "1k": ("/1k.bin", KIB),
    "cgi": ("/cgi-bin/hello.py", HELLO),
}
USERS = 8
RSS_GROWTH_LIMIT = 20 * 1024 * 1024
FD_GROWTH_LIMIT = 16
ARTIFACTS = REPO / "test-artifacts"
# requests per scenario in the default run; `long` runs ten times as many
COUNTS = {
    ("empty", "keepalive"): 10000,
    ("1k", "keepalive"): 10000,
    ("cgi", "keepalive"): 300,
    ("empty", "close"): 4000,
    ("1k", "close"): 4000,
    ("cgi", "close"): 300,
}
KNOWN: dict[tuple[str, str], str] = {}  # (target, mode) -> a known bug: strict xfail


@dataclass
class Figures:
    scenario: str
    requests: int
    ok: int
    availability: float
    failures: list[str]
    rss_warm: int
    rss_end: int
    rss_growth: int
    fds_warm: int
    fds_end: int
    processes: int
    files_left: list[str]


def _tree(server: RunningServer) -> list[psutil.Process]:
    """The server and its descendants, CGI scripts left out (they come and go)."""
    root = psutil.Process(server.proc.pid)
    procs = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            if not any("cgi-bin" in part for part in proc.cmdline()):
                procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    return procs


def _cgi_running(server: RunningServer) -> bool:
    root = psutil.Process(server.proc.pid)
    for proc in root.children(recursive=True):
        try:
            if any("cgi-bin" in part for part in proc.cmdline()):
                return True
        except psutil.NoSuchProcess:
            pass
    return False


def _measure(server: RunningServer) -> tuple[int, int, int]:
    """(RSS bytes, open descriptors, processes) of the tree, once no CGI script runs."""
    wait_until(lambda: not _cgi_running(server), timeout=30)
    rss = fds = 0
    procs = _tree(server)
    for proc in procs:
        try:
            rss += proc.memory_info().rss
            fds += proc.num_fds()
        except psutil.NoSuchProcess:
            pass
    return rss, fds, len(procs)


def _user(port: int, path: str, expect: bytes, count: int, keepalive: bool) -> list[str]:
    """One simulated user: `count` requests; returns a line per failed request."""
    failures: list[str] = []
    close = b"" if keepalive else b"Connection: close\r\n"
    req = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + close + b"\r\n"
    conn = None
    for n in range(count):
        try:
            if conn is None:
                conn = RawConn(port, timeout=15)
            conn.send(req)
            status, headers, body = conn.response()
            said = headers.get("connection")
            if status != 200 or body != expect:
                failures.append(f"#{n}: {status} {body[:40]!r}")
            elif keepalive and said != "keep-alive":
                failures.append(f"#{n}: Connection: {said}")
            elif not keepalive and not conn.closed_by_peer(timeout=15):
                failures.append(f"#{n}: not closed after Connection: close")
            if not keepalive or said != "keep-alive":
                conn.sock.close()
                conn = None
        except (OSError, ConnectionError) as exc:
            failures.append(f"#{n}: {exc!r}")
            if conn:
                conn.sock.close()
            conn = None
    if conn:
        conn.sock.close()
    return failures


def _load(port: int, target: str, mode: str, total: int) -> list[str]:
    path, expect = TARGETS[target]
    shares = [total // USERS + (1 if i < total % USERS else 0) for i in range(USERS)]
    with ThreadPoolExecutor(USERS) as pool:
        runs = pool.map(lambda n: _user(port, path, expect, n, mode == "keepalive"), shares)
        return [line for run in runs for line in run]


def _files(server: RunningServer) -> set[str]:
    skip = {server.access_log, server.error_log, server.stderr_path}
    return {
        str(p.relative_to(server.tmp))
        for p in server.tmp.rglob("*")
        if p.is_file() and p not in skip
    }


def _soak(tmp: Path, target: str, mode: str, total: int) -> Figures:
    server = RunningServer(tmp, CONF, FILES).start()
    try:
        before = _files(server)
        warm = total // 4
        failures = _load(server.port, target, mode, warm)
        rss_warm, fds_warm, _ = _measure(server)
        failures += _load(server.port, target, mode, total - warm)
        rss_end, fds_end, procs = _measure(server)
        left = sorted(_files(server) - before)
    finally:
        server.stop()
    figures = Figures(
        scenario=f"{target}-{mode}",
        requests=total,
        ok=total - len(failures),
        availability=100.0 * (total - len(failures)) / total,
        failures=failures[:20],
        rss_warm=rss_warm,
        rss_end=rss_end,
        rss_growth=rss_end - rss_warm,
        fds_warm=fds_warm,
        fds_end=fds_end,
        processes=procs,
        files_left=left,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"soak-{figures.scenario}.json").write_text(json.dumps(asdict(figures), indent=1))
    return figures


def _check(figures: Figures):
    assert figures.ok == figures.requests, (
        f"{figures.scenario}: {figures.availability:.2f}% available; {figures.failures}"
    )
    assert figures.rss_growth < RSS_GROWTH_LIMIT, (
        f"{figures.scenario}: RSS grew {figures.rss_growth / 2**20:.1f} MiB after warm-up"
    )
    assert figures.fds_end <= figures.fds_warm + FD_GROWTH_LIMIT, (
        f"{figures.scenario}: open descriptors {figures.fds_warm} -> {figures.fds_end}"
    )
    assert not figures.files_left, f"{figures.scenario}: files left {figures.files_left}"


def _scenarios(scale: int, long: bool):
    for (target, mode), count in COUNTS.items():
        marks = [pytest.mark.long] if long else []
        if (target, mode) in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[(target, mode)]))
        yield pytest.param(target, mode, count * scale, id=f"{target}-{mode}", marks=marks)


@pytest.mark.parametrize(("target", "mode", "total"), list(_scenarios(1, long=False)))
def test_soak(tmp_path, target, mode, total, record_property):
    figures = _soak(tmp_path, target, mode, total)
    record_property("figures", asdict(figures))
    _check(figures)


@pytest.mark.parametrize(("target", "mode", "total"), list(_scenarios(10, long=True)))
def test_soak_long(tmp_path, target, mode, total, record_property):
    figures = _soak(tmp_path, target, mode, total)
    record_property("figures", asdict(figures))
    _check(figures)
