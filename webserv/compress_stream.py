"""gzip on the fly as a stream: GzipBody compresses a file's parts (read CHUNK at a time,
never whole) or another stream (CGI output) into an async iterator of gzip bytes, for
compress.py's `apply`. It owns the descriptors of the parts it was handed (given back at
the end, on aclose, or when dropped). Never decides whether an answer is compressed
(compress.py does), never frames chunks or touches a socket (the writer does).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from .http.response import FilePart

CHUNK = 64 * 1024  # bytes of a file read and compressed at a time


class GzipBody:
    """An async iterator of gzip bytes: of a file's FileParts (read CHUNK at a time, never
    whole) or of another stream (CGI output). Between chunks it lets the loop run, so a fast
    reader of a large file cannot keep other clients waiting."""

    __slots__ = ("parts", "source", "zobj", "done", "started")

    def __init__(self, level: int, parts: list[Any] | None = None, source: Any = None) -> None:
        self.parts = parts
        self.source = source
        self.zobj = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.done = False
        self.started = False

    def __aiter__(self) -> GzipBody:
        return self

    async def __anext__(self) -> bytes:
        if self.done:
            raise StopAsyncIteration
        if self.started:
            await asyncio.sleep(0)
        self.started = True
        if self.source is not None:
            try:
                chunk = await self.source.__anext__()
            except StopAsyncIteration:
                return self._end()
            return self.zobj.compress(chunk)
        parts = self.parts
        while parts:
            part = parts[0]
            if type(part) is not FilePart:
                del parts[0]
                return self.zobj.compress(part)
            if part.length == 0:
                self._release(parts.pop(0))
                continue
            return self.zobj.compress(part.read(CHUNK))
        return self._end()

    def _end(self) -> bytes:
        self.done = True
        return self.zobj.flush()

    @staticmethod
    def _release(part: Any) -> None:
        if type(part) is FilePart and part.owner is not None:
            owner, part.owner = part.owner, None
            owner.release()

    async def aclose(self) -> None:
        self.done = True
        for part in self.parts or ():
            self._release(part)
        self.parts = None
        source, self.source = self.source, None
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()

    def __del__(self) -> None:
        # a response dropped before its stream ran (a connection reset at once) still
        # gives its descriptors back
        for part in self.parts or ():
            self._release(part)
