"""Framing the input: where each request's bytes begin and end before httptools sees them.

The root of Connection's chain of bases (connection.py; framing.pxd declares the slots
of them all for the compiled build). It
owns the limits on what a client may make the server buffer (the header section: 414/431
past `large_client_header_buffers`), the cutting of the input into pieces whose ends are
known request boundaries, nginx's acceptance of a bare LF in the request line and header
section (made CR LF before llhttp sees it; never inside chunked framing), and turning the
parser's refusals into the error answered (400, 501, 505). It never routes, never looks at
a header's meaning and never answers: reader.py's callbacks do, and connection.py answers.
"""

from __future__ import annotations

import time
from typing import Any

import httptools

from .http.errors import HttpError
from .http.request import Exchange
from .logs import error_log
from .parsing import refused_request_start

IDLE, HEADERS, BODY, LINGER = 0, 1, 2, 3  # the reading states (see connection.py)
_METHODS = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "MKCOL", "COPY", "MOVE")
}
_END = b"\r\n\r\n"  # the end of a header section
_Upgrade = httptools.HttpParserUpgrade
_ParseError = httptools.HttpParserError
_now = time.time


class InputDropped(Exception):
    """on_message_begin's way to stop the parse once an answer has closed the connection."""


class InputFraming:
    __slots__ = ()

    # Connection's (connection.py): named here too, so that the compiled chain (framing.pxd)
    # calls them as C methods from its bases; a pure-Python Connection's own come first
    def answer_or_wait(self, ex: Exchange) -> None:
        raise NotImplementedError

    def finish(self, ex: Exchange) -> None:
        raise NotImplementedError

    def raw_socket(self) -> Any:
        raise NotImplementedError

    def feed(self, data: bytes) -> None:
        """Parse bytes; no request's header section may grow past the server's limit.

        The usual read holds whole requests: it starts between two requests, ends with the
        CRLF CRLF of a header section and is no longer than the limit, so no header section
        in it can be too large and none is left unfinished: one parser call. Anything else
        goes piece by piece (feed_pieces), which counts each header section's own bytes.
        """
        self.pipeline = False  # a new read: nothing in it came with a request before ($pipe)
        if (
            self.reading == IDLE
            and data[-4:] == _END
            and len(data) <= self.group.default.header_section_limit + 4
        ):
            self.feeding = True
            try:
                try:
                    self.parser.feed_data(data)
                    return
                except _Upgrade as exc:
                    if self.upgrade_ignored():
                        self.feed_pieces(data, exc.args[0])
                    return
                except _ParseError as exc:
                    start = self.refused_whole(exc, data)
                # read again outside the handler, or a callback's error would have the
                # parser's for its __context__ (parse_error looks there for the cause)
                if start >= 0:
                    self.feed_pieces(data, start)
            finally:
                self.feeding = False
        else:
            self.feeding = True
            try:
                self.feed_pieces(data)
            finally:
                self.feeding = False

    def feed_pieces(self, data: bytes, pos: int = 0) -> None:
        """Feed `data` in pieces whose ends are known request boundaries or the limit.

        httptools says nothing of where in the input a request begins, so the pieces are cut
        where that is certain: after a CRLF CRLF (a header section, or a chunked body, ends
        there, and no header section contains one), after the rest of a Content-Length body,
        and at the limit of the header section in progress. Consecutive whole requests go in
        one piece of up to the limit. A header section still unfinished at the end of the
        input began at the start of its piece (or earlier): its size is exact, and the parser
        never holds more than the limit of it (it buffers an unfinished header field itself).
        `pos` > 0: data[:pos] is parsed already (it ended with a request that asked for an
        upgrade, and parsing goes on after it).
        """
        limit = self.group.default.header_section_limit + 4  # + the CRLF CRLF that ends it
        view = memoryview(data)
        n = len(data)
        # the CRLF CRLF ending a header section or a chunked body may have begun in the last
        # read: its last bytes go one at a time, so that whatever follows starts a piece
        while pos < 3 and pos < n and data[pos] in b"\r\n":
            if self.reading == HEADERS:
                if self.header_size >= limit:
                    break  # no room for one more byte: the loop below refuses the request
                pos = self.parse_head(view, data, pos, pos + 1)
            elif self.reading != BODY or self.body_left() >= 0:
                break
            else:
                pos = self.parse_piece(view, data, pos, pos + 1)
            if pos < 0:
                return
        while pos < n:
            reading = self.reading
            # (a CRLF CRLF that the bytes fed one at a time began is found from pos - 3)
            if reading == BODY:
                left = self.body_left()
                if left >= 0:
                    end = min(n, pos + left) if left else n
                else:  # chunked: it ends with a CRLF CRLF (RFC 9112 §7.1)
                    found = data.find(_END, max(0, pos - 3))
                    while 0 <= found and found + 4 <= pos:
                        found = data.find(_END, found + 1)
                    end = n if found < 0 else found + 4
            else:
                room = limit - self.header_size if reading == HEADERS else limit
                reach = min(n, pos + room)
                if data.count(b"\n", pos, reach) != data.count(b"\r\n", pos, reach):
                    # a bare LF (or a CRLF begun before pos) within reach: one header
                    # section at a time, its line ends made CRLF (never a body's bytes)
                    pos = self.feed_head(view, data, pos, room)
                    if pos < 0:
                        return
                    continue
                found = data.rfind(_END, max(0, pos - 3), pos + room)
                if found >= 0 and found + 4 > pos:
                    end = found + 4  # every header section in the piece ends in it
                elif n - pos <= room:
                    end = n  # the section in progress (if any) stays within the limit
                else:
                    # no header section can end within the limit: give the parser the limit
                    # (its own errors come first), then refuse what is left unfinished
                    end = pos + room
                    pos = self.parse_piece(view, data, pos, end)
                    if pos < 0:
                        return
                    if pos == end and self.reading == HEADERS:
                        status = 414 if self.line_spaces >= 0 else 431
                        self.fail_parse(
                            HttpError(status, "request header section too large", close=True)
                        )
                        return
                    continue
            pos = self.parse_piece(view, data, pos, end)
            if pos < 0:
                return

    def parse_piece(self, view: memoryview, data: bytes, start: int, end: int) -> int:
        """Parse data[start:end]: where parsing goes on from (`end`, or where a request that
        asked for an upgrade ended), or -1 once it has stopped."""
        ex = self.ex if self.reading == HEADERS else None
        try:
            self.parser.feed_data(view[start:end])
        except _Upgrade as exc:
            if not self.upgrade_ignored():
                return -1
            end = start + exc.args[0]
        except _ParseError as exc:
            self.parse_error(exc, data[start:end])
            return -1
        else:
            if self.reading == HEADERS:
                self.unfinished_head(data, start, end, continued=self.ex is ex)
        return -1 if self.stop_parsing or self.reading == LINGER or self.closed else end

    def feed_head(self, view: memoryview, data: bytes, pos: int, room: int) -> int:
        """Feed the header section in progress alone, a bare LF in it made CR LF (parse_head).

        RFC 9112 §2.2 lets a recipient take a bare LF for a line end, and nginx does, in the
        request line and the header section; never in chunked framing, whose pieces go to
        llhttp as they are (strict: a bare LF there is a 400). A header section ends at the
        first empty line: LF LF or LF CR LF (and CR LF CR LF), as h11 and nginx end it. The
        piece ends there, at the end of the input, or at the limit (`room` bytes, counted as
        received), past which the request is refused as feed_pieces refuses it.
        """
        n = len(data)
        reach = min(n, pos + room)
        if self.reading == HEADERS:
            start = max(0, pos - 2)  # an empty line the bytes fed one at a time began
        else:
            start = pos
            while start < reach and data[start] in b"\r\n":
                start += 1  # empty lines before a request line are ignored (RFC 9112 §2.2)
        end = _section_end(data, start, reach, pos)
        if end >= 0 or n - pos <= room:
            return self.parse_head(view, data, pos, end if end >= 0 else n)
        end = pos + room
        pos = self.parse_head(view, data, pos, end)
        if pos == end and self.reading == HEADERS:
            status = 414 if self.line_spaces >= 0 else 431
            self.fail_parse(HttpError(status, "request header section too large", close=True))
            return -1
        return pos

    def parse_head(self, view: memoryview, data: bytes, start: int, end: int) -> int:
        """parse_piece for header bytes: each bare LF in data[start:end] goes as CR LF.

        The parser's last byte decides whether an LF the piece begins with is bare. The CRs
        added are taken off the request's `header_bytes` before the last byte ends its header
        section (and it may be answered and logged): $request_length counts bytes received.
        """
        reading = self.reading
        ex = self.ex if reading == HEADERS else None
        parser = self.parser
        lead = start
        if reading == IDLE:
            while lead < end and data[lead] in b"\r\n":
                lead += 1  # the parser skips CR and LF before a request line, bare or not
        raw = data[lead:end]
        head = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if (
            raw[:1] == b"\n"
            and lead == start
            and (data[start - 1] == 13 if start else parser.cr_pending)
        ):
            head = head[1:]  # its CR was the last piece's last byte
        added = len(head) - len(raw)
        if not added:
            return self.parse_piece(view, data, start, end)
        if lead > start:
            head = data[start:lead] + head
        last = head[-1:]
        try:
            parser.feed_data(head[:-1])
            if self.ex is not None:
                self.ex.header_bytes -= added
            parser.feed_data(last)
        except _Upgrade as exc:
            if not self.upgrade_ignored():
                return -1
            # it stops where its header section ends: the end of the piece, no CR added after
            end -= 1 - exc.args[0]
        except _ParseError as exc:
            self.parse_error(exc, data[start:end])
            return -1
        else:
            if self.reading == HEADERS:
                self.unfinished_head(data, start, end, continued=self.ex is ex)
        return -1 if self.stop_parsing or self.reading == LINGER or self.closed else end

    def refused_whole(self, exc: Exception, data: bytes) -> int:
        """The parser refused part of a read of whole requests (feed's usual case).

        A bare LF is accepted by the pieces only (feed_head): if the input holds one, the
        refused request is to be read again from where it began (refused_request_start; the
        return value, -1 if not) by a new parser (the old one is stuck in its error), and so
        is everything after it.
        """
        if (
            self.reading == HEADERS
            and self.ex is not None
            and not self.stop_parsing
            and not isinstance(exc, httptools.HttpParserCallbackError)
            and data.count(b"\n") != data.count(b"\r\n")
        ):
            start = refused_request_start(data)
            self.requests -= 1  # it begins again
            self.ex = None
            self.reading = IDLE
            self.header_size = 0
            self.parser = self.new_parser()
            return start
        self.parse_error(exc, data)
        return -1

    def body_left(self) -> int:
        """Bytes of the Content-Length body being read still to come; -1 when chunked."""
        ex = self.ex
        length = ex.headers.get(b"content-length") if ex is not None else None
        return -1 if length is None else int(length) - ex.body_received

    def unfinished_head(self, data: bytes, start: int, end: int, continued: bool) -> None:
        """A piece ends inside a header section: count it, and look at its request line.

        The request line is followed as far as it has come (`line_spaces`: the spaces seen
        in it, -1 once it is complete), because a line with no version is HTTP/0.9: the
        whole request, which must be answered now rather than wait for header lines.
        """
        self.parser.cr_pending = data[end - 1] == 13  # (parse_head: is an LF next bare?)
        if continued:
            self.header_size += end - start
            spaces = self.line_spaces
            if spaces < 0:
                return
        else:
            while start < end and data[start] in b"\r\n":
                start += 1  # empty lines before a request line are ignored (RFC 9112 §2.2)
            self.header_size = end - start
            spaces = 0
        line_end = data.find(b"\n", start, end)
        if line_end < 0:
            self.line_spaces = spaces + data.count(b" ", start, end)
            return
        self.line_spaces = -1
        spaces += data.count(b" ", start, line_end)
        version = "0.9" if spaces < 2 else self.parser.get_http_version()
        if not version.startswith("1."):
            self.unsupported_version(version)

    def unsupported_version(self, version: str) -> None:
        """505 at once for a request line of another major version (HTTP/0.9, HTTP/2.0)."""
        ex = self.ex
        method = self.parser.get_method()
        ex.method = _METHODS.get(method) or method.decode("ascii", "replace")
        ex.raw_target = self.url
        ex.version = f"HTTP/{version}"
        self.fail_parse(HttpError(505, f"HTTP/{version} is not supported", close=True))

    def parse_error(self, exc: Exception, data: bytes) -> None:
        """The parser refused the input (`data`: what it was given, for the method token)."""
        if isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__
            if isinstance(cause, InputDropped):
                return  # an answer closed the connection: what follows it is dropped
            if isinstance(cause, HttpError):
                self.fail_parse(cause)
            else:
                error_log.error(f"internal error while parsing: {cause!r}", self.id)
                self.fail_parse(HttpError(500, repr(cause), close=True))
        elif self.stop_parsing or (self.ex is None and self.last_request_closes()):
            # llhttp refuses the bytes after a request that ends the connection: they are
            # dropped, never answered (an answer after the close would be a second one)
            return
        elif isinstance(exc, httptools.HttpParserInvalidMethodError):
            token = bytes(data).lstrip(b"\r\n").split(b" ", 1)[0]
            status = 501 if token.isalpha() and token.isupper() else 400
            self.fail_parse(HttpError(status, "unknown method", close=True))
        elif self.ex is not None and self.parser.get_http_version() == "0.9":
            self.unsupported_version("0.9")  # a version-less request line, then more lines
        else:
            self.fail_parse(HttpError(400, f"malformed request: {exc}", close=True))

    def fail_parse(self, err: HttpError) -> None:
        """The input cannot be parsed further: answer this error in turn, then close."""
        self.stop_parsing = True
        self.held.clear()
        ex = self.ex or Exchange(self, _now())
        self.ex = None
        if ex.body is not None and ex.queued:
            # a handler is (or will be) reading this body: it gets the error and answers it
            ex.keep_alive = False
            ex.body.fail(err)
            return
        ex.error = err
        ex.keep_alive = False
        if ex.server is None:
            ex.server = self.group.default
        self.answer_or_wait(ex)


def _section_end(data: bytes, start: int, reach: int, after: int) -> int:
    """Where the first empty line in data[start:reach] that ends past `after` ends, or -1."""
    end = -1
    for terminator in (b"\n\n", b"\n\r\n"):
        found = data.find(terminator, start, reach)
        while 0 <= found and found + len(terminator) <= after:
            found = data.find(terminator, found + 1, reach)
        if found >= 0 and (end < 0 or found + len(terminator) < end):
            end = found + len(terminator)
    return end
