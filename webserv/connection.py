"""One client connection: bytes in, parser events, routing, keep-alive, timeouts, closing.

The Protocol moves bytes; it does not know about files, CGI or uploads (dispatch.py and the
handlers do), and writing is writer.py's half of the same object. Two small state machines
run side by side, because with pipelining the next request can be read while the previous
one is still being answered:

    reading    IDLE ──first byte──▶ HEADERS ──headers done──▶ BODY ──message done──▶ IDLE
               any ──error / close──▶ LINGER (discard input until EOF or the linger timeout)
    answering  free ──start(exchange)──▶ busy ──response handed to the kernel──▶ free

One exchange is answered at a time. Requests completed meanwhile wait in `queue`; input that
arrives meanwhile waits unparsed in `held` with reading paused, so a client can never make
the server buffer more than one read.

Each state has one timer, kept as `deadline` and fired by the worker's sweeper:

    IDLE before the first request  client_header_timeout  → close (nothing to answer)
    IDLE after a response          keepalive_timeout      → close
    HEADERS                        client_header_timeout  → 408, close
    BODY                           client_body_timeout    → 408, close (renewed per read)
    writes blocked                 send_timeout           → close (renewed per progress)
    LINGER                         LINGER_AFTER_*         → close

Connection is one object in five modules, a single chain of bases sharing its slots:
framing.InputFraming → writer.ResponseWriter → reader.RequestReader → lifetime.Lifetime →
Connection (the protocol's methods are its own: no asyncio.Protocol base). One chain, not
mixins, so that the compiled build (setup.py) makes each an extension type whose slots are
C fields (framing.pxd) and hot methods C calls (each module's .pxd); as .py, the same.
"""

from __future__ import annotations

import _socket  # the C type: socket.socket's Python __init__ and detach cost 0.7 µs more
import asyncio
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

from . import dispatch
from .config.model import Listener, Location
from .framing import BODY, IDLE, LINGER
from .http.errors import HttpError
from .http.request import Exchange
from .http.response import FilePart, Response
from .lifetime import LINGER_AFTER_CLOSE, LINGER_AFTER_ERROR, Lifetime
from .reader import CONTINUE, PAUSE_HELD
from .tcpinfo import read_tcp_info

SENDFILE = sys.platform.startswith("linux")
FOLD_BATCH = 256  # finished exchanges waiting to be counted (see Worker.fold)
SERVER_FAILURES = frozenset({500, 502, 503, 504, 507})  # logged at error level
# a 404 whose reason is one of these is a file not found (files.py, static.py: log_not_found)
_NOT_FOUND = ("open() ", '"')


_now = time.time
_AF_INET, _AF_INET6, _SOCK_STREAM = (
    int(socket.AF_INET),
    int(socket.AF_INET6),
    int(socket.SOCK_STREAM),
)


class Connection(Lifetime):
    __slots__ = (
        "worker", "listener", "group", "transport", "raw", "fd", "sendfile", "parser",
        "id", "requests",
        "remote_addr", "remote_port", "_local", "ex", "active", "queue", "held", "reading",
        "url", "header_size", "write_blocked", "out", "out_ex", "deadline", "timeout_kind",
        "paused", "peer_eof", "closed", "close_reason", "closed_by", "feeding", "task",
        "drain_waiter", "last_location", "record", "aborted", "stop_parsing", "clock", "memo",
        "line_spaces", "upgrade_body", "tcp_every", "started", "pipeline",
    )  # fmt: skip
    # a plain connection's; a TlsConnection (tls_connection.py) has its own per connection
    scheme = "http"
    https = ""
    tls = None
    proxy = None  # `listen ... proxy_protocol`: its ProxyHeader (proxy_connection.py)

    def __init__(self, worker: Any, listener: Listener) -> None:
        self.worker = worker
        self.clock = worker.clock
        self.listener = listener
        self.group = next(iter(listener.groups.values()))
        self.memo = worker.routes.for_group(self.group)  # (Host, target) → route
        self.transport: Any = None
        self.raw: _socket.socket | None = None  # see raw_socket
        self.fd = -1
        self.sendfile = SENDFILE  # False once sendfile failed on this socket: copy instead
        self.parser = self.new_parser()  # llhttp, and its leniencies: see reader.py
        self.id = 0
        self.requests = 0
        self.remote_addr = "-"
        self.remote_port = 0
        self._local: tuple[str, int] | None = None
        self.ex: Exchange | None = None  # the request being read
        self.active: Exchange | None = None  # the request being answered
        self.queue: deque[Exchange] | tuple[()] = ()  # a deque once one waits (answer_or_wait)
        self.held: list[bytes] = []
        self.reading = IDLE
        self.url = b""  # the request target so far (llhttp may hand it over in pieces)
        self.header_size = 0  # bytes of the header section in progress (see reader.py)
        self.line_spaces = -1  # spaces in its request line so far; -1 once it is complete
        self.write_blocked = False
        self.out: list[bytes | FilePart] = []  # body parts still to send (few: a list)
        self.out_ex: Exchange | None = None
        self.deadline = 0.0
        self.timeout_kind = ""
        self.paused = 0  # PAUSE_* bits
        self.peer_eof = False
        self.closed = False
        self.close_reason = ""
        self.closed_by = ""
        self.feeding = False
        self.pipeline = False  # $pipe: what is parsed now came in a read with a request before
        self.task: asyncio.Task[Any] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.last_location: Location | None = None
        self.record: Any = None  # lifecycle.Record when instrumentation is on
        self.tcp_every = 0  # lifecycle_request_tcpinfo of its record (0: none per request)
        self.stop_parsing = False  # no more input is parsed: it is dropped as it arrives
        self.upgrade_body: Any = None  # reader.UpgradeBody, between its header section and body
        self.aborted = False  # closed with a reset (abort), not a FIN
        self.started = 0.0  # time.time() at accept (worker.connection_opened)

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=0)
        self.fd = transport.get_extra_info("socket").fileno()
        peer = transport.get_extra_info("peername")
        if peer:
            self.remote_addr, self.remote_port = peer[0], peer[1]
        if self.listener.needs_local_address:
            local = self.local_address
            groups = self.listener.groups
            self.group = groups.get(local) or groups.get(("", local[1])) or self.group
            self.memo = self.worker.routes.for_group(self.group)
        if self.worker.connection_opened(self):
            self.set_deadline("first_request", self.group.default.client_header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.reading == LINGER or self.stop_parsing:
            return
        if self.held or (self.active is not None and self.ex is not self.active):
            # still answering: keep the bytes unparsed and stop reading until we are free
            # (the body of the exchange being answered is the exception: its handler waits)
            self.held.append(data)
            self.pause(PAUSE_HELD)
            return
        self.feed(data)

    def eof_received(self) -> bool:
        self.peer_eof = True
        if not self.closed_by:
            self.closed_by = "client"
            self.close_reason = "client sent FIN"
        if self.reading == BODY and self.ex is not None and not self.stop_parsing:
            # the body can never complete now: fail it at once (nginx: "client prematurely
            # closed connection"), not after client_body_timeout with a temp file waiting
            self.fail_parse(HttpError(400, "client closed the connection mid-body", close=True))
        if self.reading != LINGER and (self.active is not None or self.queue):
            return True  # half-closed: finish answering, then close
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.closed_by:
            self.closed_by = "reset" if exc is not None else "client"
            self.close_reason = f"{type(exc).__name__}: {exc}" if exc else "client closed"
        self.release_parts(self.out)
        self.out.clear()
        if self.ex is not None and self.ex.body is not None:
            self.ex.body.fail(ConnectionResetError("client closed the connection mid-body"))
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_exception(ConnectionResetError("client went away"))
        ex = self.active
        if ex is not None:
            # never finished: the client went away before the answer (499, nginx's "client
            # closed request") or the answer was cut short; either is logged and counted
            if ex.status == 0:
                ex.status = 499
            ex.t_done = _now()
            self.log(ex)
            finished = self.worker.finished
            if finished is not None:
                finished.append(ex)
        self.worker.connection_closed(self)
        if self.raw is not None:
            self.raw.detach()
            self.raw = None
        # the parser holds this protocol for its callbacks: break the cycle, so the
        # connection is freed now by reference counting, not later by the cyclic GC
        self.parser = None

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

    # --- answering ---------------------------------------------------------------------

    def start(self, ex: Exchange) -> None:
        self.active = ex
        if ex.expect_continue and ex.error is None:
            ex.expect_continue = False
            if ex.body is None or not ex.body.error:
                self.transport.write(CONTINUE)
        if ex.error is not None:
            self.send_error(ex, ex.error)
            return
        try:
            result = dispatch.handle(ex)
        except HttpError as err:
            self.send_error(ex, err)
            return
        except Exception as exc:  # a bug in a handler must cost one request, not the worker
            self.send_error(ex, self.internal_error(ex, exc))
            return
        if type(result) is Response:
            self.send(ex, result)
        else:
            self.task = asyncio.get_running_loop().create_task(self.wait_for(ex, result))

    async def wait_for(self, ex: Exchange, awaitable: Awaitable[Response]) -> None:
        try:
            response = await awaitable
        except HttpError as err:
            self.task = None
            if not self.closed:
                self.send_error(ex, err)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.task = None
            if not self.closed:
                self.send_error(ex, self.internal_error(ex, exc))
            return
        self.task = None
        if not self.closed:
            self.send(ex, response)

    def location_of(self, ex: Exchange) -> Location:
        """The settings a request's messages and answer follow: its location's, the
        server's own before routing."""
        return ex.location or (ex.server or self.group.default).fallback

    def error_log_of(self, ex: Exchange) -> Any:
        """The error log of a request's messages (error_log at any level)."""
        return self.location_of(ex).error_log

    def internal_error(self, ex: Exchange, exc: Exception) -> HttpError:
        log = self.error_log_of(ex)
        log.error(f'unhandled {exc!r} while answering "{ex.request_line}"', self.id)
        if log.enabled("debug"):
            import traceback

            log.debug(traceback.format_exc(), self.id)
        return HttpError(500, "")

    def send_error(self, ex: Exchange, err: HttpError) -> None:
        if err.reason:
            # what a client can cause (501, 505, every 4xx) is its business, as nginx logs it:
            # at error level, anyone could fill the error log; a server failure stays there.
            # A file not found is at error level, as nginx's `log_not_found on` (the default)
            status = err.status
            loc = self.location_of(ex)
            if status in SERVER_FAILURES:
                level = "error"
            elif status == 404 and err.reason.startswith(_NOT_FOUND):
                level = "error" if loc.log_not_found else ""
            else:
                level = "info"
            if level:
                loc.error_log.log(
                    level,
                    f'{err.reason}, client: {self.remote_addr}, request: "{ex.request_line}"',
                    self.id,
                )
        self.send(ex, dispatch.error_response(ex, err))

    def finish(self, ex: Exchange) -> None:
        """The response is in the kernel's (or the transport's) hands: log, then go on."""
        ex.t_done = _now()
        if ex.cleanup is not None:  # (a phase's: limit_conn's counts)
            ex.cleanup()
        if ex.tcp_start is not None:  # (lifecycle_request_tcpinfo) handed to the kernel now
            ex.tcp_end = read_tcp_info(self.raw) if self.raw is not None else None
        loc = ex.location
        if not ex.keep_alive and not self.closed_by:
            # decided now, so that $closed_by in this request's log line already knows
            self.closed_by, self.close_reason = "server", _close_reason(ex)
        for access_log in loc.access_logs:
            access_log.log(ex)
        finished = self.worker.finished
        if finished is not None:
            # counted and recorded in batches (Worker.fold): the same work, but done in one
            # loop it costs a fraction of what it costs between two requests (measured)
            finished.append(ex)
            if len(finished) >= FOLD_BATCH:
                self.worker.fold()
        self.active = None
        self.last_location = loc
        if not ex.keep_alive:
            error = ex.status in dispatch.CLOSE_AFTER or self.reading != IDLE
            self.close(_close_reason(ex), LINGER_AFTER_ERROR if error else LINGER_AFTER_CLOSE)
        elif self.write_blocked:
            self.set_deadline("send", loc.send_timeout)
        elif self.queue or self.held or self.paused & PAUSE_HELD:
            self.next_request()
        elif self.reading == IDLE:
            self.timeout_kind = "keepalive"
            self.deadline = self.clock() + loc.keepalive_timeout

    def next_request(self) -> None:
        """Answer the next queued request, or parse held input, or wait for more."""
        if self.closed or self.reading == LINGER:
            return
        if self.queue:
            ex = self.queue.popleft()  # type: ignore[union-attr]
            if self.record is not None:
                ex.t_response = _now()  # it waited: answering starts now, not when it arrived
            self.start(ex)
            if self.active is not None and self.ex is not self.active:
                return  # busy answering; input stays held until then
        if self.held:
            if self.feeding:
                asyncio.get_running_loop().call_soon(self.next_request)
                return
            data = b"".join(self.held)
            self.held.clear()
            self.feed(data)
            if self.active is not None or self.closed:
                return
        self.resume(PAUSE_HELD)
        if self.reading == IDLE and self.active is None:
            # no answer yet: the server's own settings, as configured (no literal default)
            loc = self.last_location or self.group.default.fallback
            self.set_deadline("keepalive", loc.keepalive_timeout)

    def answer_or_wait(self, ex: Exchange) -> None:
        """Answer `ex` now if nothing is being answered or waits before it, else queue it.

        The queue is made when the first request waits: most connections never pipeline,
        and an empty deque costs 760 bytes (10,000 idle connections: 7 MiB)."""
        if self.active is None and not self.queue:
            self.start(ex)
        elif self.queue:
            self.queue.append(ex)  # type: ignore[union-attr]
        else:
            self.queue = deque((ex,))

    def log(self, ex: Exchange) -> None:
        """The line of an exchange that ends unfinished (444, the client gone)."""
        if ex.cleanup is not None:
            ex.cleanup()
        loc = self.location_of(ex)
        for access_log in loc.access_logs:
            access_log.log(ex)

    def raw_socket(self) -> _socket.socket:
        """A second Python object on the descriptor, for send(MSG_MORE) before a sendfile
        and for the lifecycle's getsockopt calls (the transport's own socket cannot send,
        and makes a new socket object for every getsockopt). Made on first use: without
        the lifecycle most answers never need it. Detached, never closed, when the
        connection ends."""
        raw = self.raw
        if raw is None:
            # (plain ints: the enum conversions of sock.family cost more than the call)
            family = _AF_INET6 if self.listener.address.ipv6 else _AF_INET
            raw = self.raw = _socket.socket(family, _SOCK_STREAM, 0, self.fd)
        return raw


def _close_reason(ex: Exchange) -> str:
    if ex.status in dispatch.CLOSE_AFTER or ex.error is not None:
        return f"error_{ex.status}"
    return "connection_close"
