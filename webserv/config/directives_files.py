"""Directive rows for a location's files: where they are (root, alias), which a directory
answers with (index, autoindex), their types (types, default_type), the open file cache
(open_file_cache, open_file_cache_valid) and where writing methods write (upload_store).
Only parses and registers; locations.py builds the Location, files.py and the handlers
serve from it. Never touches the file system.
"""

from __future__ import annotations

from typing import Any

from .. import variables
from .lexer import Statement
from .table import ANY, HSL, LOCATION, _flag, _path, _time, directive, fail
from .values import parse_time


def _open_file_cache(stmt: Statement, args: list[str]) -> tuple[int, float] | None:
    if args == ["off"]:
        return None
    max_entries, inactive = 0, 60.0
    for opt in args:
        key, _, value = opt.partition("=")
        if key == "max" and value.isdigit() and int(value) > 0:
            max_entries = int(value)
        elif key == "inactive" and parse_time(value) is not None:
            inactive = parse_time(value)
        else:
            raise fail(stmt, f'invalid "open_file_cache" parameter "{opt}"')
    if not max_entries:
        raise fail(stmt, '"open_file_cache" must have the "max" parameter')
    return (max_entries, inactive)


def _index(stmt: Statement, args: list[str]) -> tuple[Any, ...]:
    """Names as they are, or a compiled template for a name with `$` (rendered per request)."""
    names: list[Any] = []
    for name in args:
        if not name:
            raise fail(stmt, 'index "" in "index" directive is invalid')
        if "$" not in name:
            names.append(name)
            continue
        try:
            names.append(variables.compile_template(name, escape="none_raw"))
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
    return tuple(names)


directive(
    "root",
    HSL,
    1,
    1,
    _path,
    default="html",
    syntax="root PATH;",
    default_text="html",
    doc="Files are looked up at PATH + URI. A relative PATH is relative to the config's folder.",
)
directive(
    "alias",
    LOCATION,
    1,
    1,
    _path,
    syntax="alias PATH;",
    default_text="none",
    doc="Replace the matched location prefix with PATH to find a file.",
)
directive(
    "index",
    HSL,
    1,
    ANY,
    _index,
    multi=True,
    default=("index.html",),
    syntax="index FILE ...;",
    default_text="index.html",
    doc="Files tried, in order, for a URI ending in `/`: the first that exists is an "
    "internal redirect to URI+FILE (the location is chosen again). A FILE starting with "
    "`/` is a URI, redirected to without a test; FILE may hold `$variables`.",
)
directive(
    "autoindex",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="autoindex on | off;",
    default_text="off",
    doc="List a directory that has no index file.",
)
directive(
    "types",
    HSL,
    0,
    0,
    None,
    block=True,
    # nginx's built-in map when no `types` block is given; config/mime.types is the full one
    default={"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"},
    syntax="types { TYPE EXT ...; ... }",
    default_text="html gif jpg",
    doc="File extension → MIME type map. Without one, only nginx's three built-in types: "
    "`include mime.types;` (config/mime.types) for the full list.",
)
directive(
    "default_type",
    HSL,
    1,
    1,
    _path,
    default="application/octet-stream",
    syntax="default_type TYPE;",
    default_text="application/octet-stream",
    doc="Content-Type of a file whose extension is not in `types`.",
)
directive(
    "open_file_cache",
    HSL,
    1,
    2,
    _open_file_cache,
    default=(1024, 60.0),
    syntax="open_file_cache max=N [inactive=TIME] | off;",
    default_text="max=1024 inactive=60s",
    doc="Keep open descriptors and metadata of served files.",
)
directive(
    "open_file_cache_valid",
    HSL,
    1,
    1,
    _time,
    default=1.0,
    syntax="open_file_cache_valid TIME;",
    default_text="1s",
    doc="How long a cached file is served before its path is checked again (`stat`). "
    "Changes made through webserv (PUT, DELETE, uploads) are seen at once.",
)
directive(
    "upload_store",
    HSL,
    1,
    1,
    _path,
    syntax="upload_store DIR;",
    default_text="none",
    doc="Where POST (forms and raw bodies) and PUT write, and DELETE removes, for this "
    "location; created at start if missing. Without it, writing methods get 403.",
)
