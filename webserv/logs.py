"""Access logs: compiled formats, buffered (and gzipped) writers, paths with variables.

An access log line is rendered by a function compiled from its log_format at config load and
appended to an in-memory buffer; the buffer is written when it fills (`buffer=`, 64k) or
`flush` seconds after its first line, as one gzip member with `gzip`. A path with variables
is not buffered (nginx refuses `buffer=` there): each line is appended to the file its path
names, opened for that line or kept open by `open_log_file_cache` (LogFileCache).
The error log lives in error_log.py (re-exported here).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .error_log import LEVELS, ErrorLog, ErrorLogFile, error_log

__all__ = ["LEVELS", "AccessLog", "ConditionalAccessLog", "ErrorLog", "ErrorLogFile", "LogFile"]
__all__ += ["error_log"]

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
    __slots__ += ("gzip", "explicit")

    def __init__(
        self,
        path: str,
        limit: int,
        flush_after: float,
        gzip: int | None = None,
        explicit: bool = False,
    ) -> None:
        self.path = path
        self.gzip = gzip  # a level 1-9: each flushed buffer is written as one gzip member
        self.explicit = explicit  # buffer=/gzip/flush= given: others naming it must agree
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
        if self.gzip is not None:
            # a whole member per write, as nginx: zcat reads the file at any time
            data = gzip.compress(data, self.gzip, mtime=0)
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


class SyslogAccessLog(AccessLog):
    """`access_log syslog:server=...`: each line is a datagram (syslog.py), sent when the
    request is logged, never buffered (nginx refuses `buffer=` for syslog too)."""

    __slots__ = ("target", "condition")

    def __init__(
        self,
        target: Any,
        render: Callable[[Any], str],
        format_name: str,
        condition: Callable[[Any], str] | None,
    ) -> None:
        self.file = None
        self.render = render
        self.format_name = format_name
        self.late = False
        self.target = target
        self.condition = condition

    def log(self, exchange: Any) -> None:
        if self.condition is not None:
            value = self.condition(exchange)
            if not value or value == "0":
                return
        line = self.render(exchange)
        self.target.send(line[:-1] if line.endswith("\n") else line)


class LogFileCache:
    """`open_log_file_cache max=N inactive=T min_uses=N valid=T`: descriptors of the files
    that paths with variables name, kept open (nginx's ngx_open_file_cache, for logs).

    A name is counted from its first successful open; once used `min_uses` times within
    `inactive` its descriptor stays open (a line to a renamed file still reaches it, as in
    nginx) until `inactive` passes unused, `valid` passes (then it is opened by name again),
    or `max` names are known and it is the least recently used. One per worker, per cycle."""

    __slots__ = ("max", "inactive", "min_uses", "valid", "nodes", "path", "fd")

    def __init__(self, max: int, inactive: float, min_uses: int, valid: float) -> None:
        self.path = "open_log_file_cache"  # (the cycle's Config.log_files calls: no file)
        self.fd = -1
        self.max = max
        self.inactive = inactive
        self.min_uses = min_uses
        self.valid = valid
        # path -> [uses, fd (-1: not kept), opened at, last used]; dict order = LRU first
        self.nodes: dict[str, list[Any]] = {}

    def write(self, path: str, data: bytes) -> None:
        now = time.monotonic()
        node = self.nodes.pop(path, None)
        if node is not None and now - node[3] > self.inactive:
            _close(node[1])
            node = None
        if node is not None and node[1] >= 0 and now - node[2] > self.valid:
            _close(node[1])
            node[1] = -1
        if node is None:
            fd = _open_append(path)
            if fd < 0:
                return
            if len(self.nodes) >= self.max:  # the least recently used name goes
                _close(self.nodes.pop(next(iter(self.nodes)))[1])
            node = [1, -1, now, now]
        else:
            node[0] += 1
            fd = node[1]
            if fd < 0:
                fd = _open_append(path)
                if fd < 0:
                    return
        node[3] = now
        _write_all(fd, data, path)
        if node[1] < 0:
            if node[0] >= self.min_uses:
                node[1], node[2] = fd, now
            else:
                _close(fd)
        self.nodes[path] = node

    def open(self) -> None:
        """Nothing to open before a request names a file."""

    def flush(self) -> None:
        """Every line is written at once."""

    def reopen(self) -> None:
        self.close()  # USR1: the next line opens its file by name again

    def close(self) -> None:
        for node in self.nodes.values():
            _close(node[1])
        self.nodes.clear()


class VariableAccessLog(AccessLog):
    """`access_log /logs/$host.log ...`: a path with variables, rendered per request. The
    line is written at once to the file it names (no buffer; nginx refuses one), through
    the location's LogFileCache when there is one, else opened and closed for the line."""

    __slots__ = ("path", "cache", "condition")

    def __init__(
        self,
        path: Callable[[Any], str],
        render: Callable[[Any], str],
        format_name: str,
        condition: Callable[[Any], str] | None,
        cache: LogFileCache | None,
    ) -> None:
        self.file = None
        self.render = render
        self.format_name = format_name
        self.late = False
        self.path = path
        self.condition = condition
        self.cache = cache

    def log(self, exchange: Any) -> None:
        if self.condition is not None:
            value = self.condition(exchange)
            if not value or value == "0":
                return
        path = self.path(exchange)
        data = self.render(exchange).encode("utf-8", "surrogateescape")
        if self.cache is not None:
            self.cache.write(path, data)
            return
        fd = _open_append(path)
        if fd >= 0:
            _write_all(fd, data, path)
            _close(fd)


def _open_append(path: str) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        error_log.error(f'open() "{path}" failed ({exc.errno}: {exc.strerror})')
        return -1


def _write_all(fd: int, data: bytes, path: str) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError as exc:
        error_log.error(f'write() to "{path}" failed ({exc.errno}: {exc.strerror})')


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
