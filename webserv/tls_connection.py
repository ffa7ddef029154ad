"""A connection to a `listen ... ssl` address: the TLS handshake before HTTP, and its record.

    accepted ──first bytes 0x16 / SSLv2──▶ HANDSHAKE ──done──▶ READY (HTTP over TLS)
        │                                     └──alert, bad record, client gone──▶ FAILED
        └──any other first byte──▶ PLAIN: parsed as HTTP, answered nginx's 400
    PEEK and HANDSHAKE end at client_header_timeout (nginx's limit on a handshake) ▶ FAILED

The connection reads its first bytes itself (the TCP transport's protocol until then), so
it sees a plain HTTP request before any TLS layer does, and when they arrived: the
ClientHello's time. A ClientHello is then handed, with the bytes already read, to the
loop's own TLS protocol (uvloop's SSLProtocol, asyncio's where there is no uvloop: what
`loop.create_server(ssl=...)` makes), put between the TCP transport and this connection;
it calls connection_made again with the TLS transport once the handshake is done, before
any request byte. The handshake's cost in RTTs is its duration over the kernel's RTT at
accept.

Only TLS listeners make these (worker.py): the plain-HTTP path never runs this code.
Never parses HTTP itself, never logs a handshake failure above info.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from . import tls
from .config.model import Listener
from .connection import LINGER_AFTER_CLOSE, LINGER_AFTER_ERROR, Connection
from .http.errors import HttpError
from .http.request import host_name
from .http.response import Response
from .http.status import SERVER_BARE, SERVER_WITH_VERSION
from .logs import error_log
from .tcpinfo import field_reader

PEEK, HANDSHAKE, READY, PLAIN, FAILED = 1, 2, 3, 4, 5
PLAIN_HTTP_STATUS = 497  # nginx's internal code: answered as 400 with its own page
_RTT = field_reader("rtt")


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol the loop's own create_server(ssl=...) uses."""
    try:
        import uvloop

        if isinstance(loop, uvloop.Loop):
            return uvloop.loop.SSLProtocol
    except (ImportError, AttributeError):
        pass
    from asyncio.sslproto import SSLProtocol

    return SSLProtocol


class TlsConnection(Connection):
    __slots__ = ("tls_phase", "scheme", "https", "tls", "tcp", "t_hello")

    def __init__(self, worker: Any, listener: Listener) -> None:
        super().__init__(worker, listener)
        self.tls_phase = PEEK
        self.scheme = "http"  # $scheme: "https" once the handshake is done
        self.https = ""
        self.tls: dict[str, Any] | None = None  # what the handshake was (lifecycle `tls`)
        self.tcp: Any = None  # the TCP transport under the TLS one
        self.t_hello = 0.0

    # --- before the handshake ----------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        if self.tls_phase == HANDSHAKE:
            self.handshake_done(transport)  # the second time: the TLS transport
            return
        super().connection_made(transport)
        self.tcp = transport

    def data_received(self, data: bytes) -> None:
        if self.tls_phase == PEEK:
            self.first_bytes(data)
            return
        Connection.data_received(self, data)

    def first_bytes(self, data: bytes) -> None:
        self.t_hello = time.time()
        if data[0] == 0x16 or data[0] & 0x80:  # a TLS record (or an SSLv2 ClientHello)
            self.start_tls(data)
            return
        # nginx's rule: anything else is plain HTTP, parsed and answered 400 (see below)
        self.tls_phase = PLAIN
        self.count_failure("plain_http")
        Connection.data_received(self, data)

    def start_tls(self, data: bytes) -> None:
        """Put the loop's TLS protocol under this connection and give it what came."""
        self.tls_phase = HANDSHAKE
        loop = self.worker.loop
        waiter = loop.create_future()
        waiter.add_done_callback(self.handshake_ended)
        protocol = _ssl_protocol_class(loop)(
            loop,
            self,
            self.listener.tls[self.group],
            waiter,
            True,  # server side
            None,
            ssl_handshake_timeout=self.group.default.client_header_timeout + 5.0,  # a backstop
            ssl_shutdown_timeout=LINGER_AFTER_ERROR,
        )
        tcp = self.tcp
        tcp.set_protocol(protocol)
        protocol.connection_made(tcp)
        view = memoryview(data)
        while view and self.tls_phase == HANDSHAKE and not tcp.is_closing():
            buf = protocol.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            protocol.buffer_updated(n)

    # --- the handshake ------------------------------------------------------------------

    def handshake_ended(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.handshake_failed("closed", None)
        elif waiter.exception() is not None:
            exc = waiter.exception()
            self.handshake_failed(tls.failure_reason(exc), exc)

    def handshake_done(self, app: Any) -> None:
        now = time.time()
        self.transport = app
        # (the TLS transport pauses at size >= high, so 0 would pause it for good: 1 means
        # "a byte waits", as high=0 does on the TCP transport below it)
        app.set_write_buffer_limits(high=1)
        self.sendfile = False  # the bytes go through the TLS layer: read, encrypt, write
        self.scheme, self.https = "https", "on"
        self.tls_phase = READY
        sslobj = app.get_extra_info("ssl_object")
        cipher = sslobj.cipher() if sslobj is not None else None
        seconds = now - self.t_hello
        record = self.record
        rtt_us = _RTT(record.info_accept) if record is not None and record.info_accept else None
        self.tls = info = {
            "version": sslobj.version() if sslobj is not None else None,
            "cipher": cipher[0] if cipher else None,
            "sni": tls.sni_of(sslobj),
            "alpn": sslobj.selected_alpn_protocol() if sslobj is not None else None,
            "resumed": bool(sslobj.session_reused) if sslobj is not None else False,
            "client_hello_at": self.t_hello,
            "done_at": now,
            "handshake_ms": round(seconds * 1000, 3),
            "handshake_rtts": round(seconds * 1e6 / rtt_us, 1) if rtt_us else None,
            "failure": None,
        }
        if record is not None:
            record.tls = info
        stats = self.worker.stats
        if stats is not None:
            stats.tls_handshake_done(seconds)

    def count_failure(self, reason: str) -> None:
        stats = self.worker.stats
        if stats is not None:
            stats.tls_handshake_failed(reason)
        self.tls = {"failure": reason, "client_hello_at": self.t_hello or None}
        if self.record is not None:
            self.record.tls = self.tls

    def handshake_failed(self, reason: str, exc: BaseException | None) -> None:
        """Count it once, say it at info level, and close (TCP_INFO is read first)."""
        if self.tls_phase in (FAILED, READY, PLAIN) or self.closed:
            return
        self.tls_phase = FAILED
        self.count_failure(reason)
        error_log.info(
            f"SSL handshake failed ({reason}: {tls.describe(exc)}), client: {self.remote_addr}",
            self.id,
        )
        if not self.closed_by or reason == "timeout":
            self.closed_by = "client" if reason == "closed" else "server"
            self.close_reason = f"tls_{reason}"
        self.give_up(exc)

    def give_up(self, exc: BaseException | None) -> None:
        tcp = self.tcp
        Connection.connection_lost(self, exc)  # before the descriptor goes: the kernel's numbers
        self.closed = True
        if tcp is not None and not tcp.is_closing():
            tcp.abort()

    # --- the Connection's events, during the handshake -----------------------------------

    def on_timeout(self) -> None:
        if self.tls_phase in (PEEK, HANDSHAKE):
            self.deadline = 0.0
            self.handshake_failed("timeout", None)
            return
        super().on_timeout()

    def close(self, reason: str, linger: float = LINGER_AFTER_CLOSE) -> None:
        if self.tls_phase in (PEEK, HANDSHAKE):
            if not self.closed_by:
                self.closed_by, self.close_reason = "server", reason
            self.tls_phase = FAILED
            self.give_up(None)
            return
        super().close(reason, linger)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        if self.tls_phase in (PEEK, HANDSHAKE):
            self.handshake_failed("closed", exc)
            return
        super().connection_lost(exc)

    # --- plain HTTP on the TLS port --------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self.tls_phase != PLAIN:
            super().on_headers_complete()
            return
        # as nginx: the whole header section is read (and its server found, for the log and
        # an `error_page 497`), then the request is refused, before any body is read
        ex = self.ex
        parser = self.parser
        ex.keep_alive = False
        method = parser.get_method()
        ex.method = method.decode("ascii", "replace")
        ex.head = method == b"HEAD"
        version = parser.get_http_version()
        ex.version = f"HTTP/{version}"
        ex.minor = 0 if version == "1.0" else 1
        ex.raw_target = self.url
        host = ex.headers.get(b"host")
        ex.host = host_name(host) if host is not None else ""
        ex.server = self.worker.routes.server(self.group, ex.host)
        raise HttpError(
            PLAIN_HTTP_STATUS, "client sent plain HTTP request to HTTPS port", close=True
        )

    def send_error(self, ex: Any, err: HttpError) -> None:
        if err.status != PLAIN_HTTP_STATUS:
            super().send_error(ex, err)
            return
        loc = ex.location or ex.server.fallback
        ex.location = loc
        loc.error_log.info(
            f'{err.reason}, client: {self.remote_addr}, request: "{ex.request_line}"', self.id
        )
        if PLAIN_HTTP_STATUS in loc.error_pages:
            from . import dispatch

            self.send(ex, dispatch.error_response(ex, err))
            return
        server = SERVER_WITH_VERSION if loc.server_tokens else SERVER_BARE
        body = tls.plain_http_page(server)
        self.send(ex, Response(400, b"Content-Type: text/html\r\n", body, close=True))


def quiet_handshake_errors(loop: asyncio.AbstractEventLoop) -> None:
    """The loop reports a failed handshake to its exception handler (error level, with a
    traceback): these are counted and logged at info by TlsConnection instead."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            error_log.info(f"{context.get('message', 'SSL error')}: {tls.describe(exc)}")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
