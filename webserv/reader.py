"""The reading half of a connection: parser events into Exchanges.

A base of Connection (it shares the connection's slots; the chain is in connection.py): it owns the parser's callbacks,
routing (memoised per listen group), the checks a header section allows before any body
byte is read, and handing a body to the handler that streams it. framing.py (its base) owns
how the input is cut and fed to the parser and the limits on what a client may make the
server buffer. connection.py owns the rest: the asyncio callbacks,
answering in order, timeouts and closing; writer.py the bytes that go out.

Two rules about where parsing ends: an `Upgrade` is ignored (parsing goes on as HTTP/1.1,
the request's body first: http/upgrade.py), and nothing after a request or an answer that
ends the connection is parsed or answered — it is dropped (`stop_parsing`).
"""

from __future__ import annotations

import time

from . import dispatch
from .config.model import KEEPALIVE_MSIE6, Location
from .framing import (
    _METHODS,
    BODY,
    HEADERS,
    IDLE,
    InputDropped,
)
from .http.body import RequestBody
from .http.errors import HttpError
from .http.request import Exchange, host_name, split_target
from .http.upgrade import UpgradeBody
from .parsing import Parser, new_parser
from .tcpinfo import read_tcp_info
from .writer import ResponseWriter, browser_without_keepalive

ROUTE_MEMO_LIMIT = 4096
# why reading is paused (a bit each): input held while answering, a body the handler lags on
PAUSE_HELD, PAUSE_BODY = 1, 2
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_BODY_METHODS = frozenset({"POST", "PUT"})
_now = time.time


class RequestReader(ResponseWriter):
    __slots__ = ()

    def new_parser(self) -> Parser:
        parser = new_parser(self, Parser)
        parser.cr_pending = False
        return parser

    def upgrade_ignored(self) -> bool:
        """httptools stopped after a request asking for `Upgrade`: go on as HTTP/1.1.

        webserv switches to no other protocol, so it ignores the field (RFC 9110 §7.8: a
        server MAY), as nginx does, and the bytes after the request are the next request —
        or its body first: httptools skips an upgrade request's body, so body_expected gave
        it a parser of its own (UpgradeBody). False when nothing is to be parsed after it:
        the request ends the connection (CONNECT always does: a tunnel would follow).
        """
        body = self.upgrade_body
        if body is not None:
            self.upgrade_body = None
            if not self.stop_parsing:
                # the body is the request's own, whatever its Connection says
                self.parser = body.start(self.parser)
                self.ex = body.ex
                self.reading = BODY
                return True
        return not self.stop_parsing and not self.last_request_closes()

    def last_request_closes(self) -> bool:
        """The last request parsed, still to be answered, ends the connection."""
        last = self.queue[-1] if self.queue else self.active
        return last is not None and not last.keep_alive

    def on_message_begin(self) -> None:
        if self.stop_parsing:
            raise InputDropped  # the connection is closing (see close): no more requests
        ex = self.ex = Exchange(self, _now())
        ex.pipelined = self.pipeline
        count = self.requests = self.requests + 1
        every = self.tcp_every
        if every and (count == 1 or not count % every):
            ex.tcp_start = read_tcp_info(self.raw)  # (its first byte is in: we are parsing it)
        self.reading = HEADERS
        self.url = b""
        if self.active is None:
            self.timeout_kind = "header"
            self.deadline = self.clock() + self.group.default.client_header_timeout

    def on_url(self, url: bytes) -> None:
        self.url = self.url + url if self.url else url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        if size > self.group.default.header_line_limit:
            raise HttpError(431, "header field too long", close=True)
        ex = self.ex
        ex.header_bytes += size + 4  # ": " and CRLF, as a canonical header line has them
        headers = ex.headers
        name = name.lower()
        old = headers.get(name)
        if old is None:
            headers[name] = value
        elif name == b"host":
            raise HttpError(400, "more than one Host header", close=True)
        elif name == b"content-length":
            if old != value:
                raise HttpError(400, "conflicting Content-Length headers", close=True)
        else:
            headers[name] = old + (b"; " if name == b"cookie" else b", ") + value

    def on_headers_complete(self) -> None:
        ex = self.ex
        parser = self.parser
        ex.keep_alive = parser.should_keep_alive()
        method = parser.get_method()
        ex.method = _METHODS.get(method) or _other_method(ex, method)
        ex.head = method == b"HEAD"
        version = parser.get_http_version()
        if version != "1.1":
            if version == "1.0":
                ex.minor = 0
                ex.version = "HTTP/1.0"
            elif not version.startswith("1."):
                ex.raw_target = self.url  # for the log line
                ex.version = f"HTTP/{version}"
                raise HttpError(505, f"HTTP/{version} is not supported", close=True)
        url = self.url
        if len(url) > self.group.default.header_line_limit:
            raise HttpError(414, "request line too long", close=True)
        ex.raw_target = url
        if self.record is not None:
            ex.t_headers = _now()
            if self.tcp_every and not ex.keep_alive and ex.tcp_start is None:
                ex.tcp_start = read_tcp_info(self.raw)  # the last one: always sampled
        headers = ex.headers
        host = headers.get(b"host")
        if host is None and ex.minor == 1 and url[:1] == b"/":
            raise HttpError(400, "HTTP/1.1 request without Host", close=True)
        route = self.memo.get((host, url))
        if route is None:
            route = self.route(host, url)
        ex.server, ex.location, ex.path, ex.query, ex.host = route
        self.reading = BODY
        loc = ex.location
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            if ex.method not in loc.allow_methods or ex.method in _BODY_METHODS:
                self.msie6_post(ex, loc)
                ex.error = dispatch.check_request(ex, has_body=False)
            return
        self.msie6_post(ex, loc)
        self.body_expected(ex, loc)

    def msie6_post(self, ex: Exchange, loc: Location) -> None:
        """keepalive_disable msie6 (the default): no keep-alive after an old MSIE's POST
        (nginx's reason: MSIE could wait for a while after a response to a POST sent over a
        keep-alive connection). Called only where a request has or may have a body."""
        if (
            ex.method == "POST"
            and loc.keepalive_disable & KEEPALIVE_MSIE6
            and browser_without_keepalive(ex.headers.get(b"user-agent"), KEEPALIVE_MSIE6)
        ):
            ex.keep_alive = False

    def route(self, host: bytes | None, url: bytes) -> tuple:
        """Server, location, path, query and host name of a request target (memoised)."""
        if url[:1] == b"/" and b"?" not in url and b"#" not in url:
            raw_path, query, authority = url, b"", None
        elif url == b"*" and self.ex.method == "OPTIONS":
            return self.asterisk(host)
        else:
            raw_path, query, authority = split_target(url)
        name = host_name(host) if host is not None else ""  # an invalid Host is a 400 anyway
        if authority is not None:  # RFC 9112 §3.2.2: the target's authority wins
            if not authority:
                raise HttpError(400, "empty authority in the request target", close=True)
            name = host_name(authority)
        routes = self.worker.routes
        server = routes.server(self.group, name)
        path = self.group.normalize_path(raw_path)
        route = (server, routes.location(server, path), path, query.decode("latin-1"), name)
        memo = self.memo
        if len(memo) >= ROUTE_MEMO_LIMIT:
            memo.clear()
        memo[(host, url)] = route
        return route

    def asterisk(self, host: bytes | None) -> tuple:
        """`OPTIONS *` (RFC 9112 §3.2.4) asks about the server itself: its own settings
        answer (a 405 with its `Allow`, since webserv implements no OPTIONS). Not memoised:
        the same target with another method is a 400."""
        name = host_name(host) if host is not None else ""
        server = self.worker.routes.server(self.group, name)
        return server, server.fallback, "*", "", name

    def body_expected(self, ex: Exchange, loc: Location) -> None:
        """A body follows: refuse it before reading it, or hand it to its handler as it comes.

        Every check that the header section allows is made first (method, route, size), so
        that `100 Continue` is only promised to a body that will be taken (RFC 9110 §10.1.1).
        """
        headers = ex.headers
        coding = headers.get(b"transfer-encoding")
        if coding is not None and (coding.lower() != b"chunked" or ex.minor == 0):
            # RFC 9112 §6.1: chunked is the only coding taken, and never from HTTP/1.0
            raise HttpError(400, f"unsupported Transfer-Encoding {coding!r}", close=True)
        length = headers.get(b"content-length")
        limit = loc.client_max_body_size  # first, as nginx does when it picks the location
        if length is not None and limit and int(length) > limit:
            raise HttpError(
                413, f"client intended to send too large body: {int(length)} bytes", close=True
            )
        err = dispatch.check_request(ex, has_body=True)
        if err is not None:
            if length is not None and int(length) == 0 and b"transfer-encoding" not in headers:
                ex.error = err  # nothing to leave unread: the connection can go on
                return
            err.close = True
            raise err
        expect = headers.get(b"expect")
        if expect is not None:
            if expect.lower() != b"100-continue":
                raise HttpError(417, f"unsupported expectation {expect!r}", close=True)
            ex.expect_continue = ex.minor == 1
        self.set_deadline("body", loc.client_body_timeout)
        if dispatch.takes_body(ex):
            ex.body = RequestBody(self, int(length) if length is not None else None)
            ex.queued = True
            self.answer_or_wait(ex)  # the handler reads the body as it arrives
        elif ex.expect_continue and self.active is None and not self.queue:
            ex.expect_continue = False
            self.transport.write(CONTINUE)
        if b"upgrade" in headers and self.parser.should_upgrade():
            size = int(length) if length is not None else None
            if size != 0:  # httptools will skip this body: see UpgradeBody
                self.upgrade_body = UpgradeBody(self, ex, size)
                # the early, bodiless end of message httptools reports is a placeholder's
                placeholder = self.ex = Exchange(self, ex.start)
                placeholder.queued = True  # on_message_complete leaves it alone

    def on_body(self, chunk: bytes) -> None:
        ex = self.ex
        ex.body_received += len(chunk)
        limit = ex.location.client_max_body_size
        if limit and ex.body_received > limit:
            raise HttpError(413, "client sent too large body", close=True)
        if ex.body is not None:
            ex.body.feed(chunk)
        if not self.paused & PAUSE_BODY:
            self.set_deadline("body", ex.location.client_body_timeout)

    def pause_body(self) -> None:
        """The handler lags behind the client: stop reading, and stop the body timer."""
        self.pause(PAUSE_BODY)
        self.deadline = 0.0

    def resume_body(self) -> None:
        self.resume(PAUSE_BODY)
        if self.reading == BODY and self.ex is not None:
            self.set_deadline("body", self.ex.location.client_body_timeout)

    def on_message_complete(self) -> None:
        ex = self.ex
        self.ex = None
        self.reading = IDLE
        self.header_size = 0
        if ex.body is not None:
            ex.body.end()
        if self.record is not None and ex.body_received:
            ex.t_body = _now()
        self.pipeline = True  # the rest of this read came with this request ($pipe)
        if ex.queued:
            return  # started (or queued) when its header section was complete
        self.answer_or_wait(ex)


def _other_method(ex: Exchange, method: bytes) -> str:
    """A method name that is not one of _METHODS'; CONNECT ends the connection after its
    answer (llhttp takes everything after a CONNECT for the tunnel's bytes)."""
    if method == b"CONNECT":
        ex.keep_alive = False
    return method.decode("ascii", "replace")
