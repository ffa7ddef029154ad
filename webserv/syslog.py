"""`syslog:` log targets, as nginx's (ngx_syslog.c): `error_log syslog:server=...` and
`access_log syslog:server=...`, one datagram a message.

A target is `syslog:server=ADDRESS[:PORT][,facility=F][,severity=S][,tag=T][,nohostname]`
(ADDRESS an IPv4 address, `[IPv6]`, a host name resolved at load, or `unix:/path`; port 514
by default). A message goes out as RFC 3164 says and nginx writes it:
`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MESSAGE` with PRI = facility × 8 + severity, the local
time, the host name in lower case (none with `nohostname`), TAG `webserv` unless set. An
error log message's severity is its level; an access log line's is `severity=` (info by
default). Each target has its own non-blocking datagram socket, connected so that a
receiver that went away reports ECONNREFUSED: the message is dropped (as nginx drops it),
the socket is made again for the next one. A send never blocks the worker and never raises.

Owns parsing the target and sending; never decides what is logged (logs.py does).
"""

from __future__ import annotations

import re
import socket
import time

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3",
    "local4", "local5", "local6", "local7",
)  # fmt: skip
# syslog's severities by nginx's level names (nginx writes "error" and "warn")
SEVERITIES = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
MAX_MESSAGE = 4096  # bytes of a datagram; a longer message is cut (nginx: about 2 KiB)
_TAG = re.compile(r"[A-Za-z0-9_]{1,32}")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SyslogError(ValueError):
    """A `syslog:` target nginx would refuse, with nginx's words."""


def is_syslog(path: str) -> bool:
    return path.startswith("syslog:")


def parse(spec: str) -> SyslogTarget:
    """A `syslog:...` target; SyslogError with nginx's reason when it is not one."""
    server = None
    facility, severity, tag, hostname = 23, 6, "webserv", True  # local7, info
    for arg in spec[len("syslog:") :].split(","):
        name, eq, value = arg.partition("=")
        if name == "server" and eq:
            if server is not None:
                raise SyslogError('duplicate syslog "server"')
            server = _address(value)
        elif name == "facility" and eq:
            if value not in FACILITIES:
                raise SyslogError(f'unknown syslog facility "{value}"')
            facility = FACILITIES.index(value)
        elif name == "severity" and eq:
            if value not in SEVERITIES:
                raise SyslogError(f'unknown syslog severity "{value}"')
            severity = SEVERITIES.index(value)
        elif name == "tag" and eq:
            if len(value) > 32:
                raise SyslogError("syslog tag length exceeds 32")
            if not _TAG.fullmatch(value):
                raise SyslogError('syslog "tag" only allows alphanumeric characters and underscore')
            tag = value
        elif arg == "nohostname":
            hostname = False
        else:
            raise SyslogError(f'unknown syslog parameter "{arg}"')
    if server is None:
        raise SyslogError("no syslog server specified")
    return SyslogTarget(spec, server, facility, severity, tag, hostname)


def _address(value: str) -> tuple[int, object]:
    """(address family, address) of `server=`: unix:/path, [v6]:port, v4:port, name:port."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path:
            raise SyslogError(f'invalid syslog server "{value}"')
        return socket.AF_UNIX, path
    host, port = value, 514
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise SyslogError(f'invalid syslog server "{value}"')
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise SyslogError(f'invalid syslog server "{value}"')
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, text = value.partition(":")
        if not text.isdigit():
            raise SyslogError(f'invalid port in syslog server "{value}"')
        port = int(text)
    if not host or not 0 < port < 65536:
        raise SyslogError(f'invalid syslog server "{value}"')
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (OSError, UnicodeError) as exc:
        raise SyslogError(f'host not found in syslog server "{value}" ({exc})') from None
    return family, address


SYSLOG_FD = -2  # what a target says its descriptor is: error_log.ErrorLog sends to it


class SyslogTarget:
    """One `syslog:` target: its header's parts and its socket (made on first use). It is
    also an error log sink (path, fd, open/reopen/flush/close as error_log.ErrorLogFile)."""

    __slots__ = ("spec", "family", "address", "facility", "severity", "tag", "host", "sock")
    fd = SYSLOG_FD

    def __init__(
        self, spec: str, server: tuple[int, object], facility: int, severity: int, tag: str,
        hostname: bool,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.family, self.address = server
        self.facility, self.severity, self.tag = facility, severity, tag
        self.host = socket.gethostname().lower() + " " if hostname else ""
        self.sock: socket.socket | None = None

    def header(self, severity: int | None = None, now: float | None = None) -> str:
        pri = self.facility * 8 + (self.severity if severity is None else severity)
        t = time.localtime(now)
        stamp = (
            f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        return f"<{pri}>{stamp} {self.host}{self.tag}: "

    def send(self, message: str, severity: int | None = None) -> bool:
        """One datagram; False when it could not be sent (dropped, the socket made anew)."""
        data = (self.header(severity) + message).encode("utf-8", "replace")[:MAX_MESSAGE]
        try:
            sock = self.sock
            if sock is None:
                sock = self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect(self.address)
            sock.send(data)
            return True
        except OSError:  # refused, no receiver yet, a full buffer: dropped, as nginx does
            self.close()
            return False

    @property
    def path(self) -> str:
        return self.spec

    def open(self) -> None:
        """(a socket is made on the first send, in the process that sends)"""

    def reopen(self) -> None:
        self.close()

    def flush(self) -> None:
        """Nothing waits: a message is sent when it is logged."""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def level_severity(level: str) -> int:
    """The syslog severity of one of webserv's error log levels."""
    return SEVERITIES.index(level) if level in SEVERITIES else 6
