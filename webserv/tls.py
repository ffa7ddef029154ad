"""TLS for `listen ... ssl`: SSL contexts from the ssl_* directives, SNI, failure reasons.

Owns turning a server's ssl_* settings into an `ssl.SSLContext` at load time (so `-t`
reports a missing, unreadable or mismatched key at its `file:line`, and the contexts are
made in the master before the workers fork: they share the session ticket keys), the entry
context of each listen group whose SNI callback picks the virtual server's certificate by
nginx's name rules, how a handshake failure is named (`FAILURE_REASONS`), and nginx's page
for a plain HTTP request on an HTTPS port. tls_connection.py drives the handshake.

Never opens a socket, never reads a byte from a client, never logs: a handshake failure is
bytes a client controls, and is counted, not shouted.
"""

from __future__ import annotations

import ctypes
import ssl
from dataclasses import dataclass
from typing import Any

from .config.errors import ConfigError
from .config.values import PathAt

PROTOCOLS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
ALPN = ["http/1.1"]
# why a handshake did not finish, as /metrics and the lifecycle log name it
FAILURE_REASONS = ("plain_http", "timeout", "closed", "alert", "version", "cipher", "protocol")
_VERSION_ERRORS = frozenset(
    {"UNSUPPORTED_PROTOCOL", "VERSION_TOO_LOW", "VERSION_TOO_HIGH", "NO_PROTOCOLS_AVAILABLE"}
)
_CIPHER_ERRORS = frozenset(
    {"NO_SHARED_CIPHER", "NO_SHARED_GROUPS", "NO_SUITABLE_SIGNATURE_ALGORITHM", "NO_CIPHERS"}
)

# nginx's page for its status 497 (sent as 400), ngx_http_special_response.c
PLAIN_HTTP_REASON = "The plain HTTP request was sent to HTTPS port"
_PLAIN_HTTP_PAGE = (
    "<html>\r\n<head><title>400 " + PLAIN_HTTP_REASON + "</title></head>\r\n<body>\r\n"
    "<center><h1>400 Bad Request</h1></center>\r\n"
    "<center>" + PLAIN_HTTP_REASON + "</center>\r\n"
    "<hr><center>{server}</center>\r\n</body>\r\n</html>\r\n"
)


def plain_http_page(server: str) -> bytes:
    return _PLAIN_HTTP_PAGE.format(server=server).encode()


@dataclass(slots=True, frozen=True)
class TlsSettings:
    """One server's effective ssl_* directives (paths absolute)."""

    certificate: PathAt
    certificate_key: PathAt
    protocols: tuple[str, ...]
    ciphers: str  # checked by its directive's parser
    session_timeout: float
    session_tickets: bool
    prefer_server_ciphers: bool


def make_context(settings: TlsSettings) -> ssl.SSLContext:
    """An SSLContext as the settings say; ConfigError at the guilty directive if not."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [PROTOCOLS[p] for p in settings.protocols]
    ctx.minimum_version = min(versions)
    ctx.maximum_version = max(versions)
    ctx.set_ciphers(settings.ciphers)
    if settings.prefer_server_ciphers:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if not settings.session_tickets:
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    ctx.set_alpn_protocols(ALPN)
    _load_pair(ctx, settings.certificate, settings.certificate_key)
    _set_session_timeout(ctx, settings.session_timeout)
    return ctx


def _load_pair(ctx: ssl.SSLContext, cert: PathAt, key: PathAt) -> None:
    """load_cert_chain, with each failure pinned on the directive that named the file."""
    for at, what in ((cert, "certificate"), (key, "certificate key")):
        try:
            with open(at.path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                at.file, at.line, f'cannot load {what} "{at.path}": {exc.strerror}'
            ) from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert.path)
    except (ssl.SSLError, ValueError):
        raise ConfigError(
            cert.file, cert.line, f'cannot load certificate "{cert.path}": no PEM certificate'
        ) from None
    try:
        # never a passphrase prompt on the terminal: an encrypted key is an error
        ctx.load_cert_chain(cert.path, key.path, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                key.file,
                key.line,
                f'SSL_CTX_use_PrivateKey("{key.path}") failed (key values mismatch: the key '
                f'is not the one of "{cert.path}")',
            ) from None
        raise ConfigError(
            key.file,
            key.line,
            f'cannot load certificate key "{key.path}": {exc.reason or exc.strerror}',
        ) from None


def _set_session_timeout(ctx: ssl.SSLContext, seconds: float) -> None:
    """SSL_CTX_set_timeout, which Python's ssl module does not expose: through ctypes on
    the SSL_CTX pointer that follows the object header, checked by reading a plausible
    default back first (OpenSSL's: 7200 s). Where that cannot be done, that default stays."""
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # its libssl symbols: the very library in use
        lib.SSL_CTX_get_timeout.restype = ctypes.c_long
        lib.SSL_CTX_get_timeout.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_timeout.restype = ctypes.c_long
        lib.SSL_CTX_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_long]
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not pointer or not 0 < lib.SSL_CTX_get_timeout(pointer) <= 86400 * 365:
            return
        lib.SSL_CTX_set_timeout(pointer, max(1, int(seconds)))
    except (OSError, AttributeError, ValueError):
        return


def session_timeout(ctx: ssl.SSLContext) -> int | None:
    """The context's session timeout in seconds (for tests and the status page)."""
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)
        lib.SSL_CTX_get_timeout.restype = ctypes.c_long
        lib.SSL_CTX_get_timeout.argtypes = [ctypes.c_void_p]
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        return int(lib.SSL_CTX_get_timeout(pointer)) if pointer else None
    except (OSError, AttributeError, ValueError):
        return None


def entry_context(group: Any) -> ssl.SSLContext:
    """The context a connection to `group`'s address starts with: its default server's,
    plus the SNI callback that moves the handshake to the named server's certificate (the
    HTTP virtual server is still chosen by Host, as nginx does)."""
    from .router import find_server

    ctx = make_context(group.default.tls)
    ctx.sni_callback = _sni_callback(group, find_server)
    return ctx


def _sni_callback(group: Any, find_server: Any) -> Any:
    def choose(sslobj: Any, name: str | None, ctx: ssl.SSLContext) -> None:
        sslobj.webserv_sni = name  # read back once the handshake is done (sni_of)
        if not name:
            return None
        server = find_server(group, name.lower().rstrip("."))
        target = server.ssl_context
        if target is not None and server is not group.default:
            sslobj.context = target
        return None

    return choose


def sni_of(sslobj: Any) -> str | None:
    return getattr(sslobj, "webserv_sni", None)


def failure_reason(exc: BaseException | None) -> str:
    """One of FAILURE_REASONS for what ended a handshake."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if "ALERT" in reason:
            return "alert"
        if reason in _VERSION_ERRORS:
            return "version"
        if reason in _CIPHER_ERRORS:
            return "cipher"
        return "protocol"
    if isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc):
        return "timeout"  # the loop's own handshake timer (a backstop of ours)
    return "closed"


def describe(exc: BaseException | None) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if exc is not None else "closed"
