"""Recoding static files between charsets: nginx's ngx_http_charset_module tables.

`charset_map FROM TO { HEX HEX; ... }` is a CharsetMap (directives_charset.py parses it); a
location whose `charset` and `source_charset` differ gets one Recoder, built at config load
(`recoder`), with the table of its direction ready for the C codecs: `bytes.translate` for
two single-byte charsets (either way through one map), `codecs.charmap_decode` to UTF-8,
`codecs.charmap_encode` from UTF-8 (a character the map lacks becomes `&#N;`, nginx's
choice). A location without recoding has `Location.recode is None` and never reaches here.

nginx's rules kept: the body of an answer of `charset_types` is recoded; a single-byte
recoding keeps the length, so validators, ranges and Content-Length stay; one to or from
UTF-8 changes it, so such an answer has no ranges, no Accept-Ranges and no Content-Length
(chunked), but webserv gives one when it recodes the file in memory (up to IN_MEMORY).
Never: recode a body it did not read from a file, or block the loop on a large file.
"""

from __future__ import annotations

import asyncio
import codecs
import os
from dataclasses import dataclass
from typing import Any

from .http.errors import HttpError
from .http.response import FilePart, Response

IN_MEMORY = 256 * 1024  # a file (or ranges) up to this is read and recoded at once
CHUNK = 64 * 1024  # larger ones are read and recoded this much at a time
_ACCEPT_RANGES = b"Accept-Ranges: bytes\r\n"


def _question(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return "?", exc.end  # an invalid UTF-8 byte


codecs.register_error("webserv.question", _question)


@dataclass(slots=True, frozen=True)
class CharsetMap:
    """One `charset_map`: charset names lower-cased, (byte, value) lines in config order;
    a value is one byte, or the UTF-8 bytes of one character when `to` is utf-8."""

    source: str
    to: str
    lines: tuple[tuple[int, bytes], ...]
    file: str
    line: int


def recoder(
    maps: list[CharsetMap], source: str, charset: str, types: frozenset[str]
) -> Recoder | None:
    """The Recoder from SOURCE to CHARSET, None when it needs none (no charset, the same
    one), or a ValueError naming the missing map (the caller adds file:line)."""
    low_source, low_charset = source.lower(), charset.lower()
    if low_source == low_charset:
        return None
    for cmap in maps:
        if (cmap.source, cmap.to) == (low_source, low_charset):
            return Recoder(_table(cmap, forward=True), cmap.to == "utf-8", False, types)
        if (cmap.source, cmap.to) == (low_charset, low_source):
            return Recoder(_table(cmap, forward=False), False, cmap.to == "utf-8", types)
    raise ValueError(f'no "charset_map" between the charsets "{source}" and "{charset}"')


def _table(cmap: CharsetMap, forward: bool) -> Any:
    """What the codec of the direction needs (nginx's src2dst / dst2src, ASCII unchanged and
    the rest "?" where the map says nothing)."""
    if cmap.to == "utf-8":
        if forward:  # a 256-character decoding table
            chars = [chr(i) if i < 128 else "?" for i in range(256)]
            for byte, value in cmap.lines:
                chars[byte] = value.decode("utf-8")
            return "".join(chars)
        encode = {i: i for i in range(128)}  # code point -> byte
        for byte, value in cmap.lines:
            encode[ord(value.decode("utf-8"))] = byte
        by_byte = {byte: point for point, byte in encode.items()}
        if len(by_byte) < len(encode):  # two characters to one byte: only a dict says it
            return encode
        # one character a byte: the C EncodingMap, ten times the dict's speed
        return codecs.charmap_build("".join(chr(by_byte.get(b, 0xFFFE)) for b in range(256)))
    table = bytearray(i if i < 128 else 0x3F for i in range(256))
    for byte, value in cmap.lines:
        if forward:
            table[byte] = value[0]
        else:
            table[value[0]] = byte
    return bytes(table)


class Recoder:
    """One location's recoding: the table, its direction and the types it applies to."""

    __slots__ = ("table", "to_utf8", "from_utf8", "same_length", "types", "any_type")

    def __init__(self, table: Any, to_utf8: bool, from_utf8: bool, types: frozenset[str]):
        self.table = table
        self.to_utf8 = to_utf8
        self.from_utf8 = from_utf8
        self.same_length = not (to_utf8 or from_utf8)
        self.types = types
        self.any_type = "*" in types

    def takes(self, fields: bytes) -> bool:
        """Whether a static file answer with FIELDS (Content-Type first) is recoded."""
        if self.any_type:
            return True
        end = fields.find(b"\r\n")
        ctype = fields[14:end].split(b";", 1)[0].strip().lower()  # after "Content-Type: "
        return ctype.decode("latin-1") in self.types

    def recode(self, data: bytes, decoder: Any = None, final: bool = True) -> bytes:
        if self.same_length:
            return data.translate(self.table)
        if self.to_utf8:
            return codecs.charmap_decode(data, "strict", self.table)[0].encode("utf-8")
        text = (
            decoder.decode(data, final)
            if decoder is not None
            else data.decode("utf-8", "webserv.question")
        )
        return codecs.charmap_encode(text, "xmlcharrefreplace", self.table)[0]

    def apply(self, ex: Any, response: Response) -> Response:
        """RESPONSE (a 200 or 206 of a file) with its body recoded."""
        if response.status not in (200, 206):
            return response
        if not self.same_length:  # no ranges of a body whose length changes (always a 200)
            response.fields = response.fields.replace(_ACCEPT_RANGES, b"")
        parts = response.parts
        whole = (
            parts is None
            or (response.length or 0) <= IN_MEMORY
            or ex.location.limit_rate is not None
        )
        if ex.head and (self.same_length or not whole):
            if not self.same_length:  # a streamed GET would not say its length either
                _release(parts)
                response.parts, response.body, response.length = None, b"", None
            return response
        # (a HEAD of a file recoded whole is recoded too: its Content-Length is the GET's)
        if parts is None:  # the file's bytes from the open file cache
            response.body = self.recode(response.body)
            response.length = len(response.body)
            return response
        if whole:
            try:
                data = b"".join(
                    part if type(part) is bytes else self.recode(_read(part)) for part in parts
                )
            finally:
                _release(parts)
            response.parts, response.body, response.length = None, data, len(data)
            return response
        response.parts = None
        response.stream = RecodeBody(self, parts)
        if not self.same_length:
            response.length = None  # chunked (HTTP/1.0: ends with the connection)
        return response


def _read(part: FilePart) -> bytes:
    data = os.pread(part.fd, part.length, part.offset)
    if len(data) < part.length:
        raise HttpError(500, f'"{getattr(part.owner, "path", "?")}" was truncated')
    return data


def _release(parts: list[Any] | None) -> None:
    for part in parts or ():
        if type(part) is FilePart and part.owner is not None:
            owner, part.owner = part.owner, None
            owner.release()


class RecodeBody:
    """An async iterator of the recoded bytes of PARTS (multipart heads pass unchanged),
    CHUNK at a time; between chunks it lets the loop run."""

    __slots__ = ("recoder", "parts", "decoder", "started")

    def __init__(self, recoder: Recoder, parts: list[Any]) -> None:
        self.recoder = recoder
        self.parts = parts
        self.decoder = (
            codecs.getincrementaldecoder("utf-8")("webserv.question") if recoder.from_utf8 else None
        )
        self.started = False

    def __aiter__(self) -> RecodeBody:
        return self

    async def __anext__(self) -> bytes:
        if self.started:
            await asyncio.sleep(0)
        self.started = True
        parts = self.parts
        while parts:
            part = parts[0]
            if type(part) is bytes:
                del parts[0]
                return part
            if part.length == 0:
                _release([parts.pop(0)])
                continue
            data = part.read(CHUNK)
            return self.recoder.recode(data, self.decoder, final=part.length == 0)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        _release(self.parts)
        self.parts = []

    def __del__(self) -> None:
        # a response dropped before its stream ran still gives its descriptors back
        _release(self.parts)
