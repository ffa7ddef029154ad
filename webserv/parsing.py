"""The parser webserv reads requests with, and a scratch parse of what it refused.

llhttp (through httptools) as configured for every connection: the one leniency taken
(`lenient_version`, see new_parser) and the Parser subclass with what framing.py's bare-LF
rewriting remembers between reads. And `refused_request_start`: where, in a read of whole
requests that the parser refused, the refused request began (framing.refused_whole reads it
again from there once its bare LFs are made CR LF). Owns no connection state; never answers.
"""

from __future__ import annotations

import httptools

_END = b"\r\n\r\n"  # the end of a header section
_Upgrade = httptools.HttpParserUpgrade
_ParseError = httptools.HttpParserError


class Parser(httptools.HttpRequestParser):
    """A connection's parser, with what the bare-LF rewriting needs to remember (feed_head)."""

    __slots__ = ("cr_pending",)  # the last header byte it was given is a CR


def new_parser(protocol: object, parser_type: type = httptools.HttpRequestParser) -> Parser:
    parser = parser_type(protocol)
    # llhttp refuses versions it does not know (HTTP/1.2, 3.0) as malformed; accept them
    # here and answer by RFC 9110 §2.5: any 1.x as 1.1, another major version with 505.
    # No other leniency: llhttp stays strict about CR LF, which keeps chunked framing
    # unambiguous; a bare LF in a header section is made CRLF before it sees it (feed_head).
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser


class _Ends:
    """A scratch parser's callbacks, for refused_request_start: where requests end."""

    __slots__ = ("between", "length", "left")

    def __init__(self) -> None:
        self.between = True  # between two requests
        self.length: bytes | None = None
        self.left = 0  # bytes of a Content-Length body still to come

    def on_message_begin(self) -> None:
        self.between = False
        self.length = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-length":
            self.length = value

    def on_headers_complete(self) -> None:
        self.left = int(self.length) if self.length is not None else 0

    def on_body(self, chunk: bytes) -> None:
        self.left -= len(chunk)

    def on_message_complete(self) -> None:
        self.between = True
        self.left = 0


def refused_request_start(data: bytes) -> int:
    """Where in `data` the request begins that the parser refused, `data` having begun
    between two requests: a scratch parser reads it again, in pieces cut where a request may
    end (after a CR LF CR LF, after a Content-Length body), until it refuses the same bytes.
    """
    ends = _Ends()
    parser = new_parser(ends)
    start = pos = 0
    n = len(data)
    while pos < n:
        if ends.left > 0:
            end = min(n, pos + ends.left)
        else:
            found = data.find(_END, pos)
            end = n if found < 0 else found + 4
        try:
            parser.feed_data(data[pos:end])
        except (_ParseError, _Upgrade):
            return start
        pos = end
        if ends.between:
            start = pos
    return start
