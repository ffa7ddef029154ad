"""A connection to a `listen ... proxy_protocol` address: the PROXY header before anything.

    accepted ──bytes──▶ HEADER (buffered, proxy_protocol.parse) ──valid──▶ the connection's
        │                    │                                  own first bytes: HTTP, or
        │                    │                                  the TLS ClientHello
        │                    └──broken, too long, untrusted peer──▶ closed (info, once)
        └──no header within client_header_timeout──▶ closed (info, once)

The stage is a mixin put in front of Connection (plain) or TlsConnection (`ssl`), so the
connection is made as usual at accept (its lifecycle record reads the SYN and TCP_INFO of
the balancer's hop then) and only `data_received` is looked at first: the header is
consumed, the bytes after it go on in the same call (a request pipelined behind the header
is not delayed). With `ssl` the TLS layer is put in only after the header, as nginx does.

Trust (`set_real_ip_from` + `real_ip_header proxy_protocol` of the address's default
server): a trusted balancer's client address and port become the connection's
`remote_addr`/`remote_port`; a PROXY header from any other peer is refused (the issue's
rule, stricter than nginx: see README). Without `set_real_ip_from` every header is
accepted and only the $proxy_protocol_* variables and the lifecycle record carry it.

Only proxy_protocol listeners make these (worker.py): other connections never run this
code. Never parses HTTP, never logs a bad header above info.
"""

from __future__ import annotations

from typing import Any

from .connection import Connection
from .logs import error_log
from .proxy_protocol import V1_MAX, ProxyHeader, ProxyProtocolError, parse
from .tls_connection import FAILED, TlsConnection

_SHOWN = V1_MAX  # bytes of a broken header quoted in the error log


class ProxyStage:
    """The PROXY header stage, in front of a Connection class (see the module docstring).
    `proxy_buf` is the header so far while it is awaited, None once it is done."""

    __slots__ = ()

    def data_received(self: Any, data: bytes) -> None:
        buf = self.proxy_buf
        if buf is None:
            super().data_received(data)  # type: ignore[misc]
            return
        if buf:
            data = buf + data
        try:
            header = parse(data)
        except ProxyProtocolError as exc:
            if exc.reason == "broken header":  # (nginx's wording, the bytes quoted)
                self.refuse_proxy(f'broken header: "{_quote(data)}" while reading PROXY protocol')
            else:
                self.refuse_proxy(f"{exc.reason} while reading PROXY protocol")
            return
        if header is None:
            self.proxy_buf = data
            return
        self.proxy_buf = None
        if not self.accept_proxy(header):
            return
        rest = data[header.length :]
        if rest:
            super().data_received(rest)  # type: ignore[misc]

    def accept_proxy(self: Any, header: ProxyHeader) -> bool:
        """Keep the header; with a trusted balancer, its client is the connection's."""
        self.proxy = header
        real_ip = self.group.default.real_ip
        replaced = False
        if real_ip is not None:
            if not real_ip.trusts(self.remote_addr):
                self.refuse_proxy(
                    f"PROXY protocol header from untrusted address {self.remote_addr} "
                    "refused (not in set_real_ip_from)"
                )
                return False
            if header.src_addr is not None:
                self.remote_addr, self.remote_port = header.src_addr, header.src_port
                replaced = True
        record = self.record
        if record is not None:
            info = header.to_json()
            info["balancer"] = {"addr": record.remote_addr, "port": record.remote_port}
            info["real_ip"] = replaced  # whether the client became $remote_addr
            record.proxy = info
        return True

    def refuse_proxy(self: Any, message: str) -> None:
        """Close at once, without an answer, and say why once at info."""
        self.proxy_buf = None
        self.stop_parsing = True
        error_log.info(
            f"{message}, client: {self.remote_addr}, server: {self.listener.address.display()}",
            self.id,
        )
        if not self.closed_by:
            self.closed_by, self.close_reason = "server", "proxy_protocol"
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def on_timeout(self: Any) -> None:
        if self.proxy_buf is not None:
            self.deadline = 0.0
            self.refuse_proxy("client timed out while reading PROXY protocol")
            return
        super().on_timeout()  # type: ignore[misc]


class ProxyConnection(ProxyStage, Connection):
    __slots__ = ("proxy", "proxy_buf")

    def __init__(self, worker: Any, listener: Any) -> None:
        super().__init__(worker, listener)
        self.proxy: ProxyHeader | None = None
        self.proxy_buf: bytes | None = b""


class ProxyTlsConnection(ProxyStage, TlsConnection):
    __slots__ = ("proxy", "proxy_buf")

    def __init__(self, worker: Any, listener: Any) -> None:
        super().__init__(worker, listener)
        self.proxy: ProxyHeader | None = None
        self.proxy_buf: bytes | None = b""

    def refuse_proxy(self, message: str) -> None:
        self.tls_phase = FAILED  # no handshake was tried: nothing to count as a TLS failure
        ProxyStage.refuse_proxy(self, message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.proxy_buf is not None:  # gone before its PROXY header: not a TLS failure
            self.tls_phase = FAILED
        super().connection_lost(exc)


def protocol_class(listener: Any) -> type[Connection]:
    """The connection class for a listener (worker.py)."""
    if listener.proxy_protocol:
        return ProxyConnection if listener.tls is None else ProxyTlsConnection
    return Connection if listener.tls is None else TlsConnection


def _quote(data: bytes) -> str:
    """The header as nginx quotes it: printable ASCII as is, the rest escaped, bounded."""
    out = data[:_SHOWN].decode("latin-1").encode("unicode_escape").decode("ascii")
    return out.replace('"', '\\"') + ("..." if len(data) > _SHOWN else "")
