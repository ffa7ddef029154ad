"""Load a config file: statements → validated settings → inherited, typed model.

Owns validation against the directive table, inheritance (http → server → location), the
location match order, virtual-host tables and listener grouping. Every error is a
ConfigError naming a file and line. Nothing here opens a socket or serves a byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from .. import tls, variables
from ..logs import COMBINED, AccessLog, ConditionalAccessLog, LogFile
from .directives import (
    DIRECTIVES,
    EVENTS,
    HTTP,
    MAIN,
    SERVER,
    AccessLogSpec,
    LogFormatSpec,
    fail,
)
from .directives_proxy import real_ip
from .errors import ConfigError
from .lexer import Statement, parse_file
from .locations import LocationBuilder
from .model import Config, Listener, ListenGroup, Server
from .table import Settings, merge, value
from .values import ListenAddress, PathAt, compile_regex


def load(path: str, prefix: str | None = None) -> Config:
    path = os.path.abspath(path)
    statements = parse_file(path)
    return _Loader(path, prefix or os.path.dirname(path)).build(statements)


class _Loader(LocationBuilder):
    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.prefix = os.path.abspath(prefix)
        self.log_files: dict[str, LogFile] = {}
        self.access_logs: dict[tuple[str, str, str | None], AccessLog] = {}
        self.formats: dict[str, tuple[LogFormatSpec, Any]] = {}
        self.warnings: list[str] = []
        # the `listen` statement behind each (server, address), for errors found per address
        self.listen_stmts: dict[tuple[int, ListenAddress], Statement] = {}

    # --- validation --------------------------------------------------------------------

    def settings(
        self, statements: Iterable[Statement], context: str
    ) -> tuple[Settings, list[Statement]]:
        """Check each statement against the table; return typed values and child blocks."""
        values: Settings = {}
        blocks: list[Statement] = []
        for stmt in statements:
            spec = DIRECTIVES.get(stmt.name)
            if spec is None:
                raise fail(stmt, f'unknown directive "{stmt.name}"')
            if context not in spec.contexts:
                raise fail(stmt, f'"{stmt.name}" directive is not allowed here')
            if spec.block and stmt.block is None:
                raise fail(stmt, f'directive "{stmt.name}" has no opening "{{"')
            if not spec.block and stmt.block is not None:
                raise fail(stmt, f'directive "{stmt.name}" is not terminated by ";"')
            nargs = len(stmt.args)
            if nargs < spec.min_args or (spec.max_args >= 0 and nargs > spec.max_args):
                raise fail(stmt, f'invalid number of arguments in "{stmt.name}" directive')
            if stmt.name == "types":
                if "types" in values:
                    raise fail(stmt, '"types" directive is duplicate')
                values["types"] = self.types_block(stmt)
                continue
            if spec.block:
                blocks.append(stmt)
                continue
            value = spec.parse(stmt, stmt.arg_texts()) if spec.parse else None
            if spec.multi:
                values.setdefault(stmt.name, []).append((value, stmt))
            elif stmt.name in values:
                raise fail(stmt, f'"{stmt.name}" directive is duplicate')
            else:
                values[stmt.name] = value
        return values, blocks

    def types_block(self, stmt: Statement) -> dict[str, str]:
        types: dict[str, str] = {}
        for child in stmt.block or ():
            if child.block is not None:
                raise fail(child, 'unexpected "{" in "types" block')
            if not child.args:
                raise fail(child, f'invalid number of arguments in type "{child.name}"')
            for ext in child.arg_texts():
                types[ext.lower()] = child.name
        return types

    # --- assembly ----------------------------------------------------------------------

    def build(self, statements: list[Statement]) -> Config:
        main, blocks = self.settings(statements, MAIN)
        events: Settings = {}
        http_stmt = None
        for block in blocks:
            if block.name == "events":
                if events:
                    raise fail(block, '"events" directive is duplicate')
                events, _ = self.settings(block.block or (), EVENTS)
                events["_seen"] = True
            elif block.name == "http":
                if http_stmt is not None:
                    raise fail(block, '"http" directive is duplicate')
                http_stmt = block
        servers: list[Server] = []
        if http_stmt is not None:
            http, server_blocks = self.settings(http_stmt.block or (), HTTP)
            self.compile_formats(http.get("log_format", []))
            for block in server_blocks:
                servers.append(self.build_server(block, http))
        if not servers:
            raise ConfigError(
                self.path, 0, "no server defined (an http { server { ... } } block is needed)"
            )
        error_log = value(main, "error_log")
        path, level = error_log
        if path not in ("stderr", "stdout", "/dev/stderr", "/dev/stdout"):
            path = self.absolute(path)
        return Config(
            path=self.path,
            prefix=self.prefix,
            worker_processes=value(main, "worker_processes"),
            worker_connections=value(events, "worker_connections"),
            master_process=value(main, "master_process"),
            worker_shutdown_timeout=value(main, "worker_shutdown_timeout"),
            error_log=(path, level),
            pid=self.absolute(main["pid"]) if main.get("pid") else None,
            servers=tuple(servers),
            listeners=self.build_listeners(servers),
            access_logs=tuple(self.access_logs.values()),
            log_files=tuple(self.log_files.values()),
            warnings=tuple(self.warnings),
        )

    def absolute(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.prefix, path))

    def compile_formats(self, specs: list[tuple[LogFormatSpec, Statement]]) -> None:
        self.formats["combined"] = (LogFormatSpec("combined", "default", COMBINED), None)
        self.formats["combined"] = (
            self.formats["combined"][0],
            variables.compile_template(COMBINED, newline=True),
        )
        for spec, stmt in specs:
            if spec.name in self.formats:
                raise fail(stmt, f'duplicate "log_format" name "{spec.name}"')
            try:
                render = variables.compile_template(spec.template, spec.escape, newline=True)
            except variables.UnknownVariable as exc:
                raise fail(stmt, str(exc)) from None
            self.formats[spec.name] = (spec, render)

    def build_server(self, block: Statement, http: Settings) -> Server:
        own, location_blocks = self.settings(block.block or (), SERVER)
        merged = merge(http, own)
        listens: list[ListenAddress] = []
        listen_stmts: list[tuple[ListenAddress, Statement]] = []
        for address, stmt in own.get("listen", []):
            if any(a.key == address.key and a.ipv6 == address.ipv6 for a in listens):
                raise fail(stmt, f"a duplicate listen {address.display()}")
            listens.append(address)
            listen_stmts.append((address, stmt))
        if not listens:
            listens.append(ListenAddress("", 80, False))
        fallback = self.build_location(merged, "server", "", None, block)
        exact, prefixes, regexes = self.build_locations(location_blocks, merged, merged, own)
        header_count, header_size = value(merged, "large_client_header_buffers")
        tls_settings = self.tls_settings(merged, listen_stmts)
        server = Server(
            names=value(own, "server_name"),
            listens=tuple(listens),
            file=block.file,
            line=block.line,
            client_header_timeout=value(merged, "client_header_timeout"),
            header_line_limit=header_size,
            header_section_limit=header_count * header_size,
            fallback=fallback,
            exact=exact,
            prefixes=tuple(prefixes),
            regexes=tuple(regexes),
            lifecycle=value(merged, "lifecycle"),
            lifecycle_log=self.log_file(merged.get("lifecycle_log"), 64 * 1024, 1.0),
            status_history=value(merged, "status_history"),
            request_tcpinfo=value(merged, "lifecycle_request_tcpinfo"),
            lifecycle_capture=value(merged, "lifecycle_capture"),
            tls=tls_settings,
            ssl_context=tls.make_context(tls_settings) if tls_settings is not None else None,
            real_ip=real_ip(merged, block),
        )
        for address, stmt in listen_stmts:
            self.listen_stmts[(id(server), address)] = stmt
        return server

    def tls_settings(
        self, s: Settings, listen_stmts: list[tuple[ListenAddress, Statement]]
    ) -> tls.TlsSettings | None:
        """The server's ssl_* settings (None without a certificate), as nginx checks them."""
        cert, key = s.get("ssl_certificate"), s.get("ssl_certificate_key")
        if cert is None:
            for address, stmt in listen_stmts:
                if address.ssl:
                    raise fail(
                        stmt, 'no "ssl_certificate" is defined for the listen ... ssl directive'
                    )
            return None
        if key is None:
            raise ConfigError(
                cert.file,
                cert.line,
                f'no "ssl_certificate_key" is defined for certificate "{cert.path}"',
            )
        return tls.TlsSettings(
            certificate=PathAt(self.absolute(cert.path), cert.file, cert.line),
            certificate_key=PathAt(self.absolute(key.path), key.file, key.line),
            protocols=value(s, "ssl_protocols"),
            ciphers=value(s, "ssl_ciphers"),
            session_timeout=value(s, "ssl_session_timeout"),
            session_tickets=value(s, "ssl_session_tickets"),
            prefer_server_ciphers=value(s, "ssl_prefer_server_ciphers"),
        )

    def log_file(self, path: str | None, buffer: int, flush: float) -> LogFile | None:
        """The LogFile for PATH, shared by everything that writes there; None for off."""
        if path is None or path == "off":
            return None
        if path not in ("stderr", "stdout"):
            path = self.absolute(path)
        file = self.log_files.get(path)
        if file is None:
            file = self.log_files[path] = LogFile(path, buffer, flush)
        return file

    def build_access_logs(
        self, specs: list[tuple[AccessLogSpec, Statement]] | None
    ) -> tuple[AccessLog, ...]:
        if specs is None:
            specs = [(AccessLogSpec(self.absolute("logs/access.log")), None)]
        logs: list[AccessLog] = []
        for spec, stmt in specs:
            if spec.path is None:
                if len(specs) > 1:
                    raise fail(
                        stmt, '"access_log off" cannot be combined with other access_log directives'
                    )
                return ()
            if spec.format_name not in self.formats:
                raise fail(stmt, f'unknown log format "{spec.format_name}"')
            file = self.log_file(spec.path, spec.buffer, spec.flush)
            key = (file.path, spec.format_name, spec.condition)
            if key not in self.access_logs:
                render = self.formats[spec.format_name][1]
                if spec.condition is None:
                    self.access_logs[key] = AccessLog(file, render, spec.format_name)
                else:
                    condition = variables.compile_template(spec.condition, escape="none_raw")
                    self.access_logs[key] = ConditionalAccessLog(
                        file, render, spec.format_name, condition
                    )
            logs.append(self.access_logs[key])
        return tuple(logs)

    def build_listeners(self, servers: list[Server]) -> tuple[Listener, ...]:
        by_address: dict[
            tuple[str, int, bool], list[tuple[Server, ListenAddress, Statement | None]]
        ] = {}
        for server in servers:
            for address in server.listens:
                stmt = self.listen_stmts.get((id(server), address))
                by_address.setdefault((address.host, address.port, address.ipv6), []).append(
                    (server, address, stmt)
                )
        groups: dict[tuple[str, int, bool], ListenGroup] = {}
        for key, members in by_address.items():
            groups[key] = self.build_group(members)
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
                (
                    s.client_header_timeout
                    for s, a, _ in by_address[(host, port, ipv6)]
                    if a.deferred
                ),
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
        self, members: list[tuple[Server, ListenAddress, Statement | None]]
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
                    regex.append((compile_regex(name[1:], re.IGNORECASE), server))
                elif name.startswith("*."):
                    front.append((name[1:], server))
                elif name.startswith("."):
                    exact.setdefault(name[1:], server)
                    front.append((name, server))
                elif name.endswith(".*"):
                    back.append((name[:-1], server))
                elif name in exact and exact[name] is not server:
                    self.warnings.append(
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
        )


# what a nested location does not take from its parent: nginx's rewrite module never merges
# its codes (return, rewrite, set, break) into an inner level, nor the core try_files
