"""Bodies that never complete: a client that disconnects (FIN or reset) or stalls midway, a
server stopped mid-upload, a full disk. Afterwards the store holds the complete upload or
nothing: no partial file, no `.webserv-upload-*` temp file, and the server serves on."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import uuid

import pytest
from bodies_support import (
    assert_unchanged,
    chunked,
    head,
    listing,
    multipart,
    pattern,
    rst_close,
    temp_files,
    wait_no_temp,
    wait_temp,
)
from support import RawConn, wait_until

from webserv.http.body import HIGH_WATER, MAX_CHUNK
from webserv.tcpinfo import decode_tcp_info

MIB = 1024 * 1024


def _start_upload(server, method: str, where: str, total: int) -> tuple[RawConn, bytes]:
    """Send the header section and the first MiB of a `total`-byte body; wait until the
    server is writing it to a temp file. Returns the connection and the rest of the body."""
    if method == "PUT":
        body, fields = pattern(total), {}
        target = f"/{where}/cut-{uuid.uuid4().hex[:8]}.bin"
    else:
        body, ctype = multipart([("f", f"cut-{uuid.uuid4().hex[:8]}.bin", pattern(total))])
        fields, target = {"Content-Type": ctype}, f"/{where}/"
    store = server.tmp / where
    others = frozenset(temp_files(store))  # of uploads started before this one
    conn = RawConn(server.port)
    conn.send(head(method, target, {"Content-Length": len(body), **fields}) + body[:MIB])
    wait_temp(store, min_size=MIB // 2, other_than=others)
    return conn, body[MIB:]


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_disconnects_mid_body(server, method, how):
    before = listing(server.big)
    conn, _ = _start_upload(server, method, "big", 8 * MIB)
    if how == "reset":
        rst_close(conn.sock)
    else:
        conn.sock.close()
    assert_unchanged(server.big, before)  # waits for the temp file to go
    assert server.alive()


def _tcp_info(sock: socket.socket) -> dict:
    fields = decode_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))
    if fields.get("snd_wnd") is None or fields.get("bytes_acked") is None:
        pytest.skip("this kernel's TCP_INFO has no tcpi_snd_wnd / tcpi_bytes_acked")
    return fields


def _receive_buffer_max() -> int:
    with open("/proc/sys/net/ipv4/tcp_rmem") as f:
        return int(f.read().split()[2])


def test_client_disconnects_while_reading_is_paused(server):
    """The handler lags behind a burst and the server stops reading; the reset comes then.

    "Paused" is seen from the client's side of the wire: the server advertises a zero
    window (its kernel buffer is full: it does not read) while it has taken little more
    than it has written to disk — what was acknowledged, minus the temp file's size, is at
    most the kernel's receive buffer plus what RequestBody may hold. A server that only
    fell behind, reading on without flow control, holds far more by then (measured: 545 MiB
    of 600 with HIGH_WATER raised to 4 GiB; 3.5 MiB with flow control).
    """
    before = listing(server.big)
    total = 1024 * MIB
    held_at_most = _receive_buffer_max() + HIGH_WATER + MAX_CHUNK + MIB
    block = pattern(4 * MIB)
    others = frozenset(temp_files(server.big))
    conn = RawConn(server.port)
    conn.send(head("PUT", f"/big/cut-{uuid.uuid4().hex[:8]}.bin", {"Content-Length": total}))
    conn.send(block[:MIB])
    temp = server.big / wait_temp(server.big, min_size=MIB // 2, other_than=others)
    conn.sock.setblocking(False)
    view = memoryview(block)
    sent, paused = MIB, False
    while sent < total and not paused:
        try:
            sent += conn.sock.send(view[sent % len(block) :])
            continue
        except BlockingIOError:
            pass
        info = _tcp_info(conn.sock)
        if info["snd_wnd"] == 0 and sent > 4 * held_at_most:
            held = info["bytes_acked"] - os.path.getsize(temp)
            assert held <= held_at_most, f"the server read on: {held} bytes taken, not written"
            paused = True  # the server is not reading: reset now
        else:
            select.select([], [conn.sock], [], 1.0)  # wait until it takes more
    assert paused, f"all {sent} bytes were taken: the window never shut"
    rst_close(conn.sock)
    assert_unchanged(server.big, before)
    assert server.alive()


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_client_stalls_mid_body_408(server, method):
    """client_body_timeout 1s in /slow/: the answer is 408, then the connection closes."""
    before = listing(server.slow)
    conn, _ = _start_upload(server, method, "slow", 4 * MIB)
    with conn:
        status, headers, _ = conn.response()  # waits: no timing is asserted
        assert status == 408
        assert headers["connection"] == "close"
        assert conn.closed_by_peer()
    assert_unchanged(server.slow, before)
    assert server.alive()


def test_client_stalls_before_the_first_body_byte(server):
    before = listing(server.slow)
    with RawConn(server.port) as conn:
        conn.send(head("PUT", "/slow/never.bin", {"Content-Length": 100}))
        status, _, _ = conn.response()
        assert status == 408
        assert conn.closed_by_peer()
    assert_unchanged(server.slow, before)


def test_client_half_closes_mid_body(server):
    """A FIN mid-body: the request can never complete, so nothing may be stored."""
    before = listing(server.slow)
    conn, _ = _start_upload(server, "PUT", "slow", 4 * MIB)
    with conn:
        conn.sock.shutdown(socket.SHUT_WR)
        status, _, _ = conn.response()
        # at once, as nginx ("client prematurely closed connection"), not a 408 after
        # client_body_timeout with the temp file waiting meanwhile
        assert status == 400
        assert conn.closed_by_peer()
    assert_unchanged(server.slow, before)
    assert server.alive()


def test_several_uploads_cut_at_once_leave_nothing(server):
    before = listing(server.big)
    conns = [_start_upload(server, m, "big", 4 * MIB)[0] for m in ("PUT", "POST", "PUT")]
    assert len(temp_files(server.big)) >= 3
    for i, conn in enumerate(conns):
        rst_close(conn.sock) if i % 2 else conn.sock.close()
    assert_unchanged(server.big, before)
    assert server.alive()


# --- the server stops mid-upload -----------------------------------------------------------

STOP_CONF = """
error_log {tmp}/error.log info;
SHUTDOWN_TIMEOUT
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /big/ {{
            allow_methods GET PUT POST;
            alias {tmp}/big/;
            upload_store {tmp}/big;
            client_max_body_size 0;
        }}
    }}
}}
"""


def stop_conf(shutdown_timeout: str | None = None) -> str:
    line = f"worker_shutdown_timeout {shutdown_timeout};" if shutdown_timeout else ""
    return STOP_CONF.replace("SHUTDOWN_TIMEOUT", line)


def test_sigquit_mid_upload_lets_a_live_upload_finish(webserv):
    """A graceful stop (QUIT) waits for the request in flight: it completes, whole."""
    srv = webserv(stop_conf(), {"index.html": "x"})
    srv.big = srv.tmp / "big"
    body = pattern(4 * MIB)
    with RawConn(srv.port) as conn:
        conn.send(head("PUT", "/big/finished.bin", {"Content-Length": len(body)}) + body[:MIB])
        wait_temp(srv.big, min_size=MIB // 2)
        srv.proc.send_signal(signal.SIGQUIT)
        conn.send(body[MIB:])
        status, headers, _ = conn.response()
        assert status == 201
        assert headers["connection"] == "close"
    assert srv.proc.wait(30) == 0
    assert listing(srv.big) == {"finished.bin": body}


def test_sigquit_with_a_stalled_upload_stops_after_worker_shutdown_timeout(webserv):
    """Past worker_shutdown_timeout the stalled upload is cut: no partial file, no temp."""
    srv = webserv(stop_conf("1s"), {"index.html": "x"})
    srv.big = srv.tmp / "big"
    body = pattern(4 * MIB)
    with RawConn(srv.port) as conn:
        conn.send(head("PUT", "/big/stalled.bin", {"Content-Length": len(body)}) + body[:MIB])
        wait_temp(srv.big, min_size=MIB // 2)
        srv.proc.send_signal(signal.SIGQUIT)
        assert srv.proc.wait(60) == 0  # the timeout passes, then the server exits
        assert conn.closed_by_peer()
    assert listing(srv.big) == {}
    assert "closing 1 connections still open" in srv.error_log.read_text()


def test_sigterm_mid_upload_stops_at_once_and_leaves_nothing(webserv):
    """A fast stop (TERM) does not wait for the upload: no partial file, no temp file."""
    srv = webserv(stop_conf(), {"index.html": "x"})
    srv.big = srv.tmp / "big"
    body = pattern(4 * MIB)
    with RawConn(srv.port) as conn:
        conn.send(head("PUT", "/big/cut.bin", {"Content-Length": len(body)}) + body[:MIB])
        wait_temp(srv.big, min_size=MIB // 2)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(60) == 0
        assert conn.closed_by_peer()
    assert listing(srv.big) == {}


# --- a full disk --------------------------------------------------------------------------

FULL_CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /full/ {{
            allow_methods GET PUT POST DELETE;
            alias {tmp}/full/;
            upload_store {tmp}/full;
            client_max_body_size 0;
        }}
    }}
}}
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs as the upload store (root only; skipped where mounting is impossible)."""
    mount = shutil.which("mount")
    target = tmp_path / "s0" / "full"
    target.mkdir(parents=True)
    if mount is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    yield target
    if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _send_ignoring_errors(sock, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _upload_expect(srv, request_head: bytes, body: bytes, status: int) -> None:
    with RawConn(srv.port) as conn:
        conn.send(request_head)
        sender = threading.Thread(target=_send_ignoring_errors, args=(conn.sock, body))
        sender.start()
        got, headers, _ = conn.response()
        sender.join()
        assert got == status
        # the failure may come after the whole body was read (the framing is intact: the
        # connection may go on) or before (then it must close)
        if headers["connection"] == "keep-alive":
            conn.send(head("GET", "/"))
            assert conn.response()[0] == 200
        else:
            assert conn.closed_by_peer()


def test_disk_full_is_507_and_nothing_half_written(webserv, full_disk):
    srv = webserv(FULL_CONF, {"index.html": "x"})
    old = pattern(200 * 1024, seed=9)
    (full_disk / "existing.bin").write_bytes(old)
    before = listing(full_disk)
    big = pattern(2 * MIB)

    # a new file that does not fit
    _upload_expect(srv, head("PUT", "/full/new.bin", {"Content-Length": len(big)}), big, 507)
    assert_unchanged(full_disk, before)
    # a replacement that does not fit: the old content stays, whole
    _upload_expect(
        srv,
        head("PUT", "/full/existing.bin", {"Transfer-Encoding": "chunked"}),
        chunked(big, 64 * 1024),
        507,
    )
    assert_unchanged(full_disk, before)
    # a form whose first file fits and whose second does not: neither is stored
    body, ctype = multipart([("a", "small.txt", b"fits"), ("b", "huge.bin", big)])
    _upload_expect(
        srv, head("POST", "/full/", {"Content-Length": len(body), "Content-Type": ctype}), body, 507
    )
    assert_unchanged(full_disk, before)
    assert srv.alive()
    # the space the failed uploads took was given back
    small = pattern(300 * 1024, seed=10)
    _upload_expect(srv, head("PUT", "/full/later.bin", {"Content-Length": len(small)}), small, 201)
    wait_no_temp(full_disk)
    assert listing(full_disk) == {**before, "later.bin": small}
    wait_until(lambda: srv.alive())
