"""Directive rows for life behind a balancer: nginx's ngx_http_realip_module names, contexts
and defaults (`set_real_ip_from`, `real_ip_header`), and the RealIp value a server keeps.

`listen ... proxy_protocol` itself is a listen parameter (directives.py). Only parses,
registers and resolves at load; the PROXY header is read by proxy_connection.py.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..access import Rules
from .errors import ConfigError
from .lexer import Statement
from .table import HS, directive, fail

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SUPPORTED_HEADER = "proxy_protocol"


@dataclass(slots=True, frozen=True)
class RealIp:
    """A server's trusted balancers: `set_real_ip_from` with `real_ip_header proxy_protocol`."""

    networks: tuple[Network, ...]
    unix: bool  # `set_real_ip_from unix:` (webserv listens on no UNIX socket: never matches)
    # the networks as allow/deny's compiled rules (access.py: ints and masks, v4-mapped
    # peers as IPv4): one way to match an address against networks
    rules: Rules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_family: dict[int, list[tuple[int, int, bool]]] = {4: [], 6: []}
        for net in self.networks:
            by_family[net.version].append((int(net.network_address), int(net.netmask), True))
        object.__setattr__(self, "rules", Rules(tuple(by_family[4]), tuple(by_family[6]), ()))

    def trusts(self, addr: str) -> bool:
        return self.rules.decide(addr) is True


def _real_ip_from(stmt: Statement, args: list[str]) -> Network | str:
    text = args[0]
    if text == "unix:":
        return "unix:"
    try:
        # nginx accepts host bits below the mask (and warns "low address bits ... are
        # meaningless"): the network is the same
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(stmt, f'invalid parameter "{text}"') from None


@dataclass(slots=True, frozen=True)
class HeaderAt:
    """real_ip_header's value, with where it was set (for the error found at load)."""

    name: str
    file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)


def _real_ip_header(stmt: Statement, args: list[str]) -> HeaderAt:
    return HeaderAt(args[0], stmt.file, stmt.line)


directive(
    "set_real_ip_from",
    HS,
    1,
    1,
    _real_ip_from,
    multi=True,
    syntax="set_real_ip_from ADDRESS | CIDR | unix:;",
    default_text="none",
    doc="A balancer trusted to say who the client is (repeatable). With "
    "`real_ip_header proxy_protocol;`, a connection from it to a `listen ... proxy_protocol` "
    "address gets the PROXY header's client address and port as `$remote_addr` and "
    "`$remote_port` (access log, CGI's REMOTE_ADDR, the error log); a PROXY header from any "
    "other address is refused (the connection is closed). Decided per connection by the "
    "address's default server.",
)
directive(
    "real_ip_header",
    HS,
    1,
    1,
    _real_ip_header,
    default=HeaderAt("X-Real-IP"),
    syntax="real_ip_header proxy_protocol;",
    default_text="X-Real-IP",
    doc="Where the client's address comes from for `set_real_ip_from`: webserv reads only "
    "`proxy_protocol` (the PROXY header of a `listen ... proxy_protocol` address); "
    "X-Real-IP and X-Forwarded-For are not read.",
)


def real_ip(settings: dict[str, Any], block: Statement) -> RealIp | None:
    """The server's RealIp (None without `set_real_ip_from`), checked as it will be used."""
    froms = settings.get("set_real_ip_from") or []
    at = settings.get("real_ip_header")
    header = at.name if at is not None else "X-Real-IP"
    if at is not None and header != SUPPORTED_HEADER:
        raise ConfigError(
            at.file,
            at.line,
            f'"real_ip_header {header}" is not supported: webserv reads the client address '
            'only from the PROXY protocol ("real_ip_header proxy_protocol;")',
        )
    if not froms:
        return None
    if header != SUPPORTED_HEADER:
        stmt = froms[0][1]
        raise ConfigError(
            stmt.file,
            stmt.line,
            '"set_real_ip_from" needs "real_ip_header proxy_protocol;": webserv reads no '
            "X-Real-IP or X-Forwarded-For header",
        )
    networks = tuple(net for net, _ in froms if not isinstance(net, str))
    unix = any(isinstance(net, str) for net, _ in froms)
    return RealIp(networks, unix)
