"""The request side of one exchange: target parsing, path normalisation, the Exchange record.

An Exchange is created per request by the connection and carries everything a handler and a
log line need. It is a plain slotted class: it is made 60k times a second.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from .errors import HttpError

_HEX = frozenset(b"0123456789abcdefABCDEF")
# RFC 3986 §3.2.2 (lower-cased text): reg-name = *( unreserved / pct-encoded / sub-delims ),
# IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ); §3.2.3: port = *DIGIT
_REG_NAME = re.compile(r"(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*")
_IPV_FUTURE = re.compile(r"v[0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+")
_PORT = re.compile(r"(?::[0-9]*)?")


def normalize_path(raw: bytes) -> str:
    """Percent-decode a request path and remove dot segments (RFC 3986 §5.2.4).

    ".." never climbs above "/" (the segment is dropped, as RFC 3986 does), repeated slashes
    are merged (nginx's merge_slashes). The result always starts with "/" and is a str that
    round-trips to the original bytes (UTF-8 with surrogateescape).
    """
    if not raw.startswith(b"/"):
        raise HttpError(400, "request target is not an absolute path")
    if b"%" not in raw and b"/." not in raw and b"//" not in raw and raw.isascii():
        return raw.decode("ascii")
    if b"%" in raw:
        i = raw.find(b"%")
        while i >= 0:
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                raise HttpError(400, "bad percent-encoding in request target")
            i = raw.find(b"%", i + 3)
        raw = unquote_to_bytes(raw)
    return remove_dot_segments(raw, merge=True)


def remove_dot_segments(raw: bytes, merge: bool) -> str:
    """RFC 3986 §5.2.4 on a decoded path that starts with "/"; with MERGE, empty segments
    (repeated slashes) go too, else they stay and a ".." removes an empty one as any other
    (merge_slashes off, http/merge_slashes.py)."""
    segments: list[bytes] = []
    parts = raw.split(b"/")
    for part in parts[1:-1]:
        if part == b"..":
            if segments:
                segments.pop()
        elif (part or not merge) and part != b".":
            segments.append(part)
    last = parts[-1]
    trailing = b""
    if last == b"..":
        if segments:
            segments.pop()
        trailing = b"/"
    elif last == b"." or not last:
        trailing = b"/"
    else:
        segments.append(last)
    path = b"/" + b"/".join(segments)
    if trailing and segments:
        path += trailing
    return path.decode("utf-8", "surrogateescape")


def split_target(target: bytes) -> tuple[bytes, bytes, bytes | None]:
    """(path, query, authority) of an origin-form or absolute-form request target."""
    authority = None
    if not target.startswith(b"/"):
        lower = target[:8].lower()
        if lower.startswith(b"http://") or lower.startswith(b"https://"):
            rest = target[target.index(b"//") + 2 :]
            cut = len(rest)  # the authority ends at the first "/", "?" or "#" (RFC 3986 §3.2)
            for delimiter in (b"/", b"?", b"#"):
                found = rest.find(delimiter, 0, cut)
                if found >= 0:
                    cut = found
            authority, rest = rest[:cut], rest[cut:]
            target = rest if rest.startswith(b"/") else b"/" + rest
        else:
            raise HttpError(400, "invalid request target")
    fragment = target.find(b"#")  # a client should not send one; if it does, it ends both
    if fragment >= 0:  # the path and the query, as in nginx (`/a?x#f`: $args is `x`)
        target = target[:fragment]
    path, _, query = target.partition(b"?")
    return path, query, authority


def origin_form(target: bytes) -> bytes:
    """`http://host/a?b` → `/a?b`: the path and query of a target, as $request_uri and CGI's
    REQUEST_URI give it (nginx's $request_uri too, but for `http://host?b`: `?b`)."""
    if target[:1] == b"/":
        return target
    authority = target.find(b"//") + 2
    start = target.find(b"/", authority)
    if start < 0:
        query = target.find(b"?", authority)
        return b"/" + (target[query:] if query >= 0 else b"")
    return target[start:]


def host_name(host: bytes) -> str:
    """The name a Host field value or a target's authority routes by; 400 if it is invalid.

    Valid is `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name (letters,
    digits, `-._~`, sub-delims, %-escapes), an IPv4 address, or an IP-literal in brackets
    (IPv6 or IPvFuture); the port digits only. Anything else — userinfo (`user@`), a
    second colon, spaces, `/?#[]`, raw non-ASCII — is a 400 (RFC 9112 §3.2: MUST), and so is
    an empty host, with or without a port, and one that is only a dot (RFC 9110 §4.2.1: an
    "http" URI with an empty host is invalid and MUST be rejected; nginx answers 400 too),
    and a name with an empty label (`a..b`: nginx's rule). The name is lower-cased, without
    the port and a trailing dot; an IPv6 literal keeps its brackets. Called once per
    distinct (Host, target): the route memo remembers the result.
    """
    text = host.decode("latin-1").strip(" \t").lower()
    if text.startswith("["):
        end = text.find("]")
        name, port = text[: end + 1], text[end + 1 :]
        valid = end > 0 and _ip_literal(text[1:end])
    else:
        colon = text.find(":")
        name, port = (text, "") if colon < 0 else (text[:colon], text[colon:])
        valid = _REG_NAME.fullmatch(name) is not None and ".." not in name
        if name.endswith("."):
            name = name[:-1]  # one trailing dot: the same name (`example.com.`)
        valid = valid and name != ""
    if not valid or _PORT.fullmatch(port) is None:
        raise HttpError(400, f"invalid host in request: {text!r}", close=True)
    return name


def _ip_literal(text: str) -> bool:
    if text.startswith("v"):
        return _IPV_FUTURE.fullmatch(text) is not None
    if "%" in text:  # a zone identifier: no part of RFC 3986's IP-literal
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


class Exchange:
    """One request and what was answered: the unit of routing, handling and logging."""

    __slots__ = (
        "conn",
        "method",
        "raw_target",
        "path",
        "query",
        "version",
        "minor",
        "headers",
        "host",
        "server",
        "location",
        "status",
        "body_bytes_sent",
        "bytes_sent",
        "start",
        "keep_alive",
        "head",
        "body_received",
        "error",
        "redirects",
        "error_paged",
        "body",
        "queued",
        "expect_continue",
        "cgi",
        "t_headers",
        "t_body",
        "t_response",
        "tcp_sample",
        "tcp_start",
        "tcp_end",
        "header_bytes",
        "t_done",
        "cleanup",
        "sent_head",  # the header section as sent (writer.py; unset until then)
        "set_vars",  # `set` values by lowercased name (rewrite_if.py; unset until one runs)
        "pipelined",
    )

    def __init__(self, conn: Any, start: float) -> None:
        self.conn = conn
        self.start = start
        self.method = ""
        self.raw_target = b""
        self.path = "/"
        self.query = ""
        self.version = "HTTP/1.1"
        self.minor = 1
        self.headers: dict[bytes, bytes] = {}
        self.host = ""
        self.server: Any = None
        self.location: Any = None
        self.status = 0
        self.body_bytes_sent = 0
        self.bytes_sent = 0
        self.keep_alive = True
        self.head = False
        self.body_received = 0
        self.error: HttpError | None = None  # found while parsing; answered in turn
        self.redirects = 0  # internal redirects (error_page, CGI), to stop loops
        self.error_paged = False  # an error_page has answered: never a second one
        self.body: Any = None  # RequestBody, when a handler reads the body as it arrives
        self.queued = False  # started (or queued) before its body had arrived
        self.expect_continue = False  # "100 Continue" is owed when answering starts
        self.cgi: Any = None  # handlers.cgi.Script, when the path names a CGI script
        # lifecycle timestamps (time.time()), taken only when instrumentation is on
        self.t_headers = self.t_body = self.t_response = 0.0
        self.tcp_sample: bytes | None = None  # TCP_INFO read for this request's log line
        # lifecycle_request_tcpinfo: TCP_INFO at its first byte, if sampled (and tcp_end, once
        # answered: set only then, an unset slot is read as None where it is read)
        self.tcp_start: bytes | None = None
        self.header_bytes = 0  # the header lines as received, counted while parsing
        self.t_done = 0.0  # handed to the kernel (taken when counters or records want it)
        # what a phase must undo when the exchange ends, whatever way (limits.LimitState:
        # limit_conn's counts); None unless a phase set it
        self.cleanup: Any = None
        # $pipe: its first bytes came in the same read as the end of the request before
        # (nginx's r->pipeline); reader.py sets it
        self.pipelined = False

    @property
    def target(self) -> str:
        """$request_uri: the target as sent, in origin form (an absolute-form's path)."""
        return origin_form(self.raw_target).decode("latin-1")

    @property
    def request_line(self) -> str:
        if not self.method:
            return ""
        return f"{self.method} {self.raw_target.decode('latin-1')} {self.version}"

    @property
    def request_length(self) -> int:
        """Bytes of the request as nginx counts them: line, header section and body."""
        if not self.method:
            return 0
        line = len(self.method) + len(self.raw_target) + len(self.version) + 4
        return line + self.header_bytes + 2 + self.body_received

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")
