"""Directive rows for WebDAV (nginx's ngx_http_dav_module): dav_methods, dav_access,
create_full_put_path, min_delete_depth. Only parses, registers and builds one location's
Dav settings (`build`, called by locations.py); the methods themselves are handlers/dav.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .lexer import Statement
from .table import ANY, DIRECTIVES, HSL, _flag, directive, fail

DAV_METHODS = ("PUT", "DELETE", "MKCOL", "COPY", "MOVE")


@dataclass(slots=True, frozen=True)
class Dav:
    """One location's DAV settings; a location without dav_methods has None."""

    methods: frozenset[str]
    file_mode: int  # dav_access: the mode of a file PUT stores (nginx's default 0600)
    dir_mode: int  # the same with x where r is (nginx's ngx_dir_access), for directories
    create_full_put_path: bool
    min_delete_depth: int


def _dav_methods(stmt: Statement, args: list[str]) -> frozenset[str]:
    # nginx's bitmask slot: case-insensitive words; "off" adds nothing (with others or alone)
    methods = set()
    for word in args:
        upper = word.upper()
        if upper == "OFF":
            continue
        if upper not in DAV_METHODS:
            raise fail(stmt, f'invalid value "{word}"')
        methods.add(upper)
    return frozenset(methods)


def _access(stmt: Statement, args: list[str]) -> int:
    """nginx's ngx_conf_set_access_slot: user:rw is implied unless user: is given."""
    mode, user = 0, 0o600
    for word in args:
        who, _, right = word.partition(":")
        shift = {"user": 6, "group": 3, "all": 0}.get(who) if _ else None
        bits = {"rw": 6, "r": 4}.get(right)
        if shift is None or bits is None:
            raise fail(stmt, f'invalid value "{word}"')
        if who == "user":
            user = 0
        mode |= bits << shift
    return mode | user


def _min_delete_depth(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit():
        raise fail(stmt, '"min_delete_depth" directive invalid number')
    return int(args[0])


directive(
    "dav_methods",
    HSL,
    1,
    ANY,
    _dav_methods,
    default=frozenset(),
    syntax="dav_methods off | [PUT] [DELETE] [MKCOL] [COPY] [MOVE];",
    default_text="off",
    doc="WebDAV methods answered here on the files under `root`/`alias`, as nginx's dav "
    "module: PUT (201 or 204, atomic), DELETE (recursive for a `/`-ending URI), MKCOL, "
    "COPY and MOVE (Destination, Depth, Overwrite). They are added to what the location "
    "answers (allow_methods).",
)
directive(
    "dav_access",
    HSL,
    1,
    3,
    _access,
    default=0o600,
    syntax="dav_access users:permissions ...;",
    default_text="user:rw",
    doc="Mode of what PUT, MKCOL and COPY create: `user:rw group:r all:r` is 0644; "
    "directories get x where they get r.",
)
directive(
    "create_full_put_path",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="create_full_put_path on | off;",
    default_text="off",
    doc="PUT creates the missing directories of its path (with dav_access's mode); off: 409.",
)
directive(
    "min_delete_depth",
    HSL,
    1,
    1,
    _min_delete_depth,
    default=0,
    syntax="min_delete_depth NUMBER;",
    default_text="0",
    doc="DELETE of a URI with fewer than NUMBER path segments → 409.",
)


def _setting(s: dict[str, Any], name: str) -> Any:
    return s[name] if name in s else DIRECTIVES[name].default


def build(s: dict[str, Any]) -> Dav | None:
    """A location's Dav, or None when dav_methods is off (nothing to pay per request)."""
    methods = _setting(s, "dav_methods")
    if not methods:
        return None
    mode = _setting(s, "dav_access")
    return Dav(
        methods=methods,
        file_mode=mode,
        dir_mode=mode | (mode & 0o444) >> 2,
        create_full_put_path=_setting(s, "create_full_put_path"),
        min_delete_depth=_setting(s, "min_delete_depth"),
    )
