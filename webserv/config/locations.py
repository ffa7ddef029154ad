"""Building a server's locations: nesting, inheritance and each Location's typed settings.

A mixin of load.py's loader (it shares its state: the config's folder, log files, compiled
formats). It owns nginx's rules for nested locations (what may nest where, what an inner
location inherits), `alias` prefixes, the per-location values resolved at load (types with
`charset`, header filters, phases, CGI map). It never parses a statement's arguments (the
directive table does) and never builds servers or listeners (load.py, load_listeners.py do).
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..headers import HeaderFilter
from . import directives_charset, directives_compress, directives_dav
from .directives import LOCATION, ErrorPage, fail
from .directives_headers import with_charset
from .lexer import Statement
from .model import KEEPALIVE_SAFARI, Location
from .table import PHASE_BUILDERS, Settings, merge, value
from .values import compile_regex

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE")
LOCATION_MODIFIERS = ("=", "~", "~*", "^~")


class LocationBuilder:
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
        dav = directives_dav.build(s)
        if dav is not None:
            methods = methods | dav.methods  # as nginx: dav_methods answers its methods
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
            # (repeated `index` lines add their names, as nginx's)
            index=tuple(n for names, _ in s["index"] for n in names)
            if "index" in s
            else value(s, "index"),
            autoindex=value(s, "autoindex"),
            error_pages=error_pages,
            client_max_body_size=value(s, "client_max_body_size"),
            allow_methods=methods,
            allow_header=", ".join(m for m in METHOD_ORDER if m in methods),
            keepalive_timeout=keepalive,
            keepalive_header=keepalive_header,
            client_body_timeout=value(s, "client_body_timeout"),
            send_timeout=value(s, "send_timeout"),
            access_logs=self.build_access_logs(
                s.get("access_log"), value(s, "open_log_file_cache")
            ),
            error_log=self.location_error_log(s.get("error_log")),
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
            keepalive_disable=value(s, "keepalive_disable"),
            keepalive_safari=bool(value(s, "keepalive_disable") & KEEPALIVE_SAFARI),
            keepalive_time=value(s, "keepalive_time"),
            log_not_found=value(s, "log_not_found"),
            uninitialized_variable_warn=value(s, "uninitialized_variable_warn"),
            absolute_redirect=value(s, "absolute_redirect"),
            server_name_in_redirect=value(s, "server_name_in_redirect"),
            port_in_redirect=value(s, "port_in_redirect"),
            add_trailers=tuple(h for h, _ in s["add_trailer"]) if s.get("add_trailer") else None,
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
            max_ranges=value(s, "max_ranges"),
            recode=directives_charset.build(s, stmt),
            dav=dav,
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


NOT_INHERITED = ("return", "rewrite", "set", "break", "if", "_script", "try_files")


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
