"""The directive table's machinery: the Directive row, the registry, the shared value parsers.

directives.py (the core) and the directives_*.py sections register their rows here through
`directive()`; load.py and the reference read DIRECTIVES. Never holds a directive of its own
and never interprets a config beyond one statement's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .lexer import Statement
from .values import parse_flag, parse_size, parse_time

MAIN, EVENTS, HTTP, SERVER, LOCATION = "main", "events", "http", "server", "location"
HSL = frozenset({HTTP, SERVER, LOCATION})
HS = frozenset({HTTP, SERVER})
ANY = -1


def fail(stmt: Statement, message: str) -> ConfigError:
    return ConfigError(stmt.file, stmt.line, message)


@dataclass(slots=True, frozen=True)
class Directive:
    name: str
    contexts: frozenset[str]
    min_args: int
    max_args: int  # ANY: no upper bound
    parse: Callable[[Statement, list[str]], Any] | None
    default: Any = None
    syntax: str = ""
    default_text: str = ""
    doc: str = ""
    block: bool = False
    # may repeat in one context; values accumulate in a list, and an inner context that has
    # its own replaces the outer list as a whole (nginx: error_page, access_log)
    multi: bool = False


# --- value parsers -------------------------------------------------------------------------


def _one(parse: Callable[[str], Any], what: str) -> Callable[[Statement, list[str]], Any]:
    def parser(stmt: Statement, args: list[str]) -> Any:
        value = parse(args[0])
        if value is None:
            raise fail(stmt, f'invalid {what} "{args[0]}" in "{stmt.name}" directive')
        return value

    return parser


_size = _one(parse_size, "size")
_time = _one(parse_time, "time")


def _flag(stmt: Statement, args: list[str]) -> bool:
    value = parse_flag(args[0])
    if value is None:
        raise fail(
            stmt, f'invalid value "{args[0]}" in "{stmt.name}" directive, it must be "on" or "off"'
        )
    return value


_path = _one(lambda s: s or None, "path")


def _positive_int(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit() or int(args[0]) < 1:
        raise fail(stmt, f'invalid number "{args[0]}" in "{stmt.name}" directive')
    return int(args[0])


def _count(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit():
        raise fail(stmt, f'invalid number "{args[0]}" in "{stmt.name}" directive')
    return int(args[0])


def _words(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    return tuple(args)


# --- the table ---------------------------------------------------------------------------

DIRECTIVES: dict[str, Directive] = {}


def directive(
    name: str, contexts: Any, min_args: int, max_args: int, parse: Any, **kw: Any
) -> None:
    if isinstance(contexts, str):
        contexts = frozenset({contexts})
    DIRECTIVES[name] = Directive(name, frozenset(contexts), min_args, max_args, parse, **kw)


# directives whose lines form one list at a level (nginx's access rules: allow and deny): an
# inner level with any of them replaces the outer level's lines of all of them (load.merge)
SIBLINGS: dict[str, frozenset[str]] = {}


def siblings(*names: str) -> None:
    for name in names:
        SIBLINGS[name] = frozenset(names) - {name}


# --- request phases (phases.py): builders registered by the sections, run by load.py --------

# nginx's phase order; a builder's `order` says where its phase object goes
REWRITE, PREACCESS, ACCESS, PRECONTENT = 10, 20, 30, 40
PHASE_BUILDERS: list[tuple[int, Callable[[dict[str, Any], Any], Any]]] = []


def phase_builder(order: int, build: Callable[[dict[str, Any], Any], Any]) -> None:
    """Register BUILD(settings, loader) -> phase object or None, called for every location
    (and every server's fallback) with its merged settings; None: no such phase here."""
    PHASE_BUILDERS.append((order, build))
    PHASE_BUILDERS.sort(key=lambda entry: entry[0])


# --- reading settings (load.py and locations.py) ---------------------------------------

Settings = dict[str, Any]


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
