"""Directive rows for compression: gzip and its settings (nginx's ngx_http_gzip_module),
gzip_static (ngx_http_gzip_static_module), brotli_static (Google's ngx_brotli). Only parses,
registers and builds one location's compress.Compress (`build`, called by load.py); the
negotiation and the compressing are compress.py's.
"""

from __future__ import annotations

import re
from typing import Any

from ..compress import Compress
from .lexer import Statement
from .table import ANY, DIRECTIVES, HSL, _flag, directive, fail
from .values import parse_size

STATIC_MODES = ("on", "off", "always")
PROXIED = frozenset(
    {"off", "expired", "no-cache", "no-store", "private", "no_last_modified", "no_etag"}
    | {"auth", "any"}
)


def _static_mode(stmt: Statement, args: list[str]) -> str:
    if args[0] not in STATIC_MODES:
        raise fail(stmt, f'invalid value "{args[0]}"')  # nginx's enum slot says only this
    return args[0]


def _types(stmt: Statement, args: list[str]) -> frozenset[str]:
    return frozenset(a.lower() for a in args)


def _size(stmt: Statement, args: list[str]) -> int:
    value = parse_size(args[0])
    if value is None:
        raise fail(stmt, f'"{stmt.name}" directive invalid value')
    return value


def _level(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit():
        raise fail(stmt, '"gzip_comp_level" directive invalid number')
    level = int(args[0])
    if not 1 <= level <= 9:
        raise fail(stmt, "value must be between 1 and 9")
    return level


def _http_version(stmt: Statement, args: list[str]) -> int:
    if args[0] not in ("1.0", "1.1"):
        raise fail(stmt, f'invalid value "{args[0]}"')
    return int(args[0][2])  # the minor version a request needs at least


def _proxied(stmt: Statement, args: list[str]) -> frozenset[str]:
    for word in args:
        if word not in PROXIED:
            raise fail(stmt, f'invalid value "{word}"')
    return frozenset(args) - {"off"}  # (nginx takes "off any" as any)


def _disable(stmt: Statement, args: list[str]) -> tuple[bool, tuple[re.Pattern[str], ...]]:
    msie6 = False
    patterns = []
    for text in args:
        if text == "msie6":
            msie6 = True
            continue
        try:
            patterns.append(re.compile(text, re.IGNORECASE))  # nginx: caseless PCRE
        except re.error as exc:
            raise fail(stmt, f'regex compile failed: {exc} in "{text}"') from None
    return msie6, tuple(patterns)


def _buffers(stmt: Statement, args: list[str]) -> tuple[int, int]:
    size = parse_size(args[1])
    if not args[0].isdigit() or int(args[0]) < 1 or not size:
        raise fail(stmt, '"gzip_buffers" directive invalid value')
    return int(args[0]), size


directive(
    "gzip",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="gzip on | off;",
    default_text="off",
    doc="Compress answers on the fly with gzip (zlib) when the client accepts it: 200, 403 "
    "and 404 answers of a `gzip_types` type of at least `gzip_min_length` bytes, never one "
    "that has a Content-Encoding, never a range (a Range is ignored: the whole file, "
    "compressed, with 200). Static files, listings, error pages and CGI output alike; "
    "`Content-Length` gives way to chunked framing (HTTP/1.0: the connection closes), the "
    "ETag becomes weak.",
)
directive(
    "gzip_types",
    HSL,
    1,
    ANY,
    _types,
    default=frozenset({"text/html"}),
    syntax="gzip_types MIME-TYPE ... | *;",
    default_text="text/html",
    doc="The types `gzip` compresses besides `text/html` (always included); `*`: any type.",
)
directive(
    "gzip_min_length",
    HSL,
    1,
    1,
    _size,
    default=20,
    syntax="gzip_min_length SIZE;",
    default_text="20",
    doc="An answer whose length is known and shorter than SIZE is sent as it is.",
)
directive(
    "gzip_comp_level",
    HSL,
    1,
    1,
    _level,
    default=1,
    syntax="gzip_comp_level 1..9;",
    default_text="1",
    doc="zlib's compression level for `gzip` (1 fastest, 9 smallest).",
)
directive(
    "gzip_vary",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="gzip_vary on | off;",
    default_text="off",
    doc="Add `Vary: Accept-Encoding` to answers `gzip` could compress (also when this client "
    "gets them plain), and with `gzip_static on` / `brotli_static on` to a file that has a "
    "precompressed variant, whichever is served.",
)
directive(
    "gzip_proxied",
    HSL,
    1,
    ANY,
    _proxied,
    default=frozenset(),
    syntax="gzip_proxied off | expired | no-cache | no-store | private | no_last_modified "
    "| no_etag | auth | any ...;",
    default_text="off",
    doc="For a request with a `Via` header (it came through a proxy): compress only when "
    "one of these holds (`any`: always; `expired`: the answer has Expires; `no-cache`, "
    "`no-store`, `private`: in its Cache-Control; `no_last_modified`, `no_etag`: it has "
    "none; `auth`: the request has Authorization). off: never.",
)
directive(
    "gzip_http_version",
    HSL,
    1,
    1,
    _http_version,
    default=1,
    syntax="gzip_http_version 1.0 | 1.1;",
    default_text="1.1",
    doc="The lowest HTTP version of a request that gets gzip (on the fly and gzip_static).",
)
directive(
    "gzip_disable",
    HSL,
    1,
    ANY,
    _disable,
    default=None,  # (nothing to parse: "none" would be a pattern)
    syntax="gzip_disable REGEX ...;",
    default_text="none",
    doc="No gzip for a User-Agent matching any REGEX (case-insensitive); `msie6` stands for "
    "MSIE 4 to 6 without SV1, as in nginx.",
)
directive(
    "gzip_buffers",
    HSL,
    2,
    2,
    _buffers,
    default=None,
    syntax="gzip_buffers NUMBER SIZE;",
    default_text="32 4k | 16 8k",
    doc="Accepted for nginx configs and ignored: webserv compresses 64 KiB at a time.",
)
directive(
    "gzip_static",
    HSL,
    1,
    1,
    _static_mode,
    default="off",
    syntax="gzip_static on | off | always;",
    default_text="off",
    doc="Serve FILE.gz (beside FILE, under the same root and its checks) with "
    "`Content-Encoding: gzip` when the client accepts gzip, with the .gz's own length, "
    "ETag, Last-Modified and ranges; `always`: whatever the client says.",
)
directive(
    "brotli_static",
    HSL,
    1,
    1,
    _static_mode,
    default="off",
    syntax="brotli_static on | off | always;",
    default_text="off",
    doc="As `gzip_static`, for FILE.br and `Content-Encoding: br` (Google's ngx_brotli); "
    "preferred over FILE.gz when the client accepts both equally.",
)


def _setting(s: dict[str, Any], name: str) -> Any:
    return s[name] if name in s else DIRECTIVES[name].default


def build(s: dict[str, Any]) -> Compress | None:
    """A location's Compress, or None when it neither compresses nor serves variants."""
    gzip = _setting(s, "gzip")
    gzip_static = _setting(s, "gzip_static")
    brotli_static = _setting(s, "brotli_static")
    if not gzip and gzip_static == "off" and brotli_static == "off":
        return None
    msie6, disable = _setting(s, "gzip_disable") or (False, ())
    return Compress(
        gzip=gzip,
        gzip_static=gzip_static,
        brotli_static=brotli_static,
        vary=_setting(s, "gzip_vary"),
        types=_setting(s, "gzip_types"),
        min_length=_setting(s, "gzip_min_length"),
        level=_setting(s, "gzip_comp_level"),
        http_minor=_setting(s, "gzip_http_version"),
        proxied=_setting(s, "gzip_proxied"),
        disable=disable,
        msie6=msie6,
    )
