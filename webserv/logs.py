"""Access log (compiled formats, buffered writers) and the error log with levels.

An access log line is rendered by a function compiled from its log_format at config load and
appended to an in-memory buffer; the buffer is written when it fills or `flush` seconds after
its first line. The error log writes at once: an operator reading it at 3 a.m. needs it now.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

LEVELS = {
    "debug": 0,
    "info": 1,
    "notice": 2,
    "warn": 3,
    "error": 4,
    "crit": 5,
    "alert": 6,
    "emerg": 7,
}

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)


LINE_ESTIMATE = 160  # bytes a deferred line is counted as until it is rendered
# deferred lines are rendered this many at a time (the write still waits for the buffer to
# fill): rendering the ~400 lines of a 64k buffer at once was a 0.5 ms stall, seen in p99
RENDER_BATCH = 64


class LogFile:
    """One access-log file, shared by every format and location that names its path."""

    __slots__ = ("path", "fd", "buffer", "size", "limit", "flush_after", "timer", "rendered")

    def __init__(self, path: str, limit: int, flush_after: float) -> None:
        self.path = path
        self.fd = -1
        self.buffer: list[Any] = []  # lines, or (render, exchange) deferred
        self.size = 0
        self.limit = limit
        self.flush_after = flush_after
        self.timer: asyncio.TimerHandle | None = None
        self.rendered = 0  # buffer[:rendered] are rendered lines (str)

    def open(self) -> None:
        if self.fd >= 0:
            return
        if self.path in ("stderr", "/dev/stderr"):
            self.fd = 2
            return
        if self.path in ("stdout", "/dev/stdout"):
            self.fd = 1
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, line: str) -> None:
        self.buffer.append(line)
        self.size += len(line)
        self._arm()

    def defer(self, render: Callable[[Any], str], exchange: Any) -> None:
        """A line rendered at the next flush, with the others: in one loop, rendering costs
        about a third of what it costs between two requests (measured), and the order of
        lines in the file stays the order of calls."""
        self.buffer.append((render, exchange))
        self.size += LINE_ESTIMATE
        self._arm()

    def _arm(self) -> None:
        if self.size >= self.limit:
            self.flush()
        elif self.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self.timer = loop.call_later(self.flush_after, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.buffer or self.fd < 0:
            return
        self.render()
        data = "".join(self.buffer).encode("utf-8", "surrogateescape")
        self.buffer.clear()
        self.rendered = 0
        self.size = 0
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError as exc:
            print(f"webserv: cannot write access log {self.path}: {exc.strerror}", file=sys.stderr)

    def render(self) -> None:
        """Render the deferred lines not rendered yet, in place, in their order."""
        buffer = self.buffer
        for i in range(self.rendered, len(buffer)):
            item = buffer[i]
            if type(item) is not str:
                buffer[i] = item[0](item[1])
        self.rendered = len(buffer)

    def reopen(self) -> None:
        self.flush()
        if self.fd > 2:
            os.close(self.fd)
        self.fd = -1
        self.open()

    def close(self) -> None:
        self.flush()
        if self.fd > 2:
            os.close(self.fd)
        self.fd = -1


class AccessLog:
    """A (file, compiled format) pair: what one `access_log` directive means."""

    __slots__ = ("file", "render", "format_name", "late")

    def __init__(self, file: LogFile, render: Callable[[Any], str], format_name: str) -> None:
        self.file = file
        self.render = render
        self.format_name = format_name
        self.late = getattr(render, "late_safe", False)  # may render at the next flush

    def log(self, exchange: Any) -> None:
        """LogFile.defer or LogFile.write, inlined: this runs for every request."""
        file = self.file
        if self.late:
            file.buffer.append((self.render, exchange))
            file.size += LINE_ESTIMATE
            if len(file.buffer) - file.rendered >= RENDER_BATCH:
                file.render()
        else:
            line = self.render(exchange)
            file.buffer.append(line)
            file.size += len(line)
        if file.size >= file.limit or file.timer is None:
            file._arm()


class ConditionalAccessLog(AccessLog):
    """`access_log ... if=CONDITION`: no line for a request whose CONDITION is empty or
    "0" (nginx's rule). A subclass, so that a log without one pays nothing for it."""

    __slots__ = ("condition",)

    def __init__(
        self,
        file: LogFile,
        render: Callable[[Any], str],
        format_name: str,
        condition: Callable[[Any], str],
    ) -> None:
        super().__init__(file, render, format_name)
        self.condition = condition

    def log(self, exchange: Any) -> None:
        value = self.condition(exchange)
        if value and value != "0":
            AccessLog.log(self, exchange)


class ErrorLogFile:
    """Where one generation's error log goes: a file (or stderr) and the lowest level written.

    The cycle opens it (so a reload to an unwritable path fails, and the old one goes on)."""

    __slots__ = ("path", "level", "threshold", "fd")

    def __init__(self, path: str = "stderr", level: str = "notice") -> None:
        self.path = path
        self.level = level
        self.threshold = LEVELS[level]
        self.fd = 2

    def open(self) -> None:
        if self.path in ("stderr", "/dev/stderr"):
            self.fd = 2
        elif self.path in ("stdout", "/dev/stdout"):
            self.fd = 1
        else:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def reopen(self) -> None:
        old = self.fd
        self.open()
        if old > 2 and old != self.fd:
            os.close(old)

    def close(self) -> None:
        if self.fd > 2:
            os.close(self.fd)
        self.fd = 2


class ErrorLog:
    """nginx-style lines: `2026/11/25 08:16:11 [error] 1234#0: *5 message`.

    The process writes every error-log line through this one object (`error_log`), as nginx
    writes through `ngx_cycle->log`; which file and level it writes to belong to the current
    cycle (`use`). Each line is one `write` on an O_APPEND descriptor, so the lines of the
    master and of every worker never interleave.
    """

    def __init__(self) -> None:
        self.path = "stderr"
        self.threshold = LEVELS["notice"]
        self.fd = 2
        self.pid = os.getpid()

    def use(self, target: ErrorLogFile) -> None:
        """Write to TARGET from now on (at start, after a reload, in a new worker)."""
        self.path, self.threshold, self.fd = target.path, target.threshold, target.fd
        self.pid = os.getpid()

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, message: str, connection: int | None = None) -> None:
        if LEVELS[level] < self.threshold:
            return
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        conn = f"*{connection} " if connection is not None else ""
        line = f"{stamp} [{level}] {self.pid}#0: {conn}{message}\n"
        try:
            os.write(self.fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    def debug(self, message: str, connection: int | None = None) -> None:
        self.log("debug", message, connection)

    def info(self, message: str, connection: int | None = None) -> None:
        self.log("info", message, connection)

    def notice(self, message: str, connection: int | None = None) -> None:
        self.log("notice", message, connection)

    def warn(self, message: str, connection: int | None = None) -> None:
        self.log("warn", message, connection)

    def error(self, message: str, connection: int | None = None) -> None:
        self.log("error", message, connection)


# the process's error log: stderr until a cycle says otherwise (see ErrorLog)
error_log = ErrorLog()
