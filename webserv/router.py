"""Server and location selection, nginx's order, with small memo tables.

find_server: exact name → longest `*.front` wildcard → longest `back.*` wildcard → regex
names in order → the address's default server. find_name_match tells which regex name
chose a server, for the variables of its captures ($name, $1: variables.py).
find_location: `=` exact → longest prefix, then the locations nested in it → regexes in config order (unless that prefix is `^~`) → that
longest prefix → the server's own settings (nginx's ngx_http_core_find_location).
Both are pure functions of the configuration; `Routes` memoises them for one generation
(the cycle owns it). Nothing here reads a socket or a file.
"""

from __future__ import annotations

import re
from typing import Any

from .config.model import ListenGroup, Location, Server

MEMO_LIMIT = 4096


class Routes:
    """One generation's route memos: (group, Host) → server, (server, path) → location, and
    per listen group (Host header, request target) → the whole route (reader.py fills it).

    Keyed by the configuration's objects themselves (hashed by identity), and owned by the
    cycle that owns that configuration, so a reload starts with empty tables and an old
    generation's objects never answer for a new one. Bounded: a client sending endless
    distinct names or paths empties a table rather than growing it.
    """

    __slots__ = ("servers", "locations", "targets", "name_matches")

    def __init__(self) -> None:
        self.servers: dict[tuple[ListenGroup, str], Server] = {}
        self.locations: dict[tuple[Server, str], Location] = {}
        self.targets: dict[ListenGroup, dict[Any, Any]] = {}
        # (group, Host) → the regex name's match that chose its server, False if none did;
        # filled only when a variable asks for a server name's captures ($name, $1)
        self.name_matches: dict[tuple[ListenGroup, str], re.Match[str] | bool] = {}

    def server(self, group: ListenGroup, host: str) -> Server:
        return _memoised(self.servers, group, host, find_server)

    def location(self, server: Server, path: str) -> Location:
        return _memoised(self.locations, server, path, find_location)

    def name_match(self, group: ListenGroup, host: str) -> re.Match[str] | None:
        """The match of the `server_name ~regex` that chose HOST's server (memoised)."""
        key = (group, host)
        found = self.name_matches.get(key)
        if found is None:
            found = find_name_match(group, host) or False
            if len(self.name_matches) >= MEMO_LIMIT:
                self.name_matches.clear()
            self.name_matches[key] = found
        return found or None

    def for_group(self, group: ListenGroup) -> dict[Any, Any]:
        """The (Host header, target) → route table of one listen group."""
        table = self.targets.get(group)
        if table is None:
            table = self.targets[group] = {}
        return table


def _memoised(memo: dict[Any, Any], owner: Any, name: str, find: Any) -> Any:
    """find(owner, name), remembered; the table is emptied rather than grown past its limit."""
    key = (owner, name)
    found = memo.get(key)
    if found is None:
        found = find(owner, name)
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = found
    return found


def find_server(group: ListenGroup, host: str) -> Server:
    server = group.exact_names.get(host)
    if server is not None:
        return server
    if host:
        for suffix, candidate in group.wildcard_front:
            if host.endswith(suffix) and len(host) > len(suffix):
                return candidate
        for start, candidate in group.wildcard_back:
            if host.startswith(start) and len(host) > len(start):
                return candidate
        for regex, candidate in group.regex_names:
            if regex.search(host):
                return candidate
    return group.default


def find_name_match(group: ListenGroup, host: str) -> re.Match[str] | None:
    """find_server's choice again, saying which regex name made it: its match, or None
    when an exact or wildcard name (or no name) chose the server: no captures then."""
    if not host or host in group.exact_names:
        return None
    for suffix, _ in group.wildcard_front:
        if host.endswith(suffix) and len(host) > len(suffix):
            return None
    for start, _ in group.wildcard_back:
        if host.startswith(start) and len(host) > len(start):
            return None
    for regex, _ in group.regex_names:
        match = regex.search(host)
        if match is not None:
            return match
    return None


def find_location(server: Server, path: str) -> Location:
    found, _ = _find(server, path)
    return found if found is not None else server.fallback


def _find(level: Server | Location, path: str) -> tuple[Location | None, bool]:
    """nginx's ngx_http_core_find_location over one level (a server, or the locations
    nested in one): (the location, whether the search ends there).

    `=` PATH ends it. Otherwise the longest prefix (one that is the whole PATH too: nginx
    1.22 answers NGX_AGAIN for it, later ones NGX_OK), then its nested locations (a match
    of an inner `=` or regex ends the search), then — unless that prefix is `^~` — this
    level's regexes in order; a regex that matches ends the search, after its own nested
    locations had their say. Without a regex match: the innermost prefix found."""
    exact = level.exact.get(path)
    if exact is not None:
        return exact, True
    found = None
    noregex = False
    for candidate in level.prefixes:  # longest first: the first match is the longest
        if path.startswith(candidate.pattern):
            found = candidate
            noregex = candidate.modifier == "^~"
            if candidate.prefixes or candidate.regexes or candidate.exact:
                inner, final = _find(candidate, path)
                if final:
                    return inner, True
                if inner is not None:
                    found = inner
            break
    if not noregex:
        for candidate in level.regexes:
            if candidate.regex.search(path):
                if candidate.prefixes or candidate.regexes or candidate.exact:
                    inner, _ = _find(candidate, path)
                    if inner is not None:
                        return inner, True
                return candidate, True
    return found, False


def all_locations(server: Server) -> list[Location]:
    """Every location of SERVER, nested ones too, its fallback first."""
    out: list[Location] = [server.fallback]
    stack: list[Server | Location] = [server]
    while stack:
        level = stack.pop()
        for loc in (*level.exact.values(), *level.prefixes, *level.regexes):
            out.append(loc)
            stack.append(loc)
    return out
