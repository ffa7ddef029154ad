"""Load a config file: statements → validated settings → inherited, typed model.

Owns validation against the directive table, inheritance (http → server → location), the
servers and their logs; locations.py builds the locations, load_listeners.py the
virtual-host tables and listeners. Every error is a ConfigError naming a file and line.
Nothing here opens a socket or serves a byte.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .. import server_names, syslog, tls, variables
from ..logs import (
    COMBINED,
    LEVELS,
    AccessLog,
    ConditionalAccessLog,
    ErrorLog,
    ErrorLogFile,
    LogFile,
    LogFileCache,
    SyslogAccessLog,
    VariableAccessLog,
    error_log,
)
from ..variables_set import set_names
from .directives import (
    DIRECTIVES,
    EVENTS,
    HTTP,
    MAIN,
    SERVER,
    fail,
)
from .directives_logs import AccessLogSpec, LogFormatSpec
from .directives_proxy import real_ip
from .directives_rewrite import SCRIPT
from .errors import ConfigError
from .lexer import Statement, parse_file, walk
from .load_listeners import build_listeners
from .locations import LocationBuilder
from .model import Config, Server
from .table import Settings, merge, value
from .values import ListenAddress, PathAt


def load(path: str, prefix: str | None = None) -> Config:
    path = os.path.abspath(path)
    statements = parse_file(path)
    # regexes' named groups and `set` names are variables anywhere in the config (nginx):
    # known before a template that uses one is compiled
    everything = list(walk(statements))
    variables.capture_names = server_names.capture_names(everything)
    variables.set_names = set_names(everything)
    return _Loader(path, prefix or os.path.dirname(path)).build(statements)


class _Loader(LocationBuilder):
    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.prefix = os.path.abspath(prefix)
        self.log_files: dict[str, LogFile] = {}
        self.access_logs: dict[tuple[Any, ...], AccessLog] = {}
        self.error_files: dict[str, ErrorLogFile] = {}  # error_log's files, by path
        self.syslog_targets: list[Any] = []  # error_log syslog: sinks (closed with the cycle)
        self.log_caches: list[LogFileCache] = []
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
        script: list[Statement] = []  # the rewrite module's, in order (directives_rewrite)
        for stmt in statements:
            if stmt.name in SCRIPT:
                script.append(stmt)
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
            if spec.block and spec.parse is None:
                blocks.append(stmt)
                continue  # (a block with a parser, charset_map, is a value like any other)
            value = spec.parse(stmt, stmt.arg_texts()) if spec.parse else None
            if spec.multi:
                values.setdefault(stmt.name, []).append((value, stmt))
            elif stmt.name in values:
                raise fail(stmt, f'"{stmt.name}" directive is duplicate')
            else:
                values[stmt.name] = value
        if "if" in values or "break" in values or "set" in values:
            values["_script"] = script
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
        main_logs = main.get("error_log") or [(value(main, "error_log"), None)]
        main_error_log = self.error_log(main_logs)
        first = main_error_log.sinks[0][1].path, main_logs[0][0][1]
        return Config(
            path=self.path,
            prefix=self.prefix,
            worker_processes=value(main, "worker_processes"),
            worker_connections=value(events, "worker_connections"),
            master_process=value(main, "master_process"),
            worker_shutdown_timeout=value(main, "worker_shutdown_timeout"),
            error_log=first,
            main_error_log=main_error_log,
            pid=self.absolute(main["pid"]) if main.get("pid") else None,
            servers=tuple(servers),
            listeners=build_listeners(servers, self.listen_stmts, self.warnings),
            access_logs=tuple(self.access_logs.values()),
            log_files=(
                *self.log_files.values(),
                *self.error_files.values(),
                *self.log_caches,
                *self.syslog_targets,
            ),
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
        for given, stmt in own.get("listen", []):
            for address in given if isinstance(given, tuple) else (given,):  # (a port range)
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
        # several server_name lines add up (nginx)
        lines = own.get("server_name")
        names = tuple(n for line, _ in lines for n in line) if lines else value(own, "server_name")
        server = Server(
            names=names,
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
            has_regex_name=any(name.startswith("~") for name in names),
            merge_slashes=value(merged, "merge_slashes"),
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

    def log_file(
        self,
        path: str | None,
        buffer: int,
        flush: float,
        spec: AccessLogSpec | None = None,
        stmt: Statement | None = None,
    ) -> LogFile | None:
        """The LogFile for PATH, shared by everything that writes there; None for off.
        SPEC's explicit buffer=/flush=/gzip must agree with another line's (nginx)."""
        if path is None or path == "off":
            return None
        if path not in ("stderr", "stdout"):
            path = self.absolute(path)
        file = self.log_files.get(path)
        explicit = spec is not None and (spec.buffer, spec.flush, spec.gzip) != (None,) * 3
        if spec is not None and explicit:
            buffer, flush = spec.buffer or buffer, spec.flush or flush
        if file is None:
            gzip = spec.gzip if spec is not None else None
            file = self.log_files[path] = LogFile(path, buffer, flush, gzip, explicit)
            return file
        if explicit and file.explicit:
            if (file.limit, file.flush_after, file.gzip) != (buffer, flush, spec.gzip):
                raise fail(
                    stmt, f'access_log "{spec.path}" already defined with conflicting parameters'
                )
            return file
        if not explicit:
            return file
        file.limit, file.flush_after, file.explicit = buffer, flush, True
        file.gzip = spec.gzip if spec is not None else None
        return file

    def build_access_logs(
        self,
        specs: list[tuple[AccessLogSpec, Statement]] | None,
        cache: tuple[int, float, int, float] | None = None,
    ) -> tuple[AccessLog, ...]:
        if specs is None:
            specs = [(AccessLogSpec(self.absolute("logs/access.log")), None)]
        logs: list[AccessLog] = []
        log_cache: LogFileCache | None = None
        for spec, stmt in specs:
            if spec.path is None:
                if len(specs) > 1:
                    raise fail(
                        stmt, '"access_log off" cannot be combined with other access_log directives'
                    )
                return ()
            if spec.format_name not in self.formats:
                raise fail(stmt, f'unknown log format "{spec.format_name}"')
            render = self.formats[spec.format_name][1]
            condition = (
                variables.compile_template(spec.condition, escape="none_raw")
                if spec.condition is not None
                else None
            )
            if syslog.is_syslog(spec.path):  # one target (and socket) per directive, as nginx
                logs.append(
                    SyslogAccessLog(syslog.parse(spec.path), render, spec.format_name, condition)
                )
                continue
            if "$" in spec.path:
                if cache is not None and log_cache is None:
                    log_cache = LogFileCache(*cache)
                    self.log_caches.append(log_cache)
                logs.append(self.variable_log(spec, stmt, render, condition, log_cache))
                continue
            file = self.log_file(spec.path, 64 * 1024, 1.0, spec, stmt)
            key = (file.path, spec.format_name, spec.condition)
            if key not in self.access_logs:
                if condition is None:
                    self.access_logs[key] = AccessLog(file, render, spec.format_name)
                else:
                    self.access_logs[key] = ConditionalAccessLog(
                        file, render, spec.format_name, condition
                    )
            logs.append(self.access_logs[key])
        return tuple(logs)

    def variable_log(self, spec, stmt, render, condition, cache) -> AccessLog:
        """`access_log /logs/$host.log`: its path is a template rendered per request."""
        template = spec.path if spec.path.startswith("/") else self.prefix + "/" + spec.path
        try:
            path = variables.compile_template(template, escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
        return VariableAccessLog(path, render, spec.format_name, condition, cache)

    def error_log(self, lines: list[tuple[tuple[str, str], Statement | None]]) -> ErrorLog:
        """The ErrorLog of one level's `error_log` lines: one sink per line, files shared."""
        sinks = []
        for (path, level), _ in lines:
            if syslog.is_syslog(path):  # one target (and socket) per line, as nginx
                target = syslog.parse(path)
                self.syslog_targets.append(target)
                sinks.append((LEVELS[level], target))
                continue
            if path not in ("stderr", "stdout", "/dev/stderr", "/dev/stdout"):
                path = self.absolute(path)
            file = self.error_files.get(path)
            if file is None:
                file = self.error_files[path] = ErrorLogFile(path, level)
            sinks.append((LEVELS[level], file))
        return ErrorLog(tuple(sinks))

    def location_error_log(self, lines: list[Any] | None) -> ErrorLog:
        """A location's: the process's own (main's lines, whichever cycle is current) when
        no level set one, so that a location without its own costs nothing."""
        return error_log if lines is None else self.error_log(lines)
