"""Running out: worker_connections (idle keep-alive connections make room, as in nginx),
file descriptors (said in the error log, and the server recovers), and what a killed
server leaves on disk (unfinished uploads: removed, and never served or deleted)."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket

from process_support import error_text, get, wait_log
from support import RawConn, read_until_close, wait_until

CONF = """
worker_processes 1;
error_log {tmp}/error.log info;
events {{ worker_connections CONNECTIONS; }}
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /up/ {{
            allow_methods GET PUT DELETE;
            alias {tmp}/up/;
            upload_store {tmp}/up;
            client_max_body_size 0;
        }}
    }}
}}
"""
FILES = {"v.txt": "one\n"}
TEMP = ".webserv-upload-"


def conf(connections: int = 1024) -> str:
    return CONF.replace("CONNECTIONS", str(connections))


def keepalive_request(conn: RawConn) -> None:
    conn.send(b"GET /v.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = conn.response()
    assert (status, headers["connection"], body) == (200, "keep-alive", b"one\n")


def test_at_worker_connections_the_oldest_idle_connection_makes_room(webserv):
    server = webserv(conf(10), FILES)
    busy = RawConn(server.port)
    busy.send(b"GET /v.txt HTTP/1.1\r\nHost: x\r\n")  # a request in progress: never taken
    idle = []
    for _ in range(9):
        conn = RawConn(server.port)
        keepalive_request(conn)
        idle.append(conn)
    # the limit is reached: a new client is served, the oldest idle connection is closed
    newcomers = []
    for _ in range(3):  # each stays open: each needs room of its own
        newcomers.append(RawConn(server.port))
        keepalive_request(newcomers[-1])
    assert idle[0].closed_by_peer()
    assert idle[1].closed_by_peer()
    assert idle[2].closed_by_peer()
    busy.send(b"Connection: close\r\n\r\n")
    assert busy.response()[2] == b"one\n"  # the busy one was left alone
    for conn in idle[3:]:  # the others still work
        keepalive_request(conn)
    log = error_text(server)
    assert log.count("worker_connections are not enough, closing idle keep-alive") == 1
    for conn in (busy, *idle, *newcomers):
        conn.sock.close()


def test_at_worker_connections_without_idle_connections_new_clients_are_refused(webserv):
    server = webserv(conf(4), FILES)
    busy = []
    for _ in range(4):
        conn = RawConn(server.port)
        conn.send(b"GET /v.txt HTTP/1.1\r\nHost: x\r\n")  # all in the middle of a request
        busy.append(conn)
    wait_until(lambda: error_text(server).count("start worker process") == 1)
    refused = 0
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /v.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            refused += read_until_close(sock) == b""
    assert refused == 5
    log = wait_log(server, "more connections refused")  # one line for the five, per tick
    assert len(re.findall(r"#0: 4 worker_connections are not enough$", log, re.M)) == 1
    for conn in busy:
        conn.send(b"Connection: close\r\n\r\n")
        assert conn.response()[2] == b"one\n"
        conn.sock.close()
    assert get(server.port, "/v.txt")[2] == b"one\n"


def test_out_of_file_descriptors_is_logged_and_the_server_recovers(webserv):
    server = webserv(conf(1024), FILES)
    # the master's limit, inherited by the worker it starts next (not by this test process)
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    old = server.worker_pid()
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: server.worker_pid() != old)
    wait_log(server, "1024 worker_connections exceed the open files limit of 64")
    clients = []
    for _ in range(90):  # more than the worker has descriptors for
        conn = RawConn(server.port)
        clients.append(conn)
    wait_log(server, "accept() failed (24: Too many open files)")
    for conn in clients:
        conn.sock.close()

    def serves() -> bool:
        try:
            return get(server.port, "/v.txt")[2] == b"one\n"
        except OSError:  # reset while the closes free descriptors
            return False

    wait_until(serves)
    for _ in range(10):  # and keeps serving
        assert get(server.port, "/v.txt")[2] == b"one\n"
    log = error_text(server)
    assert "[crit]" in log and "open files limit 64" in log
    assert server.proc.poll() is None


def test_unfinished_uploads_of_an_earlier_run_are_removed_at_start(webserv, tmp_path):
    up = tmp_path / "s0" / "up"
    (up / "deep").mkdir(parents=True)
    (up / f"{TEMP}4242-0123456789abcdef").write_bytes(b"half an upload")
    (up / "deep" / f"{TEMP}77-fedcba9876543210").write_bytes(b"another half")
    (up / "kept.txt").write_bytes(b"a real file")
    server = webserv(conf(), FILES)
    assert sorted(p.name for p in up.rglob("*") if p.is_file()) == ["kept.txt"]
    assert "removed 2 unfinished upload files left by an earlier run" in error_text(server)


def test_an_upload_in_progress_is_never_served_or_deleted(webserv):
    server = webserv(conf(), FILES)
    temp = server.tmp / "up" / f"{TEMP}999-0123456789abcdef"
    temp.write_bytes(b"partial bytes")
    name = f"/up/{temp.name}"
    assert get(server.port, name)[0] == 404
    with RawConn(server.port) as conn:
        conn.send(f"DELETE {name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert conn.response()[0] == 404
    with RawConn(server.port) as conn:
        conn.send(
            f"PUT {name} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\nnew".encode()
        )
        assert conn.response()[0] == 403
    assert temp.read_bytes() == b"partial bytes"


def test_a_killed_workers_unfinished_upload_is_removed_by_the_master(webserv):
    server = webserv(conf(), FILES)
    up = server.tmp / "up"
    with RawConn(server.port) as conn:
        conn.send(b"PUT /up/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        conn.send(b"x" * 1_000_000)
        wait_until(lambda: [p for p in up.iterdir() if p.name.startswith(TEMP)])
        worker = server.worker_pid()
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: not [p for p in up.iterdir() if p.name.startswith(TEMP)])
    assert "removed 1 unfinished upload files of worker" in error_text(server)
    assert not (up / "big.bin").exists()
    assert get(server.port, "/v.txt")[2] == b"one\n"
