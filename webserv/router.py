"""Server and location selection, nginx's order, with small memo tables.

find_server: exact name → longest `*.front` wildcard → longest `back.*` wildcard → regex
names in order → the address's default server.
find_location: `=` exact → longest prefix (`^~` stops) → regexes in config order → that
longest prefix → the server's own settings.
Both are pure functions of the configuration; `Routes` memoises them for one generation
(the cycle owns it). Nothing here reads a socket or a file.
"""

from __future__ import annotations

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

    __slots__ = ("servers", "locations", "targets")

    def __init__(self) -> None:
        self.servers: dict[tuple[ListenGroup, str], Server] = {}
        self.locations: dict[tuple[Server, str], Location] = {}
        self.targets: dict[ListenGroup, dict[Any, Any]] = {}

    def server(self, group: ListenGroup, host: str) -> Server:
        return _memoised(self.servers, group, host, find_server)

    def location(self, server: Server, path: str) -> Location:
        return _memoised(self.locations, server, path, find_location)

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


def find_location(server: Server, path: str) -> Location:
    exact = server.exact.get(path)
    if exact is not None:
        return exact
    best = None
    for candidate in server.prefixes:  # longest first: the first match is the longest
        if path.startswith(candidate.pattern):
            best = candidate
            break
    if best is not None and best.modifier == "^~":
        return best
    for candidate in server.regexes:
        if candidate.regex.search(path):
            return candidate
    return best if best is not None else server.fallback
