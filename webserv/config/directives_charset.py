"""Directive rows of charset recoding (nginx's ngx_http_charset_module: `source_charset`,
`charset_map`, `override_charset`; `charset` and `charset_types` are directives_headers.py's)
and of the range filter (`max_ranges`), and `build`, which makes a location's Recoder at
load. Only parses and builds; recode.py does the work at request time.
"""

from __future__ import annotations

from typing import Any

from ..recode import CharsetMap, Recoder, recoder
from .directives_headers import _charset
from .errors import ConfigError
from .lexer import Statement
from .table import HSL, HTTP, Settings, _count, _flag, directive, fail, value


def _source_charset(stmt: Statement, args: list[str]) -> str:
    name = _charset(stmt, args)
    return name if name is not None else "off"  # (a charset named "off" for nginx too)


def _hex(text: str) -> int | None:
    try:
        number = int(text, 16)
    except ValueError:
        return None
    if not text.isascii() or not text.isalnum() or number > 255:
        return None
    return number


def _charset_map(stmt: Statement, args: list[str]) -> CharsetMap:
    source, to = args[0].lower(), args[1].lower()
    if source == to:
        raise fail(stmt, f'"charset_map" between the same charsets "{args[0]}" and "{args[1]}"')
    if source == "utf-8":
        # nginx takes it as a single-byte table, then reads it as UTF-8: nonsense either way
        raise fail(stmt, '"charset_map" from "utf-8" is not supported: write it to "utf-8"')
    lines: list[tuple[int, bytes]] = []
    for child in stmt.block or ():
        if child.block is not None:
            raise fail(child, 'unexpected "{"')
        if len(child.args) != 1:
            raise fail(child, "invalid parameters number")
        byte = _hex(child.name)
        if byte is None:
            raise fail(child, f'invalid value "{child.name}"')
        text = child.arg_texts()[0]
        lines.append((byte, _utf8(child, text) if to == "utf-8" else _one_byte(child, text)))
    return CharsetMap(source, to, tuple(lines), stmt.file, stmt.line)


def _one_byte(stmt: Statement, text: str) -> bytes:
    byte = _hex(text)
    if byte is None:
        raise fail(stmt, f'invalid value "{text}"')
    return bytes([byte])


def _utf8(stmt: Statement, text: str) -> bytes:
    """One character (at most U+FFFF, as nginx's table) as its UTF-8 bytes, in hex."""
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    numbers = [_hex(pair) for pair in pairs]
    if len(text) % 2 or not 1 <= len(pairs) <= 3 or None in numbers:
        raise fail(stmt, f'invalid value "{text}"')
    value = bytes(numbers)  # type: ignore[arg-type]
    try:
        char = value.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(stmt, f'invalid value "{text}"') from None
    if len(char) != 1:
        raise fail(stmt, f'invalid value "{text}"')
    return value


directive(
    "source_charset",
    HSL,
    1,
    1,
    _source_charset,
    default=None,
    syntax="source_charset CHARSET;",
    default_text="—",
    doc="The charset static files are written in: with a different `charset`, the body of "
    "an answer of `charset_types` is recoded through a `charset_map` between the two "
    "(config error without one).",
)
directive(
    "charset_map",
    HTTP,
    2,
    2,
    _charset_map,
    block=True,
    multi=True,
    syntax="charset_map FROM TO { HEX HEX; ... }",
    default_text="—",
    doc="A single-byte recoding table (bytes not listed: ASCII as it is, the rest `?`), "
    "used either way; with TO `utf-8` the values are one character's UTF-8 bytes in hex, "
    "and a character the table lacks becomes `&#N;` going from UTF-8.",
)
directive(
    "override_charset",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="override_charset on | off;",
    default_text="off",
    doc="nginx: recode proxied and FastCGI answers that name their own charset. webserv "
    "recodes static files only: accepted, changes nothing.",
)


directive(
    "max_ranges",
    HSL,
    1,
    1,
    _count,
    default=None,
    syntax="max_ranges N;",
    default_text="unlimited",
    doc="A Range with more than N satisfiable ranges gets the whole file (200); 0 turns "
    "ranges off (no Accept-Ranges either).",
)


def build(s: Settings, stmt: Statement) -> Recoder | None:
    """The location's Recoder (None: nothing to recode), checked at load as nginx does."""
    entries: list[tuple[CharsetMap, Any]] = s.get("charset_map", [])
    maps = [cmap for cmap, _ in entries]
    seen: set[frozenset[str]] = set()
    for cmap in maps:
        pair = frozenset((cmap.source, cmap.to))
        if pair in seen:
            message = f'duplicate "charset_map" between "{cmap.source}" and "{cmap.to}"'
            raise ConfigError(cmap.file, cmap.line, message)
        seen.add(pair)
    charset, source = value(s, "charset"), value(s, "source_charset")
    if charset is None or source is None:
        return None
    try:
        return recoder(maps, source, charset, value(s, "charset_types"))
    except ValueError as exc:
        raise fail(stmt, str(exc)) from None
