"""Value grammars shared by directives: sizes, times, flags, listen addresses."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BLANK_AFTER_UNIT = re.compile(r"(?<=[a-zA-Z])[ \t]+")
_TIME_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")
_TIME_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "M": 2592000.0,
    "y": 31536000.0,
}


def parse_size(text: str) -> int | None:
    m = _SIZE.match(text)
    if not m:
        return None
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def parse_time(text: str) -> float | None:
    """nginx times: "30", "30s", "500ms", "1m30s", "1h 30m"; a bare number is seconds.

    As in nginx, units go from the largest down, each at most once: "1s1h" is a mistake.
    """
    text = _BLANK_AFTER_UNIT.sub("", text)  # "1h 30m"; a blank elsewhere stays invalid
    if not text:
        return None
    pos, total, last_scale = 0, 0.0, float("inf")
    while pos < len(text):
        m = _TIME_PART.match(text, pos)
        if not m or m.end() == pos:
            return None
        scale = _TIME_UNITS[m.group(2)]
        if m.group(2) is not None:
            if scale >= last_scale:
                return None
            last_scale = scale
        total += int(m.group(1)) * scale
        pos = m.end()
    return total


# PCRE's named group "(?<name>...)", the form nginx's docs use; Python spells it "(?P<name>...)"
_PCRE_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_])")


def compile_regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A `location ~` or `server_name ~` regex; raises re.error."""
    return re.compile(_PCRE_NAMED_GROUP.sub("(?P<", pattern), flags)


TLS_PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(slots=True, frozen=True)
class PathAt:
    """A file a directive names, with where it was named (for errors found when it is read)."""

    path: str
    file: str
    line: int


def parse_flag(text: str) -> bool | None:
    return {"on": True, "off": False}.get(text)


@dataclass(slots=True, frozen=True)
class ListenAddress:
    host: str  # "" for every address of the family ("*" / "[::]")
    port: int
    ipv6: bool
    default_server: bool = False
    reuseport: bool = False  # one socket per worker in an SO_REUSEPORT group
    deferred: bool = False  # accepted once the first data arrives (TCP_DEFER_ACCEPT)
    ssl: bool = False  # connections speak TLS (`listen ... ssl`)
    proxy_protocol: bool = False  # a PROXY protocol header comes first (proxy_connection.py)

    @property
    def key(self) -> tuple[str, int]:
        return (self.host, self.port)

    def display(self) -> str:
        host = self.host or ("[::]" if self.ipv6 else "*")
        if self.ipv6 and self.host:
            host = f"[{self.host}]"
        return f"{host}:{self.port}"


def parse_listen_address(text: str) -> tuple[str, int, bool, int] | str:
    """Return (host, port, ipv6, last port) or an error message. Forms: PORT, HOST,
    HOST:PORT, [V6]:PORT, and a range of ports FIRST-LAST in place of PORT (nginx's); the
    last port is the port itself without a range."""
    host, port_text = "", ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return "invalid IPv6 address"
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return "invalid address"
        port_text = rest[1:] if rest else "80"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f'invalid IPv6 address "{host}"'
        if host == "::":
            host = ""
        ipv6 = True
    elif text.isdigit():
        port_text = text
        ipv6 = False
    else:
        host, _, port_text = text.partition(":")
        port_text = port_text or "80"
        if host in ("*", "0.0.0.0"):  # one address: "listen 80" and "0.0.0.0:80" are duplicates
            host = ""
        ipv6 = False
        if not host and text.startswith(":"):
            return "no host"
    first, dash, last = port_text.partition("-")
    for part in (first, last) if dash else (first,):
        if not part.isdigit() or not 0 < int(part) < 65536:
            return f'invalid port in "{text}"'
    if dash and int(last) < int(first):
        return f'invalid port range in "{text}"'
    return host, int(first), ipv6, int(last) if dash else int(first)
