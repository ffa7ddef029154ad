"""Many scripts at once: concurrency, static requests meanwhile, and no zombies after."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cgi_support import alive, children, get, read_until, reset, still_serves
from support import RawConn, wait_until


def waiting(dir_: Path) -> list[int]:
    """PIDs of the pids.py?mode=wait scripts that are running and waiting for their go file."""
    if not dir_.exists():
        return []
    return [int(p.name) for p in dir_.iterdir() if p.name.isdigit()]


def start_waiters(server, tag: str, count: int) -> list[RawConn]:
    conns = []
    for _ in range(count):
        conn = RawConn(server.port, timeout=60)
        conn.send(
            f"GET /cgi-bin/pids.py?mode=wait&tag={tag} HTTP/1.1\r\n"
            "Host: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        conns.append(conn)
    return conns


def finish_waiters(server, tag: str, conns: list[RawConn]) -> set[bytes]:
    (server.root / "cgi-bin" / f"go-{tag}").touch()
    bodies = set()
    for conn in conns:
        with conn:
            status, _, body = conn.response()
            assert status == 200 and body.startswith(b"done ")
            bodies.add(body)
    return bodies


def test_50_concurrent_cgi_requests(server):
    """All 50 scripts run at the same time: each waits for a file that the test creates only
    once all 50 are running, so serving them one after another could never finish."""
    tag = "c50"
    conns = start_waiters(server, tag, 50)
    pids = wait_until(
        lambda: (
            len(waiting(server.root / "cgi-bin" / f"waiting-{tag}")) == 50
            and waiting(server.root / "cgi-bin" / f"waiting-{tag}")
        ),
        timeout=120,
    )
    assert all(alive(pid) for pid in pids)
    assert len(finish_waiters(server, tag, conns)) == 50  # 50 different processes answered


def test_static_answered_while_20_slow_scripts_run(server):
    tag = "s20"
    conns = start_waiters(server, tag, 20)
    dir_ = server.root / "cgi-bin" / f"waiting-{tag}"
    pids = wait_until(lambda: len(waiting(dir_)) == 20 and waiting(dir_), timeout=120)
    with RawConn(server.port, timeout=30) as conn:
        for _ in range(50):
            conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert conn.response()[:3:2] == (200, b"static file\n")
    status, _, body = get(server.port, "/cgi-bin/respond.py?Content-Type:%20text/plain%0A%0Aok")
    assert (status, body) == (200, b"ok")  # and other CGI requests too
    assert all(alive(pid) for pid in pids)  # all the while, the 20 were still running
    assert len(finish_waiters(server, tag, conns)) == 20


def _one(server, i: int) -> int | None:
    port = server.port
    kind = i % 10
    if kind == 0:
        return get(port, "/cgi-bin/env.py")[0]
    if kind == 1:
        return get(port, "/cgi-bin/crash.py")[0]
    if kind == 2:
        return get(port, "/cgi-bin/bad_headers.py")[0]
    if kind == 3:
        return get(port, "/cgi-bin/env.py", "HEAD")[0]
    if kind == 4:
        return get(port, "/cgi-bin/echo.py", "POST", "Content-Length: 5000\r\n", b"e" * 5000)[0]
    if kind == 5:
        body = b"1000\r\n" + b"c" * 4096 + b"\r\n0\r\n\r\n"
        return get(port, "/cgi-bin/echo.py", "POST", "Transfer-Encoding: chunked\r\n", body)[0]
    if kind == 6:  # the client goes away mid-response
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /cgi-bin/stream.py?n=5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        read_until(sock, b"line 1")
        reset(sock)
        return None
    if kind == 7:  # every 20th request: a script that never answers (cgi_timeout 1s)
        return get(port, "/slow/sleep.py" if i % 20 == 7 else "/cgi-bin/missing.py")[0]
    if kind == 8:
        return get(port, "/cgi-bin/respond.py?Location:%20/static.txt%0A%0A")[0]
    return get(port, "/cgi-bin/session.py")[0]


def expected(i: int) -> int | None:
    kind = i % 10
    if kind == 6:
        return None  # the client left
    if kind == 7:
        return 504 if i % 20 == 7 else 404
    return 502 if kind in (1, 2) else 200


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_no_zombies_after_200_mixed_requests(server):
    server_pid = server.worker_pid()  # the scripts are the worker's children
    wait_until(lambda: not children(server_pid), timeout=30)
    fds_before = open_fds(server_pid)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda i: _one(server, i), range(200)))
    assert statuses == [expected(i) for i in range(200)]
    # every script has ended and been reaped: no child of the server is left, defunct or not
    wait_until(lambda: not children(server_pid), timeout=30)
    assert server.proc.poll() is None
    still_serves(server)
    wait_until(lambda: not children(server_pid), timeout=30)
    # and let go of everything: pipes, pidfds, spooled bodies, connections
    wait_until(lambda: open_fds(server_pid) <= fds_before, timeout=30)
