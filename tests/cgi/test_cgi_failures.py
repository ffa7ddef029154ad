"""Scripts that cannot run, run too long, or lose their client: the answer, the connection,
the process group (every PID gone), and the server going on serving others."""

from __future__ import annotations

import socket

import pytest
from cgi_support import (
    alive,
    all_gone,
    error_log,
    get,
    read_pids,
    read_until,
    reset,
    still_serves,
)
from support import RawConn, read_until_close, wait_until


def answer_keeps_connection(server, target: str, status: int) -> dict[str, str]:
    """`target` is answered `status` and the connection still carries another request."""
    with RawConn(server.port, timeout=30) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        got, fields, _ = conn.response()
        assert got == status
        assert fields["connection"] == "keep-alive"
        conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[2] == b"static file\n"
    still_serves(server)
    return fields


def test_missing_script_404(server):
    answer_keeps_connection(server, "/cgi-bin/missing.py", 404)
    answer_keeps_connection(server, "/cgi-bin/missing.py/with/path/info", 404)


def test_directory_named_like_a_script_403(server):
    answer_keeps_connection(server, "/cgi-bin/dir.py", 403)
    assert "is a directory" in error_log(server)


def test_symlink_out_of_the_root_403(server):
    answer_keeps_connection(server, "/cgi-bin/outside.py", 403)
    assert "outside" in error_log(server)


def test_not_executable_without_interpreter_502(server):
    answer_keeps_connection(server, "/exec/noexec.sh", 502)
    assert 'CGI script "' + str(server.root / "exec" / "noexec.sh") + '" is not executable' in (
        error_log(server)
    )


def test_executable_without_interpreter_runs(server):
    status, _, body = get(server.port, "/exec/hello.sh")
    assert status == 200
    assert body == f"hello from sh, argv0={server.root}/exec/hello.sh\n".encode()


def test_interpreter_missing_502(server):
    answer_keeps_connection(server, "/badinterp/env.py", 502)
    assert 'CGI interpreter "/nonexistent/bin/python3" for "' in error_log(server)
    assert "is not found" in error_log(server)


def test_post_to_missing_script_refused_before_the_body(server):
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            b"POST /cgi-bin/missing.py HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
        )
        status, fields, _ = conn.response()  # no 100 Continue first: the body is not wanted
        assert status == 404 and fields["connection"] == "close"
    still_serves(server)


def test_timeout_before_headers_504_kills_group(server):
    tag = "timeout-head"
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            f"GET /slow/pids.py?mode=sleep&fork=1&tag={tag} HTTP/1.1\r\n"
            "Host: localhost\r\n\r\n".encode()
        )
        status, fields, _ = conn.response()
        assert status == 504 and fields["connection"] == "keep-alive"
        pids = read_pids(server.root / "cgi-bin" / f"pids-{tag}")
        assert len(pids) == 2  # the script and the child it forked
        wait_until(lambda: all_gone(pids))
        conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[0] == 200
    assert "timed out (cgi_timeout) before its header section" in error_log(server)
    still_serves(server)


def test_demo_sleep_504(server):
    status, _, body = get(server.port, "/slow/sleep.py")
    assert status == 504 and b"504 Gateway Timeout" in body


def test_timeout_after_headers_aborts_connection_kills_group(server):
    tag = "timeout-body"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"GET /slow/pids.py?mode=stream&fork=1&tag={tag} HTTP/1.1\r\n"
            "Host: localhost\r\n\r\n".encode()
        )
        buf = read_until(sock, b"line 1\n")
        assert buf.startswith(b"HTTP/1.1 200 ")
        rest = read_until_close(sock)  # cut mid-body: never the last chunk
    assert not (buf + rest).endswith(b"0\r\n\r\n")
    pids = read_pids(server.root / "cgi-bin" / f"pids-{tag}")
    wait_until(lambda: all_gone(pids))
    assert "timed out (cgi_timeout) mid-response" in error_log(server)
    still_serves(server)


@pytest.mark.parametrize("when", ["mid-response", "before-headers"])
def test_client_disconnect_kills_group(server, when):
    tag = f"disconnect-{when}"
    mode = "stream" if when == "mid-response" else "sleep"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        f"GET /cgi-bin/pids.py?mode={mode}&fork=1&tag={tag} HTTP/1.1\r\n"
        "Host: localhost\r\n\r\n".encode()
    )
    if mode == "stream":
        read_until(sock, b"line 1\n")
    pids = read_pids(server.root / "cgi-bin" / f"pids-{tag}")
    assert len(pids) == 2 and all(alive(p) for p in pids)
    reset(sock)  # the client goes away; the script never finishes by itself
    wait_until(lambda: all_gone(pids))
    still_serves(server)


def test_body_timeout_408_kills_script(server):
    """The client stops sending its body: 408, and the script waiting for it is killed."""
    tag = "body-timeout"
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            f"POST /small/pids.py?mode=sleep&fork=1&tag={tag} HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Length: 50\r\n\r\n0123456789".encode()
        )
        pids = read_pids(server.root / "cgi-bin" / f"pids-{tag}")
        status, fields, _ = conn.response()
        assert status == 408 and fields["connection"] == "close"
        assert conn.closed_by_peer()
    wait_until(lambda: all_gone(pids))
    still_serves(server)


@pytest.mark.parametrize("target, status", [("/pages/crash.py", 502), ("/pages/missing.py", 404)])
def test_error_page_applies_to_cgi_errors(server, target, status):
    got, fields, body = get(server.port, target)
    assert (got, body) == (status, b"<p>custom error page</p>\n")


def test_leftover_child_holding_stdout_killed_at_timeout(server):
    """The script answered and exited in time; a child it left holds stdout open. At
    cgi_timeout that child is killed and the response ends whole (no abort)."""
    status, _, body = get(server.port, "/slow/linger.py")
    assert (status, body) == (200, b"answered\n")
    (pid,) = read_pids(server.root / "cgi-bin" / "linger-pid")
    wait_until(lambda: all_gone([pid]))
    still_serves(server)
