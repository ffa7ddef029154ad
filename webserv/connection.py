"""One client connection: bytes in, parser events, responses out, keep-alive and timeouts.

The Protocol moves bytes; it does not know about files, CGI or uploads (dispatch.py and the
handlers do). Two small state machines run side by side, because with pipelining the next
request can be read while the previous one is still being answered:

    reading   IDLE ──first byte──▶ HEADERS ──headers done──▶ BODY ──message done──▶ IDLE
              any ──error / close──▶ LINGER (discard input until EOF or linger timeout)
    answering free ──start(exchange)──▶ busy ──response handed to the kernel──▶ free

Only one exchange is answered at a time; complete requests that arrive meanwhile wait in
`queue`, and input that arrives meanwhile waits unparsed in `held` with reading paused, so a
client can never make the server buffer more than one read.

Every state has one timer, kept as a `deadline` that the worker's sweeper checks:

    IDLE, first request    client_header_timeout    → close (nginx logs it; nothing to answer)
    IDLE, after a response keepalive_timeout        → close
    HEADERS                client_header_timeout    → 408, close
    BODY                   client_body_timeout      → 408, close (per read)
    writes blocked         send_timeout             → close (per progress)
    LINGER                 LINGER_TIMEOUT           → close

Writes: the transport's high-water mark is 0, so `pause_writing` means exactly "bytes are
waiting in the transport". While nothing waits, file bodies go straight to the socket with
`send(MSG_MORE)` + `sendfile` (zero copy); when the socket is full, one chunk goes through
the transport, which then tells us when it has drained.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

import httptools

from . import dispatch, router
from .config.model import Listener, Location
from .http.dates import http_date_bytes_now
from .http.errors import HttpError
from .http.request import Exchange, normalize_path, split_target
from .http.response import FilePart, Response
from .http.status import NO_BODY, SERVER_BARE, SERVER_WITH_VERSION, status_line
from .logs import error_log

SENDFILE = sys.platform.startswith("linux") and hasattr(os, "sendfile")
MSG_MORE = getattr(socket, "MSG_MORE", 0)
CHUNK = 64 * 1024  # one transport write while the socket is full
LINGER_TIMEOUT = 5.0

IDLE, HEADERS, BODY, LINGER = 0, 1, 2, 3

_SERVER_LINES = {
    True: f"Server: {SERVER_WITH_VERSION}\r\n".encode(),
    False: f"Server: {SERVER_BARE}\r\n".encode(),
}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_now = time.time


class Connection(asyncio.Protocol):
    __slots__ = (
        "worker", "listener", "group", "transport", "raw", "fd", "parser", "id", "requests",
        "remote_addr", "remote_port", "_local", "ex", "active", "queue", "held", "reading",
        "url", "url_size", "header_size", "write_blocked", "out", "out_ex", "deadline",
        "timeout_kind", "paused", "peer_eof", "closed", "close_reason", "closed_by",
        "feeding", "task", "drain_waiter", "last_location", "record", "stop_parsing",
    )

    def __init__(self, worker: Any, listener: Listener) -> None:
        self.worker = worker
        self.listener = listener
        self.group = next(iter(listener.groups.values()))
        self.transport: asyncio.Transport | None = None
        self.raw: socket.socket | None = None
        self.fd = -1
        self.parser = httptools.HttpRequestParser(self)
        self.id = 0
        self.requests = 0
        self.remote_addr = "-"
        self.remote_port = 0
        self._local: tuple[str, int] | None = None
        self.ex: Exchange | None = None  # the request being read
        self.active: Exchange | None = None  # the request being answered
        self.queue: deque[Exchange] = deque()
        self.held: list[bytes] = []
        self.reading = IDLE
        self.url: list[bytes] = []
        self.url_size = 0
        self.header_size = 0
        self.write_blocked = False
        self.out: deque[bytes | FilePart] = deque()
        self.out_ex: Exchange | None = None
        self.deadline = 0.0
        self.timeout_kind = ""
        self.paused = False
        self.peer_eof = False
        self.closed = False
        self.close_reason = ""
        self.closed_by = ""
        self.feeding = False
        self.task: asyncio.Task[Any] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.last_location: Location | None = None
        self.record: Any = None  # lifecycle.Record when instrumentation is on
        self.stop_parsing = False

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=0)
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno()
        if SENDFILE:
            # a second Python object on the same descriptor, for send(MSG_MORE) and sendfile;
            # family/type given so no getsockopt is spent; detached (never closed) at the end
            self.raw = socket.socket(sock.family, sock.type, 0, self.fd)
        peer = transport.get_extra_info("peername")
        if peer:
            self.remote_addr, self.remote_port = peer[0], peer[1]
        if self.listener.needs_local_address:
            local = self.local_address
            groups = self.listener.groups
            self.group = groups.get(local) or groups.get(("", local[1])) or self.group
        if not self.worker.connection_opened(self):
            return
        self.set_deadline("first_request", self.group.default.client_header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.reading == LINGER or self.stop_parsing:
            return
        if self.active is not None or self.queue or self.held:
            # still answering: keep the bytes unparsed and stop reading until we are free
            self.held.append(data)
            self.pause()
            return
        self.feed(data)

    def eof_received(self) -> bool:
        self.peer_eof = True
        if not self.closed_by:
            self.closed_by = "client"
            self.close_reason = "client sent FIN"
        if self.reading != LINGER and (self.active is not None or self.queue):
            return True  # half-closed: finish answering, then close
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.closed_by:
            self.closed_by = "reset" if exc is not None else "client"
            self.close_reason = f"{type(exc).__name__}: {exc}" if exc else "client closed"
        for part in self.out:
            if isinstance(part, FilePart) and part.owner is not None:
                part.owner.release()
        self.out.clear()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_exception(ConnectionResetError("client went away"))
        if self.active is not None and self.active.status == 0:
            self.active.status = 499  # nginx's "client closed request"
            self.log(self.active)
        self.worker.connection_closed(self)
        if self.raw is not None:
            self.raw.detach()
            self.raw = None

    def pause_writing(self) -> None:
        self.write_blocked = True
        self.set_deadline("send", self.send_timeout())

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.out:
            self.set_deadline("send", self.send_timeout())
            self.pump()
            return
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
            return
        if self.active is None:
            self.next_request()

    # --- reading -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse bytes; a request header section may not grow past the server's limit."""
        if self.reading <= HEADERS:
            server = self.group.default if self.ex is None or self.ex.server is None else self.ex.server
            room = server.header_section_limit + 4 - self.header_size
            if len(data) > room:
                self.feed(data[:room])
                if self.reading <= HEADERS and not self.closed and self.reading != LINGER:
                    status = 414 if self.url and self.header_size == self.url_size else 431
                    self.fail_parse(HttpError(status, "request header section too large", close=True))
                    return
                if not self.closed and self.reading != LINGER and not self.stop_parsing:
                    self.data_received(data[room:])
                return
            self.header_size += len(data)
        self.feeding = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.stop_parsing = True  # no protocol switch here: answer, then close
            for ex in (self.active, *self.queue):
                if ex is not None:
                    ex.keep_alive = False
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, HttpError):
                self.fail_parse(cause)
            else:
                error_log.error(f"internal error while parsing: {cause!r}", self.id)
                self.fail_parse(HttpError(500, repr(cause), close=True))
        except httptools.HttpParserInvalidMethodError:
            self.fail_parse(HttpError(501 if self.method_token_looks_valid(data) else 400,
                                      "unknown method", close=True))
        except httptools.HttpParserError as exc:
            self.fail_parse(HttpError(400, f"malformed request: {exc}", close=True))
        finally:
            self.feeding = False

    def method_token_looks_valid(self, data: bytes) -> bool:
        token = data.split(b" ", 1)[0]
        return bool(token) and token.isalpha() and token.isupper()

    def fail_parse(self, err: HttpError) -> None:
        """The input cannot be parsed further: answer this error in turn, then close."""
        self.stop_parsing = True
        self.held.clear()
        ex = self.ex
        if ex is None:
            ex = self.ex = Exchange(self, _now())
        self.ex = None
        ex.error = err
        ex.keep_alive = False
        if ex.server is None:
            ex.server = self.group.default
        if self.active is None and not self.queue:
            self.start(ex)
        else:
            self.queue.append(ex)

    def on_message_begin(self) -> None:
        self.ex = Exchange(self, _now())
        self.requests += 1
        self.reading = HEADERS
        self.url.clear()
        self.url_size = 0
        if self.active is None:
            self.set_deadline("header", self.group.default.client_header_timeout)
        if self.record is not None:
            self.record.request_begin(self.ex)

    def on_url(self, url: bytes) -> None:
        self.url.append(url)
        self.url_size += len(url)
        self.ex.request_length += len(url)
        if self.url_size > self.group.default.header_line_limit:
            raise HttpError(414, "request line too long", close=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > self.group.default.header_line_limit:
            raise HttpError(431, "header field too long", close=True)
        ex = self.ex
        ex.request_length += len(name) + len(value) + 4  # ": " and CRLF
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
        method = parser.get_method()
        ex.method = _METHODS.get(method) or method.decode("ascii", "replace")
        ex.head = ex.method == "HEAD"
        version = parser.get_http_version()
        ex.version = "HTTP/" + version
        url = self.url[0] if len(self.url) == 1 else b"".join(self.url)
        ex.target = url.decode("latin-1")
        ex.request_length += len(ex.method) + len(ex.version) + 6  # spaces, CRLFs of line and end
        if version == "1.1":
            ex.minor = 1
        elif version == "1.0":
            ex.minor = 0
        else:
            raise HttpError(505, f"HTTP/{version} is not supported", close=True)
        ex.keep_alive = parser.should_keep_alive()
        if url[:1] == b"/" and b"?" not in url and b"#" not in url:
            raw_path, query, authority = url, b"", None
        else:
            raw_path, query, authority = split_target(url)
        ex.query = query.decode("latin-1")
        host = authority if authority is not None else ex.headers.get(b"host")
        if host is None:
            if ex.minor == 1:
                raise HttpError(400, "HTTP/1.1 request without Host", close=True)
            host = b""
        ex.host = _host_name(host)
        server = router.select_server(self.group, ex.host)
        ex.server = server
        ex.path = normalize_path(raw_path)
        loc = router.select_location(server, ex.path)
        ex.location = loc
        self.reading = BODY
        if parser.get_method() == b"HEAD" or not _has_body(ex):
            ex.error = dispatch.check_method(ex)
            return
        # a body follows: refuse it now rather than read what will not be used
        err = dispatch.check_method(ex)
        if err is not None:
            err.close = True
            raise err
        length = ex.headers.get(b"content-length")
        limit = loc.client_max_body_size
        if length is not None and limit and int(length) > limit:
            raise HttpError(413, f"client intended to send too large body: {int(length)} bytes", close=True)
        self.set_deadline("body", loc.client_body_timeout)

    def on_body(self, chunk: bytes) -> None:
        ex = self.ex
        ex.body_received += len(chunk)
        limit = ex.location.client_max_body_size
        if limit and ex.body_received > limit:
            raise HttpError(413, "client sent too large body", close=True)
        if self.active is None:
            self.set_deadline("body", ex.location.client_body_timeout)

    def on_message_complete(self) -> None:
        ex = self.ex
        self.ex = None
        self.reading = IDLE
        self.header_size = 0
        ex.request_length += ex.body_received
        if self.active is None and not self.queue:
            self.start(ex)
        else:
            self.queue.append(ex)

    # --- answering ---------------------------------------------------------------------

    def start(self, ex: Exchange) -> None:
        self.active = ex
        if self.record is not None:
            self.record.request_start(ex)
        if ex.error is not None:
            self.send(ex, dispatch.error_response(ex, ex.error), ex.error)
            return
        try:
            result = dispatch.handle(ex)
        except HttpError as err:
            self.send(ex, dispatch.error_response(ex, err), err)
            return
        except Exception as exc:  # a bug in a handler must cost one request, not the worker
            error_log.error(f"unhandled {exc!r} while answering \"{ex.request_line}\"", self.id)
            if error_log.enabled("debug"):
                import traceback

                error_log.debug(traceback.format_exc(), self.id)
            self.send(ex, dispatch.error_response(ex, HttpError(500, repr(exc))))
            return
        if isinstance(result, Response):
            self.send(ex, result)
        else:
            self.task = asyncio.get_running_loop().create_task(self.wait_for(ex, result))

    async def wait_for(self, ex: Exchange, awaitable: Awaitable[Response]) -> None:
        err = None
        try:
            response = await awaitable
        except HttpError as exc:
            err = exc
            response = dispatch.error_response(ex, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error_log.error(f"unhandled {exc!r} while answering \"{ex.request_line}\"", self.id)
            response = dispatch.error_response(ex, HttpError(500, repr(exc)))
        self.task = None
        if self.closed:
            return
        self.send(ex, response, err)

    def send(self, ex: Exchange, response: Response, err: HttpError | None = None) -> None:
        """Encode the header section and hand the body to the kernel (or start streaming it)."""
        status = ex.status = response.status
        if err is not None and err.reason and status >= 500:
            error_log.error(f'{err.reason}, client: {self.remote_addr}, request: "{ex.request_line}"', self.id)
        elif err is not None and err.reason:
            error_log.info(f'{err.reason}, client: {self.remote_addr}, request: "{ex.request_line}"', self.id)
        if status == 444:
            self.log(ex)
            self.active = None
            self.close("return 444")
            return
        loc = ex.location
        if loc is None:  # an error found before routing: the server's own settings apply
            loc = ex.location = (ex.server or self.group.default).fallback
        keep = (
            ex.keep_alive and not response.close and not self.worker.stopping
            and loc.keepalive_timeout > 0 and not self.peer_eof and not self.stop_parsing
        )
        parts = [status_line(status, ex.minor), _SERVER_LINES[loc.server_tokens], b"Date: ",
                 http_date_bytes_now(), b"\r\n", response.fields]
        stream = response.stream
        chunked = False
        if response.length is not None:
            if status not in NO_BODY:
                parts.append(b"Content-Length: %d\r\n" % response.length)
        elif stream is not None and not ex.head:
            if ex.minor == 1:
                parts.append(b"Transfer-Encoding: chunked\r\n")
                chunked = True
            else:
                keep = False  # HTTP/1.0: the body ends when the connection does
        if keep:
            parts.append(b"Connection: keep-alive\r\n")
            if loc.keepalive_header is not None:
                parts.append(b"Keep-Alive: timeout=%d\r\n" % int(loc.keepalive_header))
        else:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        head = b"".join(parts)
        ex.keep_alive = keep
        ex.bytes_sent = len(head)
        if ex.head or status in NO_BODY:
            for part in response.parts or ():
                if isinstance(part, FilePart) and part.owner is not None:
                    part.owner.release()
            self.transport.write(head)
            self.finish(ex)
        elif response.parts is not None:
            self.send_parts(ex, head, response.parts)
        elif stream is not None:
            self.transport.write(head)
            self.task = asyncio.get_running_loop().create_task(self.send_stream(ex, stream, chunked))
        else:
            body = response.body
            self.transport.write(head + body if body else head)
            ex.body_bytes_sent = len(body)
            ex.bytes_sent += len(body)
            self.finish(ex)

    def send_parts(self, ex: Exchange, head: bytes, parts: list[bytes | FilePart]) -> None:
        first = parts[0]
        if self.raw is not None and not self.write_blocked and isinstance(first, FilePart):
            # the header and the file leave in as few segments as the kernel can make
            try:
                sent = self.raw.send(head, MSG_MORE)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.abort(f"send failed: {exc.strerror}", parts)
                return
            if sent < len(head):
                self.transport.write(head[sent:])
        else:
            self.transport.write(head)
        self.out.extend(parts)
        self.out_ex = ex
        self.pump()

    def pump(self) -> None:
        """Send queued body parts until done or the socket is full."""
        out = self.out
        ex = self.out_ex
        while out:
            if self.write_blocked:
                return
            part = out[0]
            if type(part) is bytes:
                out.popleft()
                ex.body_bytes_sent += len(part)
                ex.bytes_sent += len(part)
                self.transport.write(part)
                continue
            sent = 0
            if self.raw is not None:
                try:
                    sent = os.sendfile(self.fd, part.fd, part.offset, part.length)
                except BlockingIOError:
                    sent = -1
                except OSError as exc:
                    if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        self.raw = None  # this pair cannot sendfile: copy from now on
                        continue
                    self.abort(f"sendfile() failed: {exc.strerror}")
                    return
                if sent == 0:
                    self.abort(f'file "{getattr(part.owner, "path", "?")}" was truncated while sending')
                    return
            if sent <= 0:
                # the socket is full (or no sendfile): one chunk through the transport,
                # which watches writability and calls resume_writing when it has drained
                size = min(part.length, CHUNK)
                try:
                    chunk = os.pread(part.fd, size, part.offset)
                except OSError as exc:
                    self.abort(f"read failed: {exc.strerror}")
                    return
                if not chunk:
                    self.abort(f'file "{getattr(part.owner, "path", "?")}" was truncated while sending')
                    return
                sent = len(chunk)
                self.transport.write(chunk)
            part.offset += sent
            part.length -= sent
            ex.body_bytes_sent += sent
            ex.bytes_sent += sent
            if part.length == 0:
                out.popleft()
                if part.owner is not None:
                    part.owner.release()
        self.out_ex = None
        self.finish(ex)

    async def send_stream(self, ex: Exchange, stream: Any, chunked: bool) -> None:
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                data = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
                self.transport.write(data)
                ex.body_bytes_sent += len(chunk)
                ex.bytes_sent += len(data)
                if self.write_blocked:
                    await self.drain()
            if chunked:
                self.transport.write(b"0\r\n\r\n")
                ex.bytes_sent += 5
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # too late for an error status: an unterminated body tells the client it failed
            error_log.error(f"response body failed mid-stream: {exc!r}", self.id)
            self.task = None
            self.abort(f"stream failed: {exc!r}")
            return
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        self.task = None
        self.finish(ex)

    async def drain(self) -> None:
        if not self.write_blocked:
            return
        loop = asyncio.get_running_loop()
        self.drain_waiter = loop.create_future()
        await self.drain_waiter

    def finish(self, ex: Exchange) -> None:
        """The response is in the kernel's (or the transport's) hands: log, then go on."""
        self.log(ex)
        if self.record is not None:
            self.record.request_done(ex)
        self.active = None
        self.last_location = ex.location
        if not ex.keep_alive:
            self.close(_close_reason(ex), linger=ex.status in dispatch.CLOSE_AFTER or self.reading != IDLE)
            return
        if not self.write_blocked:
            self.next_request()
        else:
            self.set_deadline("send", self.send_timeout())

    def next_request(self) -> None:
        """Answer the next queued request, or parse held input, or wait for more."""
        if self.closed or self.reading == LINGER:
            return
        if self.queue:
            self.start(self.queue.popleft())
            return
        if self.held:
            if self.feeding:
                asyncio.get_running_loop().call_soon(self.next_request)
                return
            data = b"".join(self.held)
            self.held.clear()
            self.feed(data)
            if self.active is not None or self.closed:
                return
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        if self.reading == IDLE and self.active is None:
            loc = self.last_location
            self.set_deadline("keepalive", loc.keepalive_timeout if loc else 75.0)

    def log(self, ex: Exchange) -> None:
        loc = ex.location
        if loc is None:
            loc = (ex.server or self.group.default).fallback
        for access_log in loc.access_logs:
            access_log.log(ex)

    # --- flow control, timeouts, closing ----------------------------------------------

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def send_timeout(self) -> float:
        ex = self.active or self.out_ex
        loc = ex.location if ex is not None and ex.location is not None else self.last_location
        return loc.send_timeout if loc is not None else 60.0

    def set_deadline(self, kind: str, timeout: float) -> None:
        self.timeout_kind = kind
        self.deadline = self.worker.clock() + timeout

    def on_timeout(self) -> None:
        """Called by the worker's sweeper once `deadline` has passed."""
        kind = self.timeout_kind
        self.deadline = 0.0
        if kind in ("header", "body") and self.active is None and not self.write_blocked:
            error = HttpError(408, f"client timed out reading the request {kind}", close=True)
            self.fail_parse(error)
        elif kind in ("header", "body") and self.active is not None:
            return  # the exchange being answered sets its own deadlines
        else:
            self.close(f"{kind}_timeout" if kind != "first_request" else "client_header_timeout")

    def close(self, reason: str, linger: bool = False) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        if not self.closed_by:
            self.closed_by = "server"
            self.close_reason = reason
        if self.record is not None:
            self.record.closing(self)
        if linger and not self.peer_eof and self.transport.can_write_eof():
            # nginx's lingering close: send FIN, then read and drop what the client still
            # sends, so that unread input does not make the kernel answer with a reset
            # that would destroy the response before the client has read it
            self.reading = LINGER
            self.held.clear()
            self.queue.clear()
            self.transport.write_eof()
            if self.paused:
                self.paused = False
                self.transport.resume_reading()
            self.set_deadline("linger", LINGER_TIMEOUT)
            return
        self.transport.close()

    def abort(self, reason: str, parts: list[bytes | FilePart] | None = None) -> None:
        error_log.info(f"{reason}, client: {self.remote_addr}", self.id)
        for part in parts or ():
            if isinstance(part, FilePart) and part.owner is not None:
                part.owner.release()
        if not self.closed_by:
            self.closed_by = "server"
            self.close_reason = reason
        if self.record is not None and not self.closed:
            self.record.closing(self)
        if self.transport is not None:
            self.transport.abort()

    @property
    def local_address(self) -> tuple[str, int]:
        if self._local is None:
            sockname = self.transport.get_extra_info("sockname") if self.transport else None
            self._local = (sockname[0], sockname[1]) if sockname else ("", 0)
        return self._local

    @property
    def local_addr(self) -> str:
        return self.local_address[0]

    @property
    def local_port(self) -> int:
        return self.local_address[1]


def _has_body(ex: Exchange) -> bool:
    headers = ex.headers
    if b"transfer-encoding" in headers:
        return True
    length = headers.get(b"content-length")
    return length is not None and length.strip() not in (b"0", b"")


def _host_name(host: bytes) -> str:
    """Lower-case host without port; IPv6 literals keep their brackets. 400 if malformed."""
    text = host.decode("latin-1").strip().lower()
    if any(c in text for c in "/\\ \t\x00") or text.startswith("."):
        raise HttpError(400, f"invalid host in request: {text!r}", close=True)
    if text.startswith("["):
        end = text.find("]")
        return text[: end + 1] if end > 0 else text
    colon = text.rfind(":")
    if colon >= 0:
        text = text[:colon]
    return text.rstrip(".")


def _close_reason(ex: Exchange) -> str:
    if ex.status in dispatch.CLOSE_AFTER or ex.error is not None:
        return f"error_{ex.status}"
    return "connection_close"
