"""`try_files FILE ... URI | =CODE;` at request time: nginx's precontent phase.

Each FILE (with its variables rendered) is looked up through the location's root or alias
exactly as a static file would be (static.resolve, then the worker's file cache: the open
descriptor's real path must stay below the real root, so a symlink out of the root is not
found). A name ending in "/" must be a directory, any other a regular file. The first that
exists becomes the request's path in this same location (nginx: no new location is chosen);
when none does, the last argument answers: `=CODE`, or an internal redirect to URI (its own
query string replaces the request's, as nginx's) — REROUTE, counted as a redirect.

Never serves a byte itself (the content handler does, from the new path), never parses
config (directives_rewrite.py builds a TryFiles once per location).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import phases
from .handlers import static
from .http.errors import HttpError
from .http.request import Exchange
from .http.response import Response
from .rewrite import clean_path


class TryFiles:
    """One location's try_files, compiled: the names to try and what answers otherwise."""

    __slots__ = ("names", "fallback", "code")

    def __init__(
        self,
        names: tuple[tuple[Callable[[Any], str], bool], ...],
        fallback: Callable[[Any], str] | None,
        code: int,
    ) -> None:
        self.names = names  # (render, must be a directory)
        self.fallback = fallback  # the URI to redirect to, or None with a code
        self.code = code  # =CODE, 0 with a URI

    def check(self, ex: Exchange) -> None:
        return None

    def run(self, ex: Exchange) -> Any:
        loc = ex.location
        files = ex.conn.worker.files
        original = ex.path
        for render, directory in self.names:
            name = clean_path(render(ex))
            if name is None:
                continue
            if loc.alias is not None and loc.modifier != "=" and not name.startswith(loc.pattern):
                continue  # outside the aliased prefix: nothing of this location's
            ex.path = name
            try:
                path, base = static.resolve(ex)
                entry = files.get(path, base, loc.open_file_cache, loc.open_file_cache_valid)
            except HttpError:
                continue  # missing, unreadable, outside the root: not found
            found = entry.is_dir
            entry.release()
            if found == directory:
                return None  # served from the new path, in this location
        ex.path = original
        if self.fallback is None:
            if self.code >= 400:
                raise HttpError(self.code)  # as `return`: nothing for the error log
            return Response(self.code)
        uri = self.fallback(ex)
        path, _, query = uri.partition("?")
        cleaned = clean_path(path)
        if cleaned is None:
            raise HttpError(400, "try_files fallback holds a NUL")  # (from a variable)
        ex.path = cleaned
        ex.query = query
        ex.cgi = None
        return phases.REROUTE
