"""The response side: what a handler returns and how its header section is encoded.

Handlers return a Response; the connection writes it (writer side in connection.py). Header
fields are pre-encoded bytes so the hot path only joins them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any


class FilePart:
    """`length` bytes of an open file from `offset`, sent with sendfile where possible."""

    __slots__ = ("fd", "offset", "length", "owner")

    def __init__(self, fd: int, offset: int, length: int, owner: Any = None) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.owner = owner  # keeps a cached descriptor alive while it is being sent

    def read(self, size: int) -> bytes:
        """Up to SIZE of the part's next bytes, read with pread (no shared file offset), the
        part advanced past them; OSError if the file ends before the part does."""
        data = os.pread(self.fd, min(self.length, size), self.offset)
        if not data:
            raise OSError(f'"{getattr(self.owner, "path", "?")}" was truncated')
        self.offset += len(data)
        self.length -= len(data)
        return data


class Response:
    """A status, extra header lines and one kind of body.

    `fields` holds the header lines a handler adds (each ending in CRLF); the connection adds
    Server, Date, Content-Length / Transfer-Encoding and Connection. The body is `body`
    (bytes), or `parts` (bytes and FileParts, e.g. a file or multipart ranges), or `stream`
    (an async iterator: chunked on HTTP/1.1, close-delimited on HTTP/1.0).
    """

    __slots__ = ("status", "fields", "body", "parts", "length", "stream", "close")

    def __init__(
        self,
        status: int,
        fields: bytes = b"",
        body: bytes = b"",
        parts: list[bytes | FilePart] | None = None,
        length: int | None = None,
        stream: AsyncIterator[bytes] | None = None,
        close: bool = False,
    ) -> None:
        self.status = status
        self.fields = fields
        self.body = body
        self.parts = parts
        self.length = len(body) if length is None and parts is None and stream is None else length
        self.stream = stream
        self.close = close


def field(name: str, value: str) -> bytes:
    """One header line; CR/LF in a value would split the header, so they are refused."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} value contains CR or LF")
    return f"{name}: {value}\r\n".encode("latin-1", "replace")
