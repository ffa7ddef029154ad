"""Listener grouping, the last step of loading a config: the servers of each address as a
ListenGroup (its default server and its virtual-host name tables: exact, wildcards,
regexes) and one Listener per socket to bind (a wildcard address covers the groups of the
same port; reuseport, deferred, TLS contexts, PROXY protocol from the `listen` options).
Every error is a ConfigError at the statement nginx names. Never opens a socket
(listeners.py binds them) and never reads a statement's settings (load.py has).
"""

from __future__ import annotations

import re

from .. import server_names, tls
from ..http.merge_slashes import normalize_path_unmerged
from ..http.request import normalize_path
from .errors import ConfigError
from .lexer import Statement
from .model import Listener, ListenGroup, Server
from .values import ListenAddress


def build_listeners(
    servers: list[Server],
    listen_stmts: dict[tuple[int, ListenAddress], Statement],
    warnings: list[str],
) -> tuple[Listener, ...]:
    by_address: dict[
        tuple[str, int, bool], list[tuple[Server, ListenAddress, Statement | None]]
    ] = {}
    for server in servers:
        for address in server.listens:
            stmt = listen_stmts.get((id(server), address))
            by_address.setdefault((address.host, address.port, address.ipv6), []).append(
                (server, address, stmt)
            )
    groups: dict[tuple[str, int, bool], ListenGroup] = {}
    for key, members in by_address.items():
        groups[key] = build_group(members, warnings)
    listeners: list[Listener] = []
    for (host, port, ipv6), group in groups.items():
        if host and ("", port, ipv6) in groups:
            continue  # a wildcard socket on this port accepts for it
        covered = {(host, port): group}
        if not host:
            for (h, p, v6), g in groups.items():
                if h and p == port and v6 == ipv6:
                    covered[(h, p)] = g
        reuseport = any(a.reuseport for _, a, _ in by_address[(host, port, ipv6)])
        # as nginx: a connection waits for its first bytes up to client_header_timeout
        deferred = max(
            (s.client_header_timeout for s, a, _ in by_address[(host, port, ipv6)] if a.deferred),
            default=0.0,
        )
        lifecycle = any(
            g.default.lifecycle or any(s.lifecycle for s in g.servers) for g in covered.values()
        )
        contexts = None
        if any(a.ssl for _, a, _ in by_address[(host, port, ipv6)]):
            contexts = {}
            for g in covered.values():
                if g.default.tls is None:  # another server's `listen ... ssl`: no cert here
                    raise ConfigError(
                        g.default.file,
                        g.default.line,
                        f'no "ssl_certificate" is defined for the default server of '
                        f"{g.address.display()} (listen ... ssl)",
                    )
                contexts[g] = tls.entry_context(g)
        # as nginx: one `listen ... proxy_protocol` of the address makes it a PROXY one
        proxy_protocol = any(a.proxy_protocol for _, a, _ in by_address[(host, port, ipv6)])
        listeners.append(
            Listener(
                group.address,
                covered,
                len(covered) > 1,
                reuseport,
                lifecycle,
                deferred,
                contexts,
                proxy_protocol,
            )
        )
    return tuple(listeners)


def build_group(
    members: list[tuple[Server, ListenAddress, Statement | None]], warnings: list[str]
) -> ListenGroup:
    servers = [m[0] for m in members]
    defaults = [m for m in members if m[1].default_server]
    if len(defaults) > 1:
        server, address, stmt = defaults[1]
        # at the second `listen ... default_server`, as nginx reports it
        file, line = (stmt.file, stmt.line) if stmt is not None else (server.file, server.line)
        raise ConfigError(file, line, f"a duplicate default server for {address.display()}")
    default = defaults[0][0] if defaults else servers[0]
    exact: dict[str, Server] = {}
    front: list[tuple[str, Server]] = []
    back: list[tuple[str, Server]] = []
    regex: list[tuple[re.Pattern[str], Server]] = []
    for server in servers:
        for name in server.names:
            if name.startswith("~"):
                regex.append((server_names.compile_name_regex(name[1:]), server))
            elif name.startswith("*."):
                front.append((name[1:], server))
            elif name.startswith("."):
                exact.setdefault(name[1:], server)
                front.append((name, server))
            elif name.endswith(".*"):
                back.append((name[:-1], server))
            elif name in exact and exact[name] is not server:
                warnings.append(
                    f'conflicting server name "{name}" on {members[0][1].display()}, ignored'
                )
            else:
                exact[name] = server
    # nginx prefers the longest wildcard
    front.sort(key=lambda item: len(item[0]), reverse=True)
    back.sort(key=lambda item: len(item[0]), reverse=True)
    address = members[0][1]
    return ListenGroup(
        address=ListenAddress(address.host, address.port, address.ipv6),
        servers=tuple(dict.fromkeys(servers)),
        default=default,
        exact_names=exact,
        wildcard_front=tuple(front),
        wildcard_back=tuple(back),
        regex_names=tuple(regex),
        normalize_path=normalize_path if default.merge_slashes else normalize_path_unmerged,
    )
