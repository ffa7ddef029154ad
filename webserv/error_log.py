"""The error log: nginx's levels, files shared by path, and one ErrorLog per level of config.

nginx's model (src/core/ngx_log.c): each `error_log FILE LEVEL` line is a sink; several lines
at one level all log, each at its own level (the same file twice gets a line twice); a level
(main, http, server, location) with lines of its own does not inherit the outer ones. A
message logged on a request's behalf goes to its location's sinks (`ex.location.error_log`,
resolved at config load: the process's `error_log` itself when no level set one, so a
location without its own pays nothing); a message without a request goes to main's.

The files are opened by the cycle with the access logs (`Config.log_files`), reopened on USR1
and reload. Each line is one `write` on an O_APPEND descriptor, so the lines of the master and
of every worker never interleave. Never buffers: an operator reading it at 3 a.m. needs it now.
"""

from __future__ import annotations

import os
import time

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

STANDARD = {"stderr": 2, "/dev/stderr": 2, "stdout": 1, "/dev/stdout": 1}
SYSLOG_FD = -2  # a syslog.SyslogTarget sink's (it sends each line as a datagram)
# syslog's severity of each level (RFC 5424: emerg 0 ... debug 7)
SYSLOG_SEVERITY = {name: 7 - rank for name, rank in LEVELS.items()}


class ErrorLogFile:
    """One error-log file (or stderr), shared by every `error_log` line that names its path.

    `level` is kept for a file used alone (`ErrorLog.use(file)`: a failed start's message);
    the lines of a config carry their own levels (ErrorLog.sinks). It answers the LogFile
    calls the cycle makes on `Config.log_files` (open, reopen, flush, close)."""

    __slots__ = ("path", "level", "threshold", "fd")

    def __init__(self, path: str = "stderr", level: str = "notice") -> None:
        self.path = path
        self.level = level
        self.threshold = LEVELS[level]
        self.fd = STANDARD.get(path, -1)

    def open(self) -> None:
        if self.path in STANDARD:
            self.fd = STANDARD[self.path]
            return
        if self.fd >= 0:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def reopen(self) -> None:
        old = self.fd
        self.fd = -1
        self.open()
        if old > 2 and old != self.fd:
            os.close(old)

    def flush(self) -> None:
        """Nothing waits: every line is written when it is logged."""

    def close(self) -> None:
        if self.fd > 2:
            os.close(self.fd)
        self.fd = STANDARD.get(self.path, -1)


class ErrorLog:
    """nginx-style lines, `2026/11/25 08:16:11 [error] 1234#0: *5 message`, written to every
    sink (threshold, ErrorLogFile) whose threshold the level reaches.

    The process's own (`error_log`, main's lines) changes with the cycle (`use`); a
    location's is built at config load and never changes."""

    __slots__ = ("sinks", "threshold")

    def __init__(self, sinks: tuple[tuple[int, ErrorLogFile], ...] | None = None) -> None:
        self.sinks: tuple[tuple[int, ErrorLogFile], ...] = ()
        self.threshold = LEVELS["notice"]
        self._set(sinks if sinks is not None else ((LEVELS["notice"], ErrorLogFile()),))

    def _set(self, sinks: tuple[tuple[int, ErrorLogFile], ...]) -> None:
        self.sinks = sinks
        self.threshold = min((t for t, _ in sinks), default=len(LEVELS))

    def use(self, target: ErrorLogFile | ErrorLog) -> None:
        """Write where TARGET does from now on (at start, after a reload, in a new worker):
        a config's main ErrorLog, or one file at its own level."""
        if isinstance(target, ErrorLog):
            self._set(target.sinks)
        else:
            self._set(((target.threshold, target),))

    @property
    def path(self) -> str:
        return self.sinks[0][1].path if self.sinks else ""

    @property
    def fd(self) -> int:
        return self.sinks[0][1].fd if self.sinks else -1

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, message: str, connection: int | None = None) -> None:
        rank = LEVELS[level]
        if rank < self.threshold:
            return
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        conn = f"*{connection} " if connection is not None else ""
        line = f"{stamp} [{level}] {os.getpid()}#0: {conn}{message}"
        data = (line + "\n").encode("utf-8", "backslashreplace")
        for threshold, file in self.sinks:
            if rank >= threshold:
                if file.fd == SYSLOG_FD:  # `error_log syslog:...`: the line, as nginx sends it
                    file.send(line, SYSLOG_SEVERITY[level])
                    continue
                try:
                    os.write(file.fd, data)
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


# the process's error log (main's lines): stderr until a cycle says otherwise (see ErrorLog)
error_log = ErrorLog()
