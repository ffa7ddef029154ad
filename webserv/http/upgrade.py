"""The body of a request that asked for an upgrade: read by a parser of its own.

httptools hands a request with `Connection: upgrade` + `Upgrade:` over as bodiless — it
expects another protocol to follow the header section — and stops at the end of its header
section. webserv switches to no other protocol (RFC 9110 §7.8 lets it ignore the field), so
the request's body comes next. reader.py gives it to an UpgradeBody: a second parser, told the
same framing (Content-Length or chunked), reads it with the same strictness and feeds it to
the connection as any body; at its end the connection's own parser takes over again. A body
is never taken for a request: a second message on this parser is a 400.
"""

from __future__ import annotations

from typing import Any

import httptools

from .errors import HttpError
from .request import Exchange


class UpgradeBody:
    __slots__ = ("conn", "ex", "framing", "own_parser", "begun")

    def __init__(self, conn: Any, ex: Exchange, length: int | None) -> None:
        self.conn = conn
        self.ex = ex  # the request whose body this is
        self.framing = (
            b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
        )
        self.own_parser: Any = None
        self.begun = False

    def start(self, own_parser: Any) -> httptools.HttpRequestParser:
        """The parser that reads the body; `own_parser` (the connection's) comes back after."""
        self.own_parser = own_parser
        parser = httptools.HttpRequestParser(self)
        parser.feed_data(b"PUT / HTTP/1.1\r\nHost: body\r\n" + self.framing + b"\r\n\r\n")
        return parser

    def on_message_begin(self) -> None:
        if self.begun:
            raise HttpError(400, "a request inside the body of an upgrade request", close=True)
        self.begun = True

    def on_body(self, chunk: bytes) -> None:
        self.conn.on_body(chunk)

    def on_message_complete(self) -> None:
        conn = self.conn
        conn.parser = self.own_parser
        conn.on_message_complete()
