"""Directive rows for response headers and caching: add_header, expires, etag,
if_modified_since, keepalive_requests / _disable / _time (nginx's headers filter and core). Only parses and
registers; the headers are built by headers.py.
"""

from __future__ import annotations

import re

from .. import variables
from ..headers import AddHeader, Expires
from .lexer import Statement
from .model import KEEPALIVE_MSIE6, KEEPALIVE_SAFARI
from .table import ANY, HSL, _count, _flag, _time, directive, fail
from .values import parse_time

# --- headers and caching: nginx's ngx_http_headers_filter_module and core's etag, ims ----

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _add_header(stmt: Statement, args: list[str]) -> AddHeader:
    name, text = args[0], args[1]
    if len(args) == 3 and args[2] != "always":
        raise fail(stmt, f'invalid parameter "{args[2]}"')
    if not _HEADER_NAME.fullmatch(name):
        raise fail(stmt, f'invalid header name "{name}" in "{stmt.name}" directive')
    if any(c in text for c in "\r\n\0"):
        raise fail(stmt, f'header "{name}" value contains CR, LF or NUL in "{stmt.name}" directive')
    render = None
    line: bytes | None = b""
    if "$" in text:
        try:
            render = variables.compile_template(text, escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
        line = None
    elif text:
        line = f"{name}: {text}\r\n".encode("utf-8", "surrogateescape")
    return AddHeader(name, text, len(args) == 3, line, render)


def _expires_time(stmt: Statement, text: str) -> int:
    seconds = parse_time(text) if "ms" not in text else None  # whole seconds, as nginx
    if seconds is None or seconds != int(seconds):
        raise fail(stmt, '"expires" directive invalid value')
    return int(seconds)


def _expires(stmt: Statement, args: list[str]) -> Expires | None:
    if len(args) == 2:
        if args[0] != "modified":
            raise fail(stmt, '"expires" directive invalid value')
        kind, text = "modified", args[1]
    else:
        text = args[0]
        if text == "off":
            return None
        if text in ("epoch", "max"):
            return Expires(text)
        kind = "access"
    if "$" in text:
        raise fail(stmt, '"expires" with variables is not supported by webserv')
    if text.startswith("@"):
        if kind == "modified":
            raise fail(
                stmt, '"expires" directive daily time cannot be used with "modified" parameter'
            )
        seconds = _expires_time(stmt, text[1:])
        if seconds > 24 * 60 * 60:
            raise fail(stmt, '"expires" directive daily time value must be less than 24 hours')
        return Expires("daily", seconds)
    sign = -1 if text.startswith("-") else 1
    return Expires(kind, sign * _expires_time(stmt, text[1:] if text[:1] in "+-" else text))


IMS_MODES = ("off", "exact", "before")


def _if_modified_since(stmt: Statement, args: list[str]) -> str:
    if args[0] not in IMS_MODES:
        raise fail(stmt, f'invalid value "{args[0]}" in "if_modified_since" directive')
    return args[0]


directive(
    "add_header",
    HSL,
    2,
    3,
    _add_header,
    multi=True,
    syntax="add_header NAME VALUE [always];",
    default_text="none",
    doc="Add a header field to responses with status 200, 201, 204, 206, 301, 302, 303, "
    "304, 307 or 308; with `always`, to every response (error pages too). VALUE may hold "
    "`$variables`; an empty VALUE adds nothing (for ETag and Last-Modified: removes the "
    "handler's). A level with its own `add_header` inherits none from the outer levels.",
)
directive(
    "add_trailer",
    HSL,
    2,
    3,
    _add_header,
    multi=True,
    syntax="add_trailer NAME VALUE [always];",
    default_text="none",
    doc="A trailer field at the end of a chunked answer (a CGI script's or another streamed "
    "body without a length; nginx sends trailers only on chunked answers), for the statuses "
    "of `add_header` or, with `always`, every one. VALUE may hold `$variables`; an empty "
    "VALUE adds nothing. A level with its own `add_trailer` inherits none from the outer levels.",
)
directive(
    "expires",
    HSL,
    1,
    2,
    _expires,
    syntax="expires [modified] TIME | @TIME | epoch | max | off;",
    default_text="off",
    doc="`Expires` and `Cache-Control` on the statuses of `add_header` without `always`: "
    "TIME from now (or from the file's Last-Modified with `modified`), `@TIME` the next such "
    "time of day; `Cache-Control: max-age=N`, or `no-cache` when negative. `epoch`: "
    "1 Jan 1970 and `no-cache`; `max`: 31 Dec 2037 and 10 years.",
)
directive(
    "etag",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="etag on | off;",
    default_text="on",
    doc="Send an `ETag` with static files (and compare it for If-None-Match, If-Match, "
    "If-Range); off: no ETag, so only `*` and Last-Modified validate.",
)
directive(
    "if_modified_since",
    HSL,
    1,
    1,
    _if_modified_since,
    default="exact",
    syntax="if_modified_since off | exact | before;",
    default_text="exact",
    doc="How a static file answers `If-Modified-Since` with 304: `exact` when the date is "
    "the file's Last-Modified, `before` when the file is not newer than it, `off` never.",
)
directive(
    "keepalive_requests",
    HSL,
    1,
    1,
    _count,
    default=1000,
    syntax="keepalive_requests N;",
    default_text="1000",
    doc="The Nth request of a connection is answered with `Connection: close`, and the "
    "connection closed after it.",
)


# --- the redirect-building trio (nginx's core: absolute_redirect and its two friends) ---

directive(
    "absolute_redirect",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="absolute_redirect on | off;",
    default_text="off",
    doc="`on`: a `Location` webserv builds from a path (a directory's slash redirect, "
    "`return 301 /x`, `rewrite ... redirect`, `error_page ... =301 /x`, a 201's new file) is "
    "made absolute, `scheme://host[:port]/x`, as nginx's default; `off` (webserv's default) "
    "sends the path itself, a relative reference every client follows (RFC 9110 §10.2.2).",
)
directive(
    "server_name_in_redirect",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="server_name_in_redirect on | off;",
    default_text="off",
    doc="With `absolute_redirect on`: the host is the server's first `server_name` (`on`) "
    "or the request's own Host (`off`, validated like every Host; without one, the local "
    "address), as nginx.",
)
directive(
    "port_in_redirect",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="port_in_redirect on | off;",
    default_text="on",
    doc="With `absolute_redirect on`: the local port follows the host unless it is the "
    "scheme's own (80, 443); `off`: never.",
)


def _keepalive_disable(stmt: Statement, args: list[str]) -> int:
    """The browsers as bits (KEEPALIVE_MSIE6, KEEPALIVE_SAFARI): one test a request."""
    bits = 0
    for word in args:
        if word == "msie6":
            bits |= KEEPALIVE_MSIE6
        elif word == "safari":
            bits |= KEEPALIVE_SAFARI
        elif word != "none":
            raise fail(stmt, f'invalid value "{word}" in "keepalive_disable" directive')
    return bits


directive(
    "keepalive_disable",
    HSL,
    1,
    2,
    _keepalive_disable,
    default=KEEPALIVE_MSIE6,
    syntax="keepalive_disable none | BROWSER ...;",
    default_text="msie6",
    doc="Keep-alive off for old browsers, by User-Agent as nginx recognises them: `msie6` "
    "(MSIE 4 and 5, and 6 without SV1; only for POST requests, as nginx), `safari` "
    "(Safari/ on Mac OS X, not Chrome, Gecko, Opera or Konqueror); `none`.",
)
directive(
    "keepalive_time",
    HSL,
    1,
    1,
    _time,
    default=3600.0,
    syntax="keepalive_time TIME;",
    default_text="1h",
    doc="A request that starts more than TIME after its connection was accepted is answered "
    "with `Connection: close`, and the connection closed after it.",
)


# --- charset (nginx's ngx_http_charset_module; recoding: directives_charset.py) --------

CHARSET_TYPES = (
    "text/html",
    "text/xml",
    "text/plain",
    "text/vnd.wap.wml",
    "application/javascript",
    "application/rss+xml",
)


def _charset(stmt: Statement, args: list[str]) -> str | None:
    name = args[0]
    if name == "off":
        return None
    if not _CHARSET_NAME.fullmatch(name):
        raise fail(stmt, f'invalid charset name "{name}"')
    return name


_CHARSET_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _charset_types(stmt: Statement, args: list[str]) -> frozenset[str]:
    return frozenset(arg.lower() for arg in args) | {"text/html"}  # (always, as nginx)


def with_charset(content_type: str, charset: str | None, types: frozenset[str]) -> str:
    """CONTENT_TYPE as sent under `charset`: `; charset=NAME` for one of charset_types
    (nginx's rule; `*` is every type), unchanged otherwise or when it names one already."""
    if charset is None or "charset=" in content_type:
        return content_type
    if "*" not in types and content_type.split(";", 1)[0].strip().lower() not in types:
        return content_type
    return f"{content_type}; charset={charset}"


directive(
    "charset",
    HSL,
    1,
    1,
    _charset,
    default=None,
    syntax="charset CHARSET | off;",
    default_text="off",
    doc="Add `; charset=CHARSET` to the Content-Type of answers of `charset_types` (static "
    "files, `return` texts, error pages). With a different `source_charset`, static files "
    "are recoded (directives_charset.py).",
)
directive(
    "charset_types",
    HSL,
    1,
    ANY,
    _charset_types,
    default=frozenset(CHARSET_TYPES),
    syntax="charset_types MIME-TYPE ...;",
    default_text="text/html text/xml text/plain text/vnd.wap.wml application/javascript "
    "application/rss+xml",
    doc="The types `charset` applies to (`*`: all); text/html always is (nginx's rule).",
)
