"""Directive rows for TLS (`listen ... ssl`): nginx's ngx_http_ssl_module names, contexts and
defaults. Only parses and registers; tls.py builds the contexts.
"""

from __future__ import annotations

from .lexer import Statement
from .table import ANY, HS, _flag, _time, directive, fail
from .values import TLS_PROTOCOLS, PathAt


def _ssl_file(stmt: Statement, args: list[str]) -> PathAt:
    return PathAt(args[0], stmt.file, stmt.line)


def _ssl_protocols(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    for name in args:
        if name not in TLS_PROTOCOLS:
            raise fail(stmt, f'invalid value "{name}" in "ssl_protocols" directive')
    return tuple(args)


def _ssl_ciphers(stmt: Statement, args: list[str]) -> str:
    import ssl  # (only a config that names ciphers pays for the import here)

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(args[0])
    except ssl.SSLError:
        raise fail(stmt, f'SSL_CTX_set_cipher_list("{args[0]}") failed') from None
    return args[0]


directive(
    "ssl_certificate",
    HS,
    1,
    1,
    _ssl_file,
    syntax="ssl_certificate FILE;",
    default_text="none",
    doc="The PEM certificate (with its chain after it) of the servers with `listen ... ssl`; "
    "checked at load with its key.",
)
directive(
    "ssl_certificate_key",
    HS,
    1,
    1,
    _ssl_file,
    syntax="ssl_certificate_key FILE;",
    default_text="none",
    doc="The PEM private key of `ssl_certificate` (not encrypted); a key that does not match "
    "its certificate is an error at load.",
)
directive(
    "ssl_protocols",
    HS,
    1,
    ANY,
    _ssl_protocols,
    default=("TLSv1.2", "TLSv1.3"),
    syntax="ssl_protocols [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];",
    default_text="TLSv1.2 TLSv1.3",
    doc="TLS versions accepted (from the lowest to the highest named).",
)
directive(
    "ssl_ciphers",
    HS,
    1,
    1,
    _ssl_ciphers,
    default="HIGH:!aNULL:!MD5",
    syntax="ssl_ciphers CIPHERS;",
    default_text="HIGH:!aNULL:!MD5",
    doc="OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are OpenSSL's).",
)
directive(
    "ssl_prefer_server_ciphers",
    HS,
    1,
    1,
    _flag,
    default=False,
    syntax="ssl_prefer_server_ciphers on | off;",
    default_text="off",
    doc="Pick the cipher by the server's order rather than the client's.",
)
directive(
    "ssl_session_timeout",
    HS,
    1,
    1,
    _time,
    default=300.0,
    syntax="ssl_session_timeout TIME;",
    default_text="5m",
    doc="How long a TLS session (ticket or session id) can be resumed.",
)
directive(
    "ssl_session_tickets",
    HS,
    1,
    1,
    _flag,
    default=True,
    syntax="ssl_session_tickets on | off;",
    default_text="on",
    doc="Resume sessions with tickets (their keys are shared by the workers, and new at "
    "each start and reload).",
)
