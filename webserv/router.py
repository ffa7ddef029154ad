"""Server and location selection, nginx's order, with small memo tables.

select_server: exact name → longest `*.front` wildcard → longest `back.*` wildcard → regex
names in order → the address's default server.
select_location: `=` exact → longest prefix (`^~` stops) → regexes in config order → that
longest prefix → the server's own settings.
Both results are memoised per (group, host) and (server, path); the memo is bounded so a
client sending endless distinct paths cannot grow it without limit.
"""

from __future__ import annotations

from typing import Any

from .config.model import ListenGroup, Location, Server

MEMO_LIMIT = 4096

# keyed by the objects themselves (hashed by identity), not id(): a key holds its group or
# server alive, so a config dropped by a reload can never lend its id to a new object
_server_memo: dict[tuple[ListenGroup, str], Server] = {}
_location_memo: dict[tuple[Server, str], Location] = {}


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


def select_server(group: ListenGroup, host: str) -> Server:
    return _memoised(_server_memo, group, host, _find_server)


def _find_server(group: ListenGroup, host: str) -> Server:
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


def select_location(server: Server, path: str) -> Location:
    return _memoised(_location_memo, server, path, _find_location)


def _find_location(server: Server, path: str) -> Location:
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
