"""A request body on its way from the socket to a handler, with flow control both ways.

The connection feeds it (already un-chunked by the parser) and a handler drains it with
`async for chunk in body`. When more than HIGH_WATER bytes wait because the handler (or the
disk under it) is slower than the client, reading from the socket pauses; it resumes once
the handler has taken the backlog. A failure on the connection side (413 midway, timeout,
client gone) reaches the handler as the exception its `async for` raises, so it can remove
what it had half-written.
"""

from __future__ import annotations

import asyncio
from typing import Any

HIGH_WATER = 1024 * 1024
MAX_CHUNK = 1024 * 1024  # what one iteration hands over at most


class RequestBody:
    __slots__ = (
        "conn",
        "chunks",
        "buffered",
        "received",
        "done",
        "error",
        "waiter",
        "paused",
        "length",
    )

    def __init__(self, conn: Any, length: int | None) -> None:
        self.conn = conn
        self.length = length  # Content-Length, or None when chunked
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.received = 0
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # --- the connection's side ------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        self.received += len(chunk)
        if self.buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self.conn.pause_body()
        self._wake()

    def end(self) -> None:
        self.done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self.error is None and not self.done:
            self.error = error
            self._wake()

    @property
    def complete(self) -> bool:
        return self.done and self.error is None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # --- the handler's side ----------------------------------------------------------

    def __aiter__(self) -> RequestBody:
        return self

    async def __anext__(self) -> bytes:
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.done:
                raise StopAsyncIteration
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        if self.error is not None:
            raise self.error
        chunks = self.chunks
        if len(chunks) == 1 or self.buffered <= MAX_CHUNK:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            taken, size = 0, 0
            while taken < len(chunks) and size < MAX_CHUNK:
                size += len(chunks[taken])
                taken += 1
            data = b"".join(chunks[:taken])
            del chunks[:taken]
        self.buffered -= len(data)
        if self.paused and self.buffered <= HIGH_WATER // 2:
            self.paused = False
            self.conn.resume_body()
        return data
