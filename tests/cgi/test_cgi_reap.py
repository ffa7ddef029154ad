"""After the answer: the script's exit status and last stderr lines are logged, it is
reaped (no zombie), and a grandchild holding its stderr open is let go after the grace,
all by callbacks on the exit (cgi_process.Child._reap) with no task of its own."""

from __future__ import annotations

import os
from pathlib import Path

from cgi_support import children, error_log, get
from support import wait_until


def script(server, name: str, body: str) -> str:
    path = server.root / "exec" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return f"/exec/{name}"


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_exit_status_and_stderr_after_the_answer_are_logged_and_reaped(server):
    worker = server.worker_pid()
    target = script(
        server,
        "late.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\nanswered\\n'\necho 'last words' >&2\nexit 3\n",
    )
    for _ in range(3):  # each followed by another request on a new connection
        status, _, body = get(server.port, target)
        assert (status, body) == (200, b"answered\n")
    wait_until(lambda: error_log(server).count("exited with status 3") == 3)
    log = error_log(server)
    assert log.count('CGI "/exec/late.sh" stderr: last words') == 3
    wait_until(lambda: not children(worker))  # reaped: no zombie left
    assert get(server.port, "/static.txt")[2] == b"static file\n"


def test_a_grandchild_holding_stderr_is_let_go_after_the_grace(server, tmp_path: Path):
    worker = server.worker_pid()
    assert get(server.port, "/static.txt")[2] == b"static file\n"
    before = fds(worker)
    # the grandchild leaves the script's process group, keeps stderr, and outlives it
    target = script(
        server,
        "leave.sh",
        "printf 'Content-Type: text/plain\\r\\n\\r\\nbye\\n'\n"
        "setsid sleep 20 </dev/null >/dev/null &\nexit 0\n",
    )
    status, _, body = get(server.port, target)
    assert (status, body) == (200, b"bye\n")
    # the stderr pipe the grandchild holds is closed by the worker after STDERR_GRACE
    wait_until(lambda: fds(worker) <= before, timeout=20)
    assert get(server.port, "/static.txt")[2] == b"static file\n"
    os.system("pkill -f 'sleep 20' >/dev/null 2>&1")
