"""A script that has ended its output by the time its header section is read is answered
whole, with a Content-Length (Child.whole_output); one still running is streamed. Real
processes and pipes; each case followed by another request on the same connection."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from cgi_support import get, read_until
from support import RawConn

from webserv.handlers.cgi_children import Children
from webserv.handlers.cgi_process import Child


async def started(script: str) -> Child:
    return await Child.spawn(
        Children(), [sys.executable, "-c", script], "/", {}, subprocess.DEVNULL, "t", 1, 30.0
    )


async def test_whole_output_of_a_script_that_exited() -> None:
    child = await started("import sys; sys.stdout.write('A' * 100000 + 'end')")
    first = await child.read()
    await child.exited  # the process is gone: its stdout is closed, the rest is in the pipe
    whole = child.whole_output(first)
    assert whole == b"A" * 100000 + b"end"
    assert child.out_eof and await child.read() == b""
    child.release()


async def test_no_whole_output_while_the_script_runs() -> None:
    child = await started(
        "import sys, time; sys.stdout.write('one'); sys.stdout.flush(); time.sleep(30)"
    )
    first = await child.read()
    assert first == b"one"
    assert child.whole_output(first) is None  # stdout still open: it is streamed
    assert not child.out_eof
    child.kill("test over")
    assert await child.read() == b""
    assert await asyncio.wait_for(child.exited, 30) != 0


async def test_a_killed_script_has_no_whole_output() -> None:
    child = await started("import sys; sys.stdout.write('partial')")
    first = await child.read()
    await child.exited
    child.kill("test")  # e.g. cgi_timeout fired: what it printed is not an answer
    assert child.whole_output(first) is None


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_answers_whole_or_streamed_keep_the_connection_in_step(server, version):
    quick = "/cgi-bin/respond.py?" + "Content-Type%3A%20text%2Fplain%0A%0Aquick"
    with RawConn(server.port, timeout=30) as conn:
        for _ in range(5):
            keep = "Connection: keep-alive\r\n" if version == "HTTP/1.0" else ""
            conn.send(f"GET {quick} {version}\r\nHost: localhost\r\n{keep}\r\n".encode())
            status, fields, body = conn.response()
            assert (status, body) == (200, b"quick")
            if "content-length" in fields:  # whole
                assert fields["content-length"] == "5" and "transfer-encoding" not in fields
                assert fields["connection"] == "keep-alive"
            elif version == "HTTP/1.1":  # streamed: chunked
                assert fields["transfer-encoding"] == "chunked"
            else:  # streamed on 1.0: the body ends with the connection
                assert "transfer-encoding" not in fields and fields["connection"] == "close"
            if fields["connection"] == "close":
                break
            conn.send(b"GET /static.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert conn.response()[2] == b"static file\n"


def test_a_script_still_running_after_its_head_is_streamed(server):
    # pids.py?mode=stream prints line 1, then waits for a file the test makes
    bin_dir = server.root / "cgi-bin"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /cgi-bin/pids.py?mode=stream&tag=whole HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = read_until(sock, b"line 1\n")
        assert b"Transfer-Encoding: chunked" in buf and b"Content-Length" not in buf
        (bin_dir / "go-whole").touch()
        buf = read_until(sock, b"0\r\n\r\n", buf)
        assert b"line 2\n" in buf
    assert get(server.port, "/static.txt")[2] == b"static file\n"
