"""One running CGI script: its pipes driven by the event loop, its process group, its reaping.

The script runs in a session (and process group) of its own, so everything it forks can be
killed as one (`killpg`). Its stdout is buffered here up to OUT_HIGH_WATER, then the pipe is
paused until the reader catches up, so a fast script waits for a slow client instead of
filling memory. stderr is read line by line into the error log with the script's name.
stdin is written from the request body as it arrives, with the pipe's flow control.

Every Child is kept in `_live` until its process has exited and been reaped (the event loop's
child watcher reaps it; `wait()` waits for that), so none is forgotten as a zombie. The
module never blocks: every call here is a pipe operation or a signal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

from ..logs import error_log

OUT_HIGH_WATER = 256 * 1024
STDERR_LINE_LIMIT = 4096

_live: set[Child] = set()  # started and not yet reaped
_tasks: set[asyncio.Task[Any]] = set()  # background reapers and body feeders


def background(coro: Any) -> asyncio.Task[Any]:
    """A task that nobody awaits but that must not be garbage-collected mid-way."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


class Child(asyncio.SubprocessProtocol):
    __slots__ = (
        "label",
        "conn_id",
        "transport",
        "pid",
        "out",
        "out_size",
        "out_paused",
        "out_eof",
        "reader",
        "discarding",
        "stdin_lost",
        "stdin_paused",
        "stdin_waiter",
        "err_buf",
        "exited",
        "failure",
        "feeder",
        "killed",
    )

    def __init__(self, label: str, conn_id: int) -> None:
        self.label = label  # SCRIPT_NAME, for log lines
        self.conn_id = conn_id
        self.transport: Any = None
        self.pid = 0
        self.out: list[bytes] = []
        self.out_size = 0
        self.out_paused = False
        self.out_eof = False
        self.reader: asyncio.Future[None] | None = None
        self.discarding = False  # the response no longer wants stdout: drop what comes
        self.stdin_lost = False
        self.stdin_paused = False
        self.stdin_waiter: asyncio.Future[None] | None = None
        self.err_buf = b""
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.failure: BaseException | None = None  # the request body failed (client gone, 408)
        self.feeder: asyncio.Task[None] | None = None
        self.killed = False

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        cwd: str,
        env: dict[bytes, bytes],
        stdin: Any,
        label: str,
        conn_id: int,
    ) -> Child:
        """Start the script; OSError when it cannot be executed."""
        child = cls(label, conn_id)
        loop = asyncio.get_running_loop()
        await loop.subprocess_exec(
            lambda: child,
            *argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        return child

    # --- the event loop's side ---------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pid = transport.get_pid()
        _live.add(self)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            if self.discarding:
                return
            self.out.append(data)
            self.out_size += len(data)
            if self.out_size > OUT_HIGH_WATER and not self.out_paused:
                self.out_paused = True
                self.transport.get_pipe_transport(1).pause_reading()
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
        elif fd == 0:
            self.stdin_lost = True  # the script closed its stdin (or exited)
            self._wake_writer()

    def process_exited(self) -> None:
        _live.discard(self)
        if not self.exited.done():
            self.exited.set_result(self.transport.get_returncode())

    def pause_writing(self) -> None:
        self.stdin_paused = True

    def resume_writing(self) -> None:
        self.stdin_paused = False
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
        buf = self.err_buf + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._log_stderr(line)
        while len(rest) > STDERR_LINE_LIMIT:  # a line without end: logged in pieces
            self._log_stderr(rest[:STDERR_LINE_LIMIT])
            rest = rest[STDERR_LINE_LIMIT:]
        self.err_buf = rest

    def _log_stderr(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        error_log.error(f'CGI "{self.label}" stderr: {text}', self.conn_id)

    # --- the handler's side ------------------------------------------------------------

    async def read(self) -> bytes:
        """What the script has printed since the last call; b"" once stdout is closed."""
        while not self.out:
            if self.out_eof:
                return b""
            self.reader = asyncio.get_running_loop().create_future()
            await self.reader
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        if self.out_paused:
            self.out_paused = False
            pipe = self.transport.get_pipe_transport(1)
            if pipe is not None and not pipe.is_closing():
                pipe.resume_reading()
        return data

    def feed(self, body: Any) -> None:
        """Copy the request body to stdin as it arrives, in the background."""
        self.feeder = background(self._feed(body))

    async def _feed(self, body: Any) -> None:
        pipe = self.transport.get_pipe_transport(0)
        try:
            async for chunk in body:
                if self.stdin_lost:
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

    def kill(self, why: str = "") -> None:
        """SIGKILL the whole process group now (idempotent); the reaper waits for it."""
        if self.killed:
            return
        self.killed = True
        if why and not self.exited.done():
            error_log.info(f'CGI "{self.label}" (pid {self.pid}) killed: {why}', self.conn_id)
        if self.pid:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # the whole group is gone already
        self.discarding = True
        self.out.clear()
        if self.transport is not None:
            self.transport.close()  # our ends of the pipes: nothing more is read or written
        self._stop_feeder()
        background(self._reap(None))

    def release(self, deadline: float) -> None:
        """The response needs nothing more: let the script finish, dropping its output, and
        kill its group if it is still running at `deadline` (cgi_timeout)."""
        self.discarding = True
        self.out.clear()
        if self.out_paused:
            self.out_paused = False
            pipe = self.transport.get_pipe_transport(1)
            if pipe is not None and not pipe.is_closing():
                pipe.resume_reading()
        self._stop_feeder()
        background(self._reap(deadline))

    def _stop_feeder(self) -> None:
        feeder = self.feeder
        if feeder is not None and not feeder.done() and feeder is not asyncio.current_task():
            feeder.cancel()

    async def _reap(self, deadline: float | None) -> None:
        if deadline is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self.exited)
            except TimeoutError:
                self.kill("cgi_timeout after the response was complete")
                return
        code = await self.exited
        if code and not self.killed:
            error_log.warn(
                f'CGI "{self.label}" (pid {self.pid}) exited with status {code}', self.conn_id
            )
        if self.transport is not None:
            self.transport.close()

    def exit_status(self) -> int | None:
        return self.exited.result() if self.exited.done() else None
