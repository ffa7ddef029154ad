"""How the server ends: QUIT lets what is in flight finish (up to worker_shutdown_timeout),
TERM stops at once, a killed worker's CGI scripts die with it, USR1 reopens every log."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from process_support import error_text, get, wait_log
from support import RawConn, wait_until

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parent / "cgi" / "scripts"
MIB = 1024 * 1024

CONF = """
worker_processes 2;
SHUTDOWN
error_log {tmp}/error.log info;
pid {tmp}/webserv.pid;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /up/ {{
            allow_methods GET PUT;
            alias {tmp}/up/;
            upload_store {tmp}/up;
            client_max_body_size 0;
        }}
        location /cgi-bin/ {{ cgi .py PYTHON; }}
    }}
}}
""".replace("PYTHON", sys.executable)


def conf(shutdown: str | None = None) -> str:
    return CONF.replace("SHUTDOWN", f"worker_shutdown_timeout {shutdown};" if shutdown else "")


def start(webserv, shutdown: str | None = None):
    server = webserv(conf(shutdown), {"v.txt": "one\n"})
    bin_dir = server.root / "cgi-bin"
    bin_dir.mkdir()
    shutil.copy2(SCRIPTS / "pids.py", bin_dir / "pids.py")
    return server


def body_of(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


def put_head(name: str, size: int) -> bytes:
    return f"PUT /up/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()


def temp_files(server) -> list[str]:
    up = server.tmp / "up"
    return [p.name for p in up.iterdir() if p.name.startswith(".webserv-upload-")]


def in_flight(server, tag: str):
    """A 50 MiB upload one fifth sent, and a CGI script that has sent its first line and
    waits to be told to go on: both in the middle of their answer."""
    size = 50 * MIB
    body = body_of(size)
    upload = RawConn(server.port, timeout=60)
    upload.send(put_head("big.bin", size) + body[: 10 * MIB])
    wait_until(lambda: temp_files(server))
    cgi = RawConn(server.port, timeout=60)
    cgi.send(f"GET /cgi-bin/pids.py?mode=stream&tag={tag} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    while b"line 1\n" not in cgi.buf:
        assert cgi._fill()
    (pid,) = map(int, (server.root / "cgi-bin" / f"pids-{tag}").read_text().split())
    return upload, body, cgi, pid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_quit_lets_an_upload_and_a_cgi_in_flight_finish(webserv):
    server = start(webserv)
    upload, body, cgi, script = in_flight(server, "q1")
    with upload, cgi:
        os.kill(server.proc.pid, signal.SIGQUIT)
        wait_log(server, "gracefully shutting down", count=2)
        assert server.proc.poll() is None  # waiting for them
        upload.send(body[10 * MIB :])
        status, headers, _ = upload.response()
        assert (status, headers["connection"]) == (201, "close")
        (server.root / "cgi-bin" / "go-q1").touch()
        status, headers, text = cgi.response()
        assert status == 200 and text == b"line 1\nline 2\n"
        # its header section had promised keep-alive before the stop: the idle connection
        # is closed after the answer, not in the middle of it
        assert headers["connection"] == "keep-alive"
        assert cgi.closed_by_peer()
    assert server.proc.wait(60) == 0
    assert (server.tmp / "up" / "big.bin").read_bytes() == body
    assert temp_files(server) == []
    assert not alive(script)


def test_quit_past_worker_shutdown_timeout_leaves_nothing_half_done(webserv):
    server = start(webserv, shutdown="1s")
    upload, _, cgi, script = in_flight(server, "q2")
    with upload, cgi:
        os.kill(server.proc.pid, signal.SIGQUIT)
        assert server.proc.wait(60) == 0  # the stalled ones are cut after the timeout
        assert upload.closed_by_peer()
        with pytest.raises(ConnectionError):
            cgi.response()  # an unterminated chunked body: the client can tell
    assert not (server.tmp / "up" / "big.bin").exists()
    assert temp_files(server) == []
    assert not alive(script)
    assert "closing 2 connections still open" in error_text(server) or (
        error_text(server).count("closing 1 connections still open") == 2
    )


def test_term_stops_at_once_and_leaves_nothing_half_done(webserv):
    server = start(webserv)
    upload, _, cgi, script = in_flight(server, "t1")
    with upload, cgi:
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(60) == 0
        assert upload.closed_by_peer()
    assert not (server.tmp / "up" / "big.bin").exists()
    assert temp_files(server) == []
    assert not alive(script)
    assert "signal SIGTERM received, exiting" in error_text(server)


def test_a_killed_workers_cgi_scripts_are_killed_by_the_master(webserv):
    server = start(webserv)
    _, _, cgi, script = in_flight(server, "k1")
    with cgi:
        workers = server.worker_pids(2)
        # the worker running the script is its parent
        parent = int(Path(f"/proc/{script}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert parent in workers
        os.kill(parent, signal.SIGKILL)
        wait_until(lambda: not alive(script))  # not reparented to init and left running
        assert cgi.closed_by_peer()
    wait_log(server, f"worker process {parent} exited on signal 9")
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_usr1_reopens_every_log_in_the_master_and_the_workers(webserv):
    server = start(webserv)
    for _ in range(10):
        assert get(server.port, "/v.txt")[0] == 200
    server.wait_access_lines(10)
    rotated = server.tmp / "logs" / "access.log.1"
    os.rename(server.access_log, rotated)
    os.rename(server.error_log, server.tmp / "error.log.1")
    os.kill(server.proc.pid, signal.SIGUSR1)
    # each process writes its reopening line into the new file, and only there
    wait_until(lambda: error_text(server).count("logs reopened") == 3)
    for _ in range(10):
        assert get(server.port, "/v.txt")[0] == 200
    server.wait_access_lines(10)
    assert len(rotated.read_text().splitlines()) == 10
    assert "logs reopened" not in (server.tmp / "error.log.1").read_text()
