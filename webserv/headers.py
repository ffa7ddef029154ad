"""`add_header` and `expires` (nginx's ngx_http_headers_filter_module), built once at load.

A location with neither has no filter (`Location.header_filter is None`): the writer then
does nothing more than before. With one, the writer calls `apply` once per response, after
the handler and before the header section is encoded. What a constant configuration adds is
prebuilt bytes, one per class of status; only `$variables`, a time-dependent `expires`, and
the two names that replace a handler's own line (ETag, Last-Modified) do work per request.

nginx's rules, kept here: without `always` a header (and `expires`) is added only to
SAFE_STATUSES; an empty value adds nothing (for ETag and Last-Modified it removes the line);
`expires` replaces any Expires and Cache-Control a handler gave; Cache-Control and the other
names are appended, duplicates included. Never: touch the body, framing or Connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .http.dates import http_date, http_date_now, parse_http_date

# nginx's "safe_status": what add_header without `always`, and expires, apply to
SAFE_STATUSES = frozenset({200, 201, 204, 206, 301, 302, 303, 304, 307, 308})
# header names nginx replaces instead of appending (ngx_http_set_response_header)
REPLACED = {"etag": b"etag:", "last-modified": b"last-modified:"}
# what a variable's value may not bring into a header line
_UNSAFE_CHARS = {0: None, 10: None, 13: None}

EXPIRES_EPOCH = b"Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n"
EXPIRES_MAX = b"Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\nCache-Control: max-age=315360000\r\n"


@dataclass(slots=True, frozen=True)
class AddHeader:
    """One `add_header NAME VALUE [always];`: its value compiled (`render`) or constant."""

    name: str
    value: str
    always: bool
    line: bytes | None  # the whole header line of a constant value; b"" for an empty one
    render: Callable[[Any], str] | None  # for a value with $variables


@dataclass(slots=True, frozen=True)
class Expires:
    """One `expires`: kind "access" (TIME from now), "modified" (from Last-Modified),
    "daily" (`@TIME`: the next such time of day, local time), "epoch" or "max"."""

    kind: str
    seconds: int = 0


class HeaderFilter:
    """What one location adds to its responses; see the module docstring."""

    __slots__ = ("safe", "safe_const", "other", "other_const", "expires", "strip_cc")

    def __init__(self, headers: tuple[AddHeader, ...], expires: Expires | None) -> None:
        self.safe = headers
        self.other = tuple(h for h in headers if h.always)
        self.expires = expires
        # a constant configuration: one bytes object to append, nothing computed per request
        self.safe_const = _constant(self.safe, expires)
        self.other_const = _constant(self.other, None)
        # a handler's own Expires / Cache-Control give way to `expires` (nginx replaces them)
        self.strip_cc = expires is not None

    def apply(self, ex: Any, response: Any) -> None:
        if response.status in SAFE_STATUSES:
            const, headers, expires = self.safe_const, self.safe, self.expires
        else:
            const, headers, expires = self.other_const, self.other, None
        if const is not None:
            if const:
                response.fields += const
            return
        fields = response.fields
        if expires is not None:
            if fields and _has(fields, (b"expires:", b"cache-control:")):
                fields = _without(fields, (b"expires:", b"cache-control:"))
            fields += expires_lines(expires, fields)
        for header in headers:
            line = header.line
            if line is None:
                value = header.render(ex).translate(_UNSAFE_CHARS)
                line = (
                    f"{header.name}: {value}\r\n".encode("utf-8", "surrogateescape")
                    if value
                    else b""
                )
            replaced = REPLACED.get(header.name.lower())
            if replaced is not None and fields and _has(fields, (replaced,)):
                fields = _without(fields, (replaced,))
            fields += line
        response.fields = fields


def _constant(headers: tuple[AddHeader, ...], expires: Expires | None) -> bytes | None:
    """The bytes to append when nothing depends on the request or the time; else None."""
    if expires is not None:  # the time, and a handler's Cache-Control to replace
        return None
    if any(h.line is None or h.name.lower() in REPLACED for h in headers):
        return None
    return b"".join(h.line for h in headers)  # type: ignore[misc]


def _has(fields: bytes, names: tuple[bytes, ...]) -> bool:
    low = fields.lower()
    return any(low.startswith(n) or b"\n" + n in low for n in names)


def _without(fields: bytes, names: tuple[bytes, ...]) -> bytes:
    return b"".join(
        line + b"\r\n"
        for line in fields.split(b"\r\n")
        if line and not line.lower().startswith(names)
    )


def expires_lines(expires: Expires, fields: bytes) -> bytes:
    """Expires and Cache-Control as nginx's ngx_http_set_expires writes them."""
    kind = expires.kind
    if kind == "epoch":
        return EXPIRES_EPOCH
    if kind == "max":
        return EXPIRES_MAX
    seconds = expires.seconds
    now = int(time.time())
    if seconds == 0 and kind != "daily":
        return b"Expires: %s\r\nCache-Control: max-age=0\r\n" % http_date_now().encode()
    if kind == "daily":
        at = _next_time(now, seconds)
        max_age = at - now
    else:
        modified = _last_modified(fields) if kind == "modified" else None
        if modified is None:
            at, max_age = now + seconds, seconds
        else:
            at = modified + seconds
            max_age = at - now
    date = http_date(max(at, 0)).encode()
    if seconds < 0 or max_age < 0:
        return b"Expires: %s\r\nCache-Control: no-cache\r\n" % date
    return b"Expires: %s\r\nCache-Control: max-age=%d\r\n" % (date, max_age)


def _last_modified(fields: bytes) -> int | None:
    low = fields.lower()
    start = 0 if low.startswith(b"last-modified:") else low.find(b"\nlast-modified:") + 1
    if start == 0 and not low.startswith(b"last-modified:"):
        return None
    end = fields.find(b"\r\n", start)
    text = fields[start + len(b"last-modified:") : end if end >= 0 else None]
    when = parse_http_date(text.decode("latin-1").strip())
    return int(when) if when is not None else None


def _next_time(now: int, day_seconds: int) -> int:
    """The next moment at DAY_SECONDS past local midnight, after now (nginx's ngx_next_time)."""
    year, month, day = time.localtime(now)[:3]
    at = int(time.mktime((year, month, day, 0, 0, day_seconds, 0, 0, -1)))
    if at <= now:  # (mktime normalises the day after the month's last)
        at = int(time.mktime((year, month, day + 1, 0, 0, day_seconds, 0, 0, -1)))
    return at
