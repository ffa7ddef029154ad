"""One running CGI script: its pipes driven by the event loop, its process group, its reaping.

The script is started by cgi_spawn.py (posix_spawn; why there) and the parent waits only
for the exec itself. From then on everything is the event loop's: stdout and stderr are loop readers, stdin (with a body) a loop transport,
and the exit is watched with a pidfd (Linux ≥ 5.3; elsewhere a 50 ms waitpid poll) and
reaped here with waitpid, so no zombie is left behind.

The script runs in a session (and process group) of its own, so everything it forks can be
killed as one (`killpg`). Its stdout is buffered here up to OUT_HIGH_WATER, then the pipe is
paused until the reader catches up: a fast script waits for a slow client instead of filling
memory. stderr goes line by line to the error log with the script's name. stdin is written
from the request body as it arrives, with the pipe's flow control.

cgi_timeout is one timer per script, armed at spawn: whoever reads the output (or stopped
reading it), the group is killed when it fires, and a reader then sees `timed_out`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

from ..logs import error_log
from .cgi_children import Children
from .cgi_spawn import READ_SIZE, FdFile, PipeReader, spawn, spawn_state

OUT_HIGH_WATER = 256 * 1024
STDERR_LINE_LIMIT = 4096
EXIT_POLL = 0.05  # seconds between waitpid polls where there is no pidfd
STDERR_GRACE = 1.0  # seconds stderr may stay open after the script exited


class _Pipe(asyncio.Protocol):
    """The script's stdin, as a loop transport's protocol: events go to the Child."""

    __slots__ = ("child", "fd")

    def __init__(self, child: Child, fd: int) -> None:
        self.child = child
        self.fd = fd

    def data_received(self, data: bytes) -> None:
        self.child.pipe_data_received(self.fd, data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.child.pipe_connection_lost(self.fd, exc)

    def pause_writing(self) -> None:
        self.child.stdin_paused = True

    def resume_writing(self) -> None:
        self.child.stdin_paused = False
        self.child._wake_writer()


class Child:
    # fmt: off
    __slots__ = (
        "label", "conn_id", "pid", "pipes", "pidfd", "out", "out_size",
        "out_paused", "out_eof", "reader", "discarding", "stdin_lost", "stdin_paused",
        "stdin_waiter", "err_buf", "exited", "failure", "feeder", "killed", "timed_out",
        "timer", "reaping", "err_eof", "err_grace", "children", "log",
    )
    # fmt: on

    def __init__(self, children: Children, label: str, conn_id: int) -> None:
        self.children = children
        self.label = label  # SCRIPT_NAME, for log lines
        self.conn_id = conn_id
        self.log = error_log  # the request's location's error_log (cgi.py sets it)
        self.pid = 0
        self.pipes: dict[int, Any] = {}  # 0 → loop transport; 1, 2 → PipeReader
        self.pidfd = -1
        self.out: list[bytes] = []
        self.out_size = 0
        self.out_paused = False
        self.out_eof = False
        self.reader: asyncio.Future[None] | None = None
        self.discarding = False  # the response wants no more stdout: drop what comes
        self.stdin_lost = False
        self.stdin_paused = False
        self.stdin_waiter: asyncio.Future[None] | None = None
        self.err_buf = b""
        self.err_eof = False
        self.err_grace: asyncio.TimerHandle | None = None  # stderr's wait after the exit
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.failure: BaseException | None = None  # the request body failed (client gone, 408)
        self.feeder: asyncio.Task[None] | None = None
        self.killed = False
        self.timed_out = False
        self.timer: asyncio.TimerHandle | None = None
        self.reaping = False

    @classmethod
    async def spawn(
        cls,
        children: Children,
        argv: list[str],
        cwd: str,
        env: dict[bytes, bytes],
        stdin: Any,
        label: str,
        conn_id: int,
        timeout: float,
    ) -> Child:
        """Start the script, to be killed `timeout` s from now; OSError if it cannot start.

        STDIN is subprocess.DEVNULL, subprocess.PIPE (fed by `feed`) or a descriptor.
        """
        child = cls(children, label, conn_id)
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        in_r = in_w = -1
        try:
            if stdin == subprocess.PIPE:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                script_in = in_r
            elif stdin == subprocess.DEVNULL:
                script_in = spawn_state().devnull
            else:
                script_in = stdin  # a spooled body
            child.pid = spawn(argv, cwd, env, (script_in, out_w, err_w))
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):  # the script's own ends
                if fd >= 0:
                    os.close(fd)
        children.add(child)
        child._watch_exit(loop)
        child.timer = loop.call_later(timeout, child._timeout)
        child.pipes[1] = PipeReader(loop, child, 1, out_r)
        child.pipes[2] = PipeReader(loop, child, 2, err_r)
        if in_w >= 0:
            make = lambda: _Pipe(child, 0)  # noqa: E731
            try:
                child.pipes[0] = (await loop.connect_write_pipe(make, FdFile(in_w)))[0]
            except BaseException:
                child.kill("its pipe could not be set up")  # (uvloop closed in_w)
                raise
        return child

    # --- the event loop's side ---------------------------------------------------------

    def _watch_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            loop.call_later(EXIT_POLL, self._poll_exit)
            return
        loop.add_reader(self.pidfd, self._reap_now)

    def _poll_exit(self) -> None:
        if not self._reap_now():
            asyncio.get_running_loop().call_later(EXIT_POLL, self._poll_exit)

    def _reap_now(self) -> bool:
        """waitpid without waiting: True once the process has exited and is reaped."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, -1  # reaped elsewhere: nothing left to wait for
        if pid == 0:
            return False
        code = os.waitstatus_to_exitcode(status) if status >= 0 else -1
        if self.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = -1
        self.children.remove(self.pid)
        if not self.exited.done():
            self.exited.set_result(code)
        return True

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            if self.discarding:
                return
            self.out.append(data)
            self.out_size += len(data)
            if self.out_size > OUT_HIGH_WATER and not self.out_paused:
                self.out_paused = True
                self.pipes[1].pause_reading()
            self._wake_reader()
        elif fd == 2:
            self._stderr(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.out_eof = True
            self._wake_reader()
        elif fd == 2:
            if self.err_buf:
                self._log_stderr(self.err_buf)
                self.err_buf = b""
            self.err_eof = True
            if self.err_grace is not None:  # the script has exited: stderr was all it had
                self.err_grace.cancel()
                self.err_grace = None
        elif fd == 0:
            self.stdin_lost = True  # the script closed its stdin (or exited)
            self._wake_writer()

    def _wake_reader(self) -> None:
        waiter = self.reader
        if waiter is not None:
            self.reader = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self.stdin_waiter
        if waiter is not None:
            self.stdin_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _stderr(self, data: bytes) -> None:
        *lines, rest = (self.err_buf + data).split(b"\n")
        for line in lines:
            self._log_stderr(line)
        while len(rest) > STDERR_LINE_LIMIT:  # a line without end: logged in pieces
            self._log_stderr(rest[:STDERR_LINE_LIMIT])
            rest = rest[STDERR_LINE_LIMIT:]
        self.err_buf = rest

    def _log_stderr(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        self.log.error(f'CGI "{self.label}" stderr: {text}', self.conn_id)

    def _timeout(self) -> None:
        self.timer = None
        if self.exited.done():
            # the script itself ended in time, and what it printed is still delivered; what
            # it left behind (holding stdout open) is killed, and stdout is closed in case
            # that was a process outside the group
            self.killpg()
            self._close_pipes(fds=(1,))
            return
        self.timed_out = True
        self.kill("cgi_timeout")

    def killpg(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the script and all it forked
        except (ProcessLookupError, PermissionError):
            pass  # the whole group is gone already

    # --- the handler's side ------------------------------------------------------------

    async def read(self) -> bytes:
        """What the script has printed since the last call; b"" once stdout is closed (the
        script ended or was killed: see `killed`, `timed_out`, `failure`)."""
        while not self.out:
            if self.out_eof or self.killed:
                return b""
            self.reader = asyncio.get_running_loop().create_future()
            await self.reader
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        if self.out_paused:
            self._resume_out()
        return data

    def whole_output(self, first: bytes) -> bytes | None:
        """FIRST + the rest of stdout if the script has closed it (read now, up to
        OUT_HIGH_WATER): answered with a Content-Length. None while more may come."""
        pipe = self.pipes.get(1)
        while not self.out_eof:
            if pipe is None or pipe.fd < 0 or self.out_size > OUT_HIGH_WATER:
                return None
            try:
                data = os.read(pipe.fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return None  # still running: its output is streamed as it comes
            except OSError:
                return None  # (the stream's read reports it)
            if not data:
                pipe.end()
                self.out_eof = True
                break
            self.out.append(data)
            self.out_size += len(data)
        if self.killed or self.timed_out or self.failure is not None:
            return None
        out = self.out
        whole = first + b"".join(out) if out else first
        out.clear()
        self.out_size = 0
        return whole

    def _resume_out(self) -> None:
        self.out_paused = False
        pipe = self.pipes.get(1)
        if pipe is not None and not pipe.is_closing():
            pipe.resume_reading()

    def feed(self, body: Any) -> None:
        """Copy the request body to stdin as it arrives, in the background."""
        self.feeder = self.children.background(self._feed(body))

    async def _feed(self, body: Any) -> None:
        pipe = self.pipes[0]
        try:
            async for chunk in body:
                if self.stdin_lost or pipe.is_closing():
                    continue  # the script stopped reading: the rest is read and dropped
                pipe.write(chunk)
                while self.stdin_paused and not self.stdin_lost:
                    self.stdin_waiter = asyncio.get_running_loop().create_future()
                    await self.stdin_waiter
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the body failed: 408, 413, client gone
            self.failure = exc
            self.kill(f"the request body failed ({exc})")
        finally:
            if not pipe.is_closing():
                pipe.close()  # EOF for the script, once what is buffered is written

    def kill(self, why: str) -> None:
        """SIGKILL the whole process group now (once); readers see EOF at once."""
        if self.killed:
            return
        self.killed = True
        if not self.exited.done():
            self.log.info(f'CGI "{self.label}" (pid {self.pid}) killed: {why}', self.conn_id)
            self.killpg()
        self.discarding = True
        self.out.clear()
        self._wake_reader()
        self._close_pipes(abort=True, fds=(0, 1))  # stderr drains: a dying script's last words
        self._stop_feeder()
        if not self.reaping:
            self._reap()

    def release(self) -> None:
        """The response needs nothing more: the script may finish (until cgi_timeout), and
        what it still prints is dropped."""
        self.discarding = True
        self.out.clear()
        if self.out_paused:
            self._resume_out()
        self._stop_feeder()
        if not self.reaping:
            self._reap()

    def _stop_feeder(self) -> None:
        feeder = self.feeder
        if feeder is not None and not feeder.done() and feeder is not asyncio.current_task():
            feeder.cancel()

    def _close_pipes(self, abort: bool = False, fds: tuple[int, ...] = (0, 1, 2)) -> None:
        for fd in fds:
            transport = self.pipes.get(fd)
            if transport is not None:
                if not transport.is_closing():
                    if abort and fd == 0:
                        transport.abort()  # what waits for the script's stdin is dropped
                    else:
                        transport.close()

    def _reap(self) -> None:
        """Once the script has exited (killed, or cgi_timeout kills it), let go of
        everything: callbacks, not a task (task + shield + timeout cost 7% of a request)."""
        self.reaping = True
        if self.exited.done():
            self._after_exit(self.exited)
        else:
            self.exited.add_done_callback(self._after_exit)

    def _after_exit(self, exited: asyncio.Future[int]) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        code = exited.result()
        if code and not self.killed:
            message = f'CGI "{self.label}" (pid {self.pid}) exited with status {code}'
            self.log.warn(message, self.conn_id)
        self._close_pipes(fds=(0, 1))  # a grandchild still writing there gets EPIPE
        if self.err_eof:
            self._close_pipes(fds=(2,))
        else:
            # what the script wrote to stderr just before it ended is still in the pipe; a
            # grandchild that left the group could hold it open forever, hence the grace
            self.err_grace = asyncio.get_running_loop().call_later(
                STDERR_GRACE, self._close_pipes, False, (2,)
            )
