"""Directive rows for what a request may be and how long a connection may take: the body's
size (client_max_body_size), the methods answered (allow_methods), the header buffers
(large_client_header_buffers) and the timeouts (keepalive_timeout, client_header_timeout,
client_body_timeout, send_timeout). Only parses and registers; the connection (connection.py,
lifetime.py, reader.py, writer.py) and dispatch.py enforce them. Never reads a request.
"""

from __future__ import annotations

from .lexer import Statement
from .table import ANY, HS, HSL, _positive_int, _size, _time, directive, fail
from .values import parse_size

# RFC 9110 methods webserv recognises; the ones it can serve are a subset (see IMPLEMENTED).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"}
    | {"MKCOL", "COPY", "MOVE"}  # WebDAV's that nginx answers (dav_methods; else 405)
)
IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})


def _methods(stmt: Statement, args: list[str]) -> frozenset[str]:
    methods = set()
    for word in args:
        method = word.upper()
        if method not in KNOWN_METHODS:
            raise fail(stmt, f'unknown method "{word}" in "allow_methods" directive')
        if method not in IMPLEMENTED_METHODS:
            raise fail(stmt, f'method "{word}" is not implemented by webserv')
        methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")  # as in nginx's limit_except: GET implies HEAD
    return frozenset(methods)


def _keepalive_timeout(stmt: Statement, args: list[str]) -> tuple[float, float | None]:
    timeout = _time(stmt, args[:1])
    header = _time(stmt, args[1:2]) if len(args) > 1 else None
    return (timeout, header)


def _header_buffers(stmt: Statement, args: list[str]) -> tuple[int, int]:
    count = _positive_int(stmt, args[:1])
    size = parse_size(args[1])
    if not size or size < 256:
        raise fail(stmt, f'invalid size "{args[1]}" in "large_client_header_buffers" directive')
    return (count, size)


directive(
    "client_max_body_size",
    HSL,
    1,
    1,
    _size,
    default=1024 * 1024,
    syntax="client_max_body_size SIZE;",
    default_text="1m",
    doc="Largest request body; larger → 413. `0` means no limit.",
)
directive(
    "allow_methods",
    HSL,
    1,
    ANY,
    _methods,
    default=frozenset({"GET", "HEAD"}),
    syntax="allow_methods METHOD ...;",
    default_text="GET HEAD",
    doc="Methods answered here. A known method not listed → 405 with `Allow`; an unknown "
    "one → 501. GET implies HEAD.",
)
directive(
    "keepalive_timeout",
    HSL,
    1,
    2,
    _keepalive_timeout,
    default=(75.0, None),
    syntax="keepalive_timeout TIME [HEADER_TIME];",
    default_text="75s",
    doc="How long an idle keep-alive connection stays open; `0` disables keep-alive. "
    "HEADER_TIME is announced in `Keep-Alive: timeout=`.",
)
directive(
    "client_header_timeout",
    HS,
    1,
    1,
    _time,
    default=60.0,
    syntax="client_header_timeout TIME;",
    default_text="60s",
    doc="Time to receive a whole request header section → 408 and close.",
)
directive(
    "client_body_timeout",
    HSL,
    1,
    1,
    _time,
    default=60.0,
    syntax="client_body_timeout TIME;",
    default_text="60s",
    doc="Time between two reads of a request body → 408 and close.",
)
directive(
    "send_timeout",
    HSL,
    1,
    1,
    _time,
    default=60.0,
    syntax="send_timeout TIME;",
    default_text="60s",
    doc="Time between two successful writes to a client that does "
    "not read; the connection is closed after it.",
)
directive(
    "large_client_header_buffers",
    HS,
    2,
    2,
    _header_buffers,
    default=(4, 8192),
    syntax="large_client_header_buffers NUMBER SIZE;",
    default_text="4 8k",
    doc="A request line longer than SIZE → 414; a header field longer than SIZE or a "
    "header section longer than NUMBER × SIZE → 431.",
)
