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
from ..headers import HeaderFilter
from ..logs import COMBINED, AccessLog, LogFile
from . import directives_compress
from .directives import (
    DIRECTIVES,
    EVENTS,
    HTTP,
    LOCATION,
    MAIN,
    SERVER,
    AccessLogSpec,
    ErrorPage,
    LogFormatSpec,
    fail,
)
from .directives_headers import with_charset
from .directives_proxy import real_ip
from .errors import ConfigError
from .lexer import Statement, parse_file
from .model import Config, Listener, ListenGroup, Location, Server
from .table import PHASE_BUILDERS, SIBLINGS
from .values import ListenAddress, PathAt, compile_regex

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE")
LOCATION_MODIFIERS = ("=", "~", "~*", "^~")

Settings = dict[str, Any]


def load(path: str, prefix: str | None = None) -> Config:
    path = os.path.abspath(path)
    statements = parse_file(path)
    return _Loader(path, prefix or os.path.dirname(path)).build(statements)


class _Loader:
    def __init__(self, path: str, prefix: str) -> None:
        self.path = path
        self.prefix = os.path.abspath(prefix)
        self.log_files: dict[str, LogFile] = {}
        self.access_logs: dict[tuple[str, str], AccessLog] = {}
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

    def build_locations(
        self,
        blocks: list[Statement],
        outer: Settings,
        server: Settings,
        server_own: Settings,
        parent: Statement | None = None,
        parent_alias: tuple[str, int] | None = None,
    ) -> tuple[dict[str, Location], tuple[Location, ...], tuple[Location, ...]]:
        """The `location` blocks of one level — a server's, or those nested in PARENT — as
        nginx's three tables: exact by URI, prefixes longest first, regexes in config order.

        A nested location inherits its parent's settings (OUTER) but for what nginx's
        rewrite module and try_files never merge (NOT_INHERITED: a parent's `return` does not
        answer for its children); SERVER is the server's merged settings, what a location
        has before its own. nginx's rules for what may nest are check_nested's."""
        exact: dict[str, Location] = {}
        prefixes: list[Location] = []
        regexes: list[Location] = []
        for lb in blocks:
            modifier, pattern = self.location_args(lb)
            if parent is not None:
                check_nested(lb, self.location_args(parent), modifier, pattern)
            loc_own, inside = self.settings(lb.block or (), LOCATION)
            other = [b for b in inside if b.name != "location"]
            if other:
                raise fail(other[0], f'"{other[0].name}" directive is not allowed here')
            regex = None
            if modifier in ("~", "~*"):
                try:
                    regex = compile_regex(pattern, re.IGNORECASE if modifier == "~*" else 0)
                except re.error as exc:
                    raise fail(lb, f'invalid location regex "{pattern}": {exc}') from None
                if "alias" in loc_own:
                    raise fail(lb, '"alias" is not supported in a regex location')
            loc_settings = merge(outer, loc_own)
            # a phase builder tells a location's own rewrite/try_files from the server's
            loc_settings["_server"] = server_own
            if "return" in server_own:
                # nginx runs a server's `return` before any location is chosen: it always wins
                loc_settings["return"] = server_own["return"]
            alias = self.alias_of(loc_own, pattern, parent_alias)
            children = self.build_locations(
                [b for b in inside if b.name == "location"],
                inheritable(loc_settings, server),
                server,
                server_own,
                lb,
                alias,
            )
            loc = self.build_location(loc_settings, modifier, pattern, regex, lb, alias, children)
            if modifier == "=":
                if pattern in exact:
                    raise fail(lb, f'duplicate location "{pattern}"')
                exact[pattern] = loc
            elif regex is not None:
                regexes.append(loc)
            else:
                if any(p.pattern == pattern for p in prefixes):
                    raise fail(lb, f'duplicate location "{pattern}"')
                prefixes.append(loc)
        prefixes.sort(key=lambda loc: len(loc.pattern), reverse=True)
        return exact, tuple(prefixes), tuple(regexes)

    def alias_of(
        self, own: Settings, pattern: str, inherited: tuple[str, int] | None
    ) -> tuple[str, int] | None:
        """(absolute alias, how many leading characters of a URI it replaces) of a location:
        its own `alias` replaces its own PATTERN; a nested location without `root` or
        `alias` keeps its parent's, which still replaces the parent's prefix (nginx stores
        the length of the name of the location that said `alias`)."""
        alias = own.get("alias")
        if alias is None:
            return None if "root" in own else inherited
        alias = self.absolute(alias)
        if pattern.endswith("/") and not alias.endswith("/"):
            alias += "/"
        return alias, len(pattern)

    def location_args(self, lb: Statement) -> tuple[str, str]:
        args = lb.arg_texts()
        if len(args) == 2:
            if args[0] not in LOCATION_MODIFIERS:
                raise fail(lb, f'invalid location modifier "{args[0]}"')
            return args[0], args[1]
        text = args[0]
        for modifier in ("~*", "^~", "=", "~"):  # nginx also accepts "=/exact" written together
            if text.startswith(modifier) and len(text) > len(modifier):
                return modifier, text[len(modifier) :]
        return "", text

    def build_location(
        self,
        s: Settings,
        modifier: str,
        pattern: str,
        regex: re.Pattern[str] | None,
        stmt: Statement,
        alias_at: tuple[str, int] | None = None,
        nested: tuple[Any, Any, Any] = ({}, (), ()),
    ) -> Location:
        root = self.absolute(value(s, "root")).rstrip("/") or "/"
        alias, alias_strip = alias_at if alias_at is not None else (None, 0)
        methods = value(s, "allow_methods")
        error_pages: dict[int, ErrorPage] = {}
        for page, _ in s.get("error_page", []):
            for code in page.codes:
                error_pages[code] = page
        keepalive, keepalive_header = value(s, "keepalive_timeout")
        return Location(
            modifier=modifier,
            pattern=pattern,
            regex=regex,
            file=stmt.file,
            line=stmt.line,
            root=root,
            root_real=os.path.realpath(root),
            alias=alias,
            alias_real=os.path.realpath(alias) if alias is not None else None,
            index=value(s, "index"),
            autoindex=value(s, "autoindex"),
            error_pages=error_pages,
            client_max_body_size=value(s, "client_max_body_size"),
            allow_methods=methods,
            allow_header=", ".join(m for m in METHOD_ORDER if m in methods),
            keepalive_timeout=keepalive,
            keepalive_header=keepalive_header,
            client_body_timeout=value(s, "client_body_timeout"),
            send_timeout=value(s, "send_timeout"),
            access_logs=self.build_access_logs(s.get("access_log")),
            types=charset_types(s, value(s, "types")),
            default_type=with_charset(
                value(s, "default_type"), value(s, "charset"), value(s, "charset_types")
            ),
            error_type=with_charset(
                "text/html", value(s, "charset"), value(s, "charset_types")
            ).encode(),
            server_tokens=value(s, "server_tokens"),
            open_file_cache=value(s, "open_file_cache"),
            open_file_cache_valid=value(s, "open_file_cache_valid"),
            return_=s.get("return"),
            header_filter=header_filter(s),
            etag=value(s, "etag"),
            if_modified_since=value(s, "if_modified_since"),
            keepalive_requests=value(s, "keepalive_requests"),
            status=value(s, "status"),
            metrics=value(s, "metrics"),
            phases=self.phases(s),
            limit_rate=(value(s, "limit_rate"), value(s, "limit_rate_after"))
            if value(s, "limit_rate")
            else None,
            cgi=self.cgi_map(s.get("cgi", [])),
            cgi_timeout=value(s, "cgi_timeout"),
            upload_store=self.absolute(s["upload_store"]) if s.get("upload_store") else None,
            upload_store_real=os.path.realpath(self.absolute(s["upload_store"]))
            if s.get("upload_store")
            else None,
            alias_strip=alias_strip,
            autoindex_format=value(s, "autoindex_format"),
            exact=nested[0],
            prefixes=nested[1],
            regexes=nested[2],
            compress=directives_compress.build(s),
        )

    def phases(self, s: Settings) -> tuple[Any, ...] | None:
        """phases.py's objects for these settings, from every registered builder."""
        built = tuple(p for _, build in PHASE_BUILDERS if (p := build(s, self)) is not None)
        return built or None

    def cgi_map(
        self, entries: list[tuple[tuple[str, str | None], Statement]]
    ) -> dict[str, str | None]:
        cgi: dict[str, str | None] = {}
        for (ext, interpreter), stmt in entries:
            if ext in cgi:
                raise fail(stmt, f'duplicate cgi extension "{ext}"')
            if interpreter is not None and not os.path.isabs(interpreter):
                interpreter = self.absolute(interpreter)
            cgi[ext] = interpreter
        return cgi

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
            key = (file.path, spec.format_name)
            if key not in self.access_logs:
                self.access_logs[key] = AccessLog(
                    file, self.formats[spec.format_name][1], spec.format_name
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
NOT_INHERITED = ("return", "rewrite", "set", "break", "try_files")


def inheritable(parent: Settings, server: Settings) -> Settings:
    """What a location nested in one with settings PARENT starts from: PARENT, but for
    NOT_INHERITED, which are what any location of the server has (SERVER's)."""
    base = dict(parent)
    for name in NOT_INHERITED:
        if name in server:
            base[name] = server[name]
        else:
            base.pop(name, None)
    return base


def check_nested(stmt: Statement, parent: tuple[str, str], modifier: str, pattern: str) -> None:
    """nginx's rules (ngx_http_core_location) for a location inside PARENT (modifier, name)."""
    parent_modifier, parent_pattern = parent
    if parent_modifier == "=":
        raise fail(
            stmt, f'location "{pattern}" cannot be inside the exact location "{parent_pattern}"'
        )
    if parent_modifier == "" and parent_pattern.startswith("@"):
        raise fail(
            stmt, f'location "{pattern}" cannot be inside the named location "{parent_pattern}"'
        )
    if modifier == "" and pattern.startswith("@"):
        raise fail(stmt, f'named location "{pattern}" can be on the server level only')
    if modifier not in ("~", "~*") and not pattern.startswith(parent_pattern):
        # a regex parent's name is its regex: an inner prefix is then "outside" it too
        raise fail(stmt, f'location "{pattern}" is outside location "{parent_pattern}"')


def header_filter(s: Settings) -> HeaderFilter | None:
    """add_header and expires of one level, or None (nothing to do per response). A level
    with its own add_header lines has only those: `merge` replaces the outer list whole."""
    headers = tuple(h for h, _ in s.get("add_header", ()))
    expires = value(s, "expires")
    if not headers and expires is None:
        return None
    return HeaderFilter(headers, expires)


def charset_types(s: Settings, types: dict[str, str]) -> dict[str, str]:
    """The location's extension → Content-Type map with `charset` applied (at load: the
    hot path reads the finished type)."""
    charset = value(s, "charset")
    if charset is None:
        return types
    which = value(s, "charset_types")
    return {ext: with_charset(ctype, charset, which) for ext, ctype in types.items()}


def value(settings: Settings, name: str) -> Any:
    """A directive's value where set, else its default: the directive table is the only
    place a default is written (nginx's merge functions have the same job)."""
    if name in settings:
        return settings[name]
    return DIRECTIVES[name].default


def merge(outer: Settings, inner: Settings) -> Settings:
    """Inner values win; a multi directive present inside replaces the whole outer list
    (and the lists of its SIBLINGS: allow and deny are one list)."""
    merged = dict(outer)
    merged.update(inner)
    for name in inner:
        for sibling in SIBLINGS.get(name, ()):
            if sibling not in inner:
                merged.pop(sibling, None)
    return merged
