"""Directive rows for nginx's rewrite module and try_files: rewrite, rewrite_log, try_files.

Parses and registers the rows, and the phase builders (table.phase_builder) that turn a
location's settings into rewrite.py / try_files.py phase objects. As nginx, neither
`rewrite` nor `try_files` is inherited from the server by its locations: the server's rules
run once before the location is chosen (ServerRewrite), its try_files only where no location
matches. Tells a location's own settings from the server's by the `_server` entry load.py
puts in a location's settings (the server block's own). Never runs a rule.
"""

from __future__ import annotations

import re
from typing import Any

from .. import variables
from ..rewrite import FLAGS, REDIRECT_PREFIXES, LocationRewrite, Rule, ServerRewrite, compile_parts
from ..try_files import TryFiles
from .lexer import Statement
from .table import HSL, LOCATION, PRECONTENT, REWRITE, SERVER, _flag, directive, fail, phase_builder
from .values import compile_regex

SL = frozenset({SERVER, LOCATION})


def _variable(stmt: Statement):
    def compile_one(name: str):
        try:
            return variables.compile_template("${" + name + "}", escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None

    return compile_one


def _template(stmt: Statement, text: str):
    """TEXT with its $variables as one function of the exchange (no captures here)."""
    try:
        return variables.compile_template(text, escape="none_raw")
    except variables.UnknownVariable as exc:
        raise fail(stmt, str(exc)) from None


def _rewrite(stmt: Statement, args: list[str]) -> Rule:
    pattern, replacement = args[0], args[1]
    flag = args[2] if len(args) == 3 else ""
    if flag and flag not in FLAGS:
        raise fail(stmt, f'invalid parameter "{flag}"')
    try:
        regex = compile_regex(pattern)
    except re.error as exc:
        # nginx: pcre2_compile() failed: missing closing parenthesis in "^/(x"
        raise fail(stmt, f'regex compile failed: {exc} in "{pattern}"') from None
    add_args = True
    if replacement.endswith("?"):
        replacement, add_args = replacement[:-1], False
    redirect = 0
    if flag == "permanent":
        redirect = 301
    elif flag == "redirect" or replacement.startswith(REDIRECT_PREFIXES):
        redirect = 302
    parts = compile_parts(replacement, frozenset(regex.groupindex), _variable(stmt))
    return Rule(regex, pattern, parts, flag, redirect, add_args)


def _try_files(stmt: Statement, args: list[str]) -> TryFiles:
    *names, last = args
    # "NAME/" tests a directory, and the path becomes NAME without the "/" (as nginx: a
    # directory then answers with its 301 to the slashed path, or its index)
    compiled = tuple(
        (_template(stmt, name[:-1] if name.endswith("/") else name), name.endswith("/"))
        for name in names
    )
    if last.startswith("="):
        code_text = last[1:]
        if not code_text.isdigit() or not 100 <= int(code_text) <= 999:
            raise fail(stmt, f'invalid code "{last}"')
        return TryFiles(compiled, None, int(code_text))
    if last.startswith("@"):
        raise fail(stmt, f'named locations ("{last}") are not supported by webserv')
    return TryFiles(compiled, _template(stmt, last), 0)


directive(
    "rewrite",
    SL,
    2,
    3,
    _rewrite,
    multi=True,
    syntax="rewrite REGEX REPLACEMENT [last | break | redirect | permanent];",
    default_text="none",
    doc="Where the path matches REGEX, replace it with REPLACEMENT (`$1`..`$9`, named "
    "captures and variables). Rules of a level run in order; `last` chooses the location "
    "again with the new path, `break` stops rewriting and stays in this location, "
    "`redirect` (or a REPLACEMENT starting with `http://`, `https://`, `$scheme`) answers "
    "302, `permanent` 301; without a flag the next rules run and the location is chosen "
    "again. The query string is appended unless REPLACEMENT ends with `?`. Server-level "
    "rules run before the location is chosen; a location does not inherit them.",
)
directive(
    "rewrite_log",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="rewrite_log on | off;",
    default_text="off",
    doc="Log each matching `rewrite` and its result to the error log at `notice`.",
)
directive(
    "try_files",
    SL,
    2,
    -1,
    _try_files,
    syntax="try_files FILE ... URI | =CODE;",
    default_text="none",
    doc="Serve the first FILE that exists below `root`/`alias` (variables allowed; a name "
    "ending in `/` must be a directory), in this location; if none does, redirect "
    "internally to URI or answer CODE. `try_files $uri $uri/ /index.html;` is the "
    "single-page-app fallback. A location does not inherit the server's.",
)


# --- phase builders: what a location runs, decided at load --------------------------------


def _own(s: dict[str, Any], server: dict[str, Any] | None, name: str) -> Any:
    """NAME's value set in this location itself (not inherited from the server)."""
    found = s.get(name)
    if server is not None and found is server.get(name):
        return None
    return found


def _rules(entries: Any) -> tuple[Rule, ...]:
    return tuple(rule for rule, _ in entries or ())


def build_server_rewrite(s: dict[str, Any], loader: Any) -> ServerRewrite | None:
    server = s.get("_server")
    level = server if server is not None else s
    rules = _rules(level.get("rewrite"))
    if not rules:
        return None
    return ServerRewrite(rules, level.get("return") is not None, bool(s.get("rewrite_log")))


def build_location_rewrite(s: dict[str, Any], loader: Any) -> LocationRewrite | None:
    server = s.get("_server")
    if server is None:
        return None  # the server's fallback: nginx skips the location phase there
    rules = _rules(_own(s, server, "rewrite"))
    own_return = _own(s, server, "return")
    if not rules and not (own_return is not None and server.get("rewrite")):
        return None  # (a return with server rules must wait for them: it is owned here)
    return LocationRewrite(rules, own_return is not None, bool(s.get("rewrite_log")))


def build_try_files(s: dict[str, Any], loader: Any) -> TryFiles | None:
    return _own(s, s.get("_server"), "try_files")


phase_builder(REWRITE, build_server_rewrite)
phase_builder(REWRITE, build_location_rewrite)
phase_builder(PRECONTENT, build_try_files)
