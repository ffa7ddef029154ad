"""Directive rows for nginx's rewrite module and try_files: rewrite, rewrite_log, try_files,
if, break and set.

Parses and registers the rows, and the phase builders (table.phase_builder) that turn a
location's settings into rewrite.py / try_files.py phase objects. As nginx, neither
`rewrite` nor `try_files` is inherited from the server by its locations: the server's rules
run once before the location is chosen (ServerRewrite), its try_files only where no location
matches. Tells a location's own settings from the server's by the `_server` entry load.py
puts in a location's settings (the server block's own). A level with `if`, `break` or `set`
runs its rewrite directives as one ordered script (rewrite_if.py), from the `_script` list
of statements load.py keeps for it (`set` names are declared config-wide before, by
variables_set.set_names). Never runs a rule.
"""

from __future__ import annotations

import re
from typing import Any

from .. import variables, variables_set
from ..rewrite import FLAGS, REDIRECT_PREFIXES, LocationRewrite, Rule, ServerRewrite, compile_parts
from ..rewrite_if import (
    BreakOp,
    Compare,
    FileTest,
    IfOp,
    LocationScript,
    RegexTest,
    ReturnOp,
    RuleOp,
    ServerScript,
    SetArgsOp,
    SetOp,
    VarTest,
    render,
)
from ..try_files import TryFiles
from .directives import _return
from .lexer import Statement
from .table import (
    ANY,
    DIRECTIVES,
    HSL,
    LOCATION,
    PRECONTENT,
    REWRITE,
    SERVER,
    _flag,
    directive,
    fail,
    phase_builder,
)
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


def _regex(stmt: Statement, pattern: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return compile_regex(pattern, flags)
    except re.error as exc:
        # nginx: pcre2_compile() failed: missing closing parenthesis in "^/(x"
        raise fail(stmt, f'regex compile failed: {exc} in "{pattern}"') from None


def _rewrite(stmt: Statement, args: list[str], outer: frozenset[str] = frozenset()) -> Rule:
    pattern, replacement = args[0], args[1]
    flag = args[2] if len(args) == 3 else ""
    if flag and flag not in FLAGS:
        raise fail(stmt, f'invalid parameter "{flag}"')
    regex = _regex(stmt, pattern)
    add_args = True
    if replacement.endswith("?"):
        replacement, add_args = replacement[:-1], False
    redirect = 0
    if flag == "permanent":
        redirect = 301
    elif flag == "redirect" or replacement.startswith(REDIRECT_PREFIXES):
        redirect = 302
    groups = outer | frozenset(regex.groupindex)
    parts = compile_parts(replacement, groups, _variable(stmt), redirect=bool(redirect))
    return Rule(regex, pattern, parts, flag, redirect, add_args, "?" in replacement)


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


# --- if and break: nginx's ngx_http_rewrite_if_condition, its wording -----------------------

SCRIPT = frozenset({"rewrite", "return", "break", "if", "set"})  # a level's script directives
_FILE_OPS = frozenset("fdex")
_MATCH_OPS = {"~": (0, False), "~*": (re.IGNORECASE, False), "!~": (0, True)}
_MATCH_OPS["!~*"] = (re.IGNORECASE, True)


def _condition(stmt: Statement, groups: frozenset[str]) -> tuple[Any, frozenset[str]]:
    """The condition in `if ( ... )` and the named groups usable after it."""
    args = stmt.arg_texts()
    if not args[0].startswith("("):
        raise fail(stmt, f'invalid condition "{args[0]}"')
    if args[0] == "(":
        cur = 1
    else:
        cur, args[0] = 0, args[0][1:]
    last = len(args) - 1
    if not args[last].endswith(")"):
        raise fail(stmt, f'invalid condition "{args[last]}"')
    if args[last] == ")":
        last -= 1
    else:
        args[last] = args[last][:-1]
    if cur >= len(args):
        raise fail(stmt, 'invalid condition ")"')
    token = args[cur]

    def parts(text: str) -> tuple[Any, ...]:
        return compile_parts(text, groups, _variable(stmt))

    if len(token) > 1 and token[0] == "$":
        if cur != last and cur + 2 != last:
            raise fail(stmt, f'invalid condition "{token}"')
        op = args[cur + 1] if cur != last else ""
        if op and op not in ("=", "!=") and op not in _MATCH_OPS:
            raise fail(stmt, f'unexpected "{op}" in condition')
        value = parts(token)  # (nginx finds an unknown variable after the syntax)
        if not op:
            return VarTest(value), groups
        if op in _MATCH_OPS:
            flags, negate = _MATCH_OPS[op]
            regex = _regex(stmt, args[last], flags)
            return RegexTest(value, regex, negate), groups | frozenset(regex.groupindex)
        return Compare(value, parts(args[last]), op == "!="), groups
    if (len(token) == 2 and token[0] == "-") or (len(token) == 3 and token[:2] == "!-"):
        if cur + 1 != last or token[-1] not in _FILE_OPS:
            raise fail(stmt, f'invalid condition "{token}"')
        return FileTest(parts(args[last]), token[-1], token[0] == "!"), groups
    raise fail(stmt, f'invalid condition "{token}"')


def _shape(stmt: Statement) -> None:
    """What load.settings checks of a statement, for one inside an `if` block."""
    spec = DIRECTIVES.get(stmt.name)
    if spec is None:
        raise fail(stmt, f'unknown directive "{stmt.name}"')
    if stmt.name == "if":  # (nginx: "if" is a server and location directive only)
        raise fail(stmt, '"if" directive is not allowed here')
    if stmt.name not in SCRIPT:
        if LOCATION in spec.contexts or SERVER in spec.contexts:
            raise fail(stmt, f'"{stmt.name}" is not supported inside "if" by webserv')
        raise fail(stmt, f'"{stmt.name}" directive is not allowed here')
    if spec.block and stmt.block is None:
        raise fail(stmt, f'directive "{stmt.name}" has no opening "{{"')
    if not spec.block and stmt.block is not None:
        raise fail(stmt, f'directive "{stmt.name}" is not terminated by ";"')
    nargs = len(stmt.args)
    if nargs < spec.min_args or (spec.max_args >= 0 and nargs > spec.max_args):
        raise fail(stmt, f'invalid number of arguments in "{stmt.name}" directive')


def _return_op(stmt: Statement, groups: frozenset[str]) -> ReturnOp:
    args = stmt.arg_texts()
    if len(args) == 1 and args[0].startswith(REDIRECT_PREFIXES):
        code, text = 302, args[0]
    else:  # _return's checks and wording for the code (its text may name an if's capture)
        code, text = _return(stmt, args[:1]).code, (args[1] if len(args) > 1 else None)
    if text is None:
        return ReturnOp(code, None)
    text_parts = compile_parts(text, groups, _variable(stmt))
    return ReturnOp(code, lambda ex, match: render(text_parts, ex, match))


def _if_op(stmt: Statement, groups: frozenset[str]) -> IfOp:
    condition, inner = _condition(stmt, groups)
    ops: list[Any] = []
    for child in stmt.block or ():
        _shape(child)
        if child.name == "rewrite":
            ops.append(RuleOp(_rewrite(child, child.arg_texts(), inner)))
        elif child.name == "return":
            ops.append(_return_op(child, inner))
        elif child.name == "set":
            ops.append(_set(child, child.arg_texts(), inner))
        else:
            ops.append(BREAK)
    return IfOp(condition, tuple(ops))


BREAK = BreakOp()

directive(
    "if",
    SL,
    1,
    ANY,
    lambda stmt, args: _if_op(stmt, frozenset()),
    block=True,
    multi=True,
    syntax="if (CONDITION) { ... }",
    default_text="none",
    doc="Run the block's `rewrite`, `return`, `set` and `break` when CONDITION holds: `$var` "
    "(not empty and not `0`), `$var = TEXT`, `$var != TEXT`, `$var ~ REGEX` (`~*` "
    "caseless, `!~`, `!~*` negated; its captures `$1`..`$9` and named ones serve what "
    "follows), `-f`, `-d`, `-e`, `-x` PATH (`!-f`... negated). Runs in order with the "
    "level's other rewrite directives; other directives are refused inside it.",
)
directive(
    "break",
    SL,
    0,
    0,
    lambda stmt, args: BREAK,
    multi=True,
    syntax="break;",
    default_text="none",
    doc="Stop running this level's rewrite directives; the request stays in this location.",
)


# --- set: nginx's ngx_http_rewrite_set, its wording ----------------------------------------


def _set_name(stmt: Statement, written: str) -> str:
    """The variable `set` names, lowercased (nginx's names are caseless); nginx's errors."""
    if not written.startswith("$") or written == "$":
        raise fail(stmt, f'invalid variable name "{written}"')
    key = written[1:].lower()
    if key == "limit_rate":
        raise fail(stmt, '"set $limit_rate" is not supported by webserv (use limit_rate)')
    builtin = variables.lookup(key) is not None and key not in variables.capture_names
    if variables_set.read_only(key, builtin):
        raise fail(stmt, f'the duplicate "{written[1:]}" variable')
    return key


def _set(stmt: Statement, args: list[str], groups: frozenset[str] = frozenset()) -> SetOp:
    key = _set_name(stmt, args[0])
    value = compile_parts(args[1], groups, _variable(stmt))
    return SetArgsOp(key, value) if key == "args" else SetOp(key, value)


directive(
    "set",
    SL,
    2,
    2,
    _set,
    multi=True,
    syntax="set $VARIABLE VALUE;",
    default_text="none",
    doc="Give $VARIABLE the VALUE (text with variables, `$1`..`$9` and named captures of "
    "the last regex run) for the rest of the request, in order with the level's other "
    "rewrite directives (the server's before the location's); it serves later directives, "
    "`if`, `return`, `rewrite`, `add_header`, `log_format`... A variable no `set` ran for on "
    "this request is empty (a warning is logged). `set $args` replaces the query string; "
    "webserv's own variables cannot be set.",
)


def _script(level: dict[str, Any]) -> tuple[Any, ...]:
    """The level's rewrite directives as ops, in the order written (its `_script`)."""
    values: dict[int, Any] = {}
    for name in ("rewrite", "if", "break", "set"):
        for value, stmt in level.get(name) or ():
            values[id(stmt)] = RuleOp(value) if name == "rewrite" else value
    ops: list[Any] = []
    for stmt in level["_script"]:
        if stmt.name == "return":  # (its text's $1.. are the script's captures)
            ops.append(_return_op(stmt, frozenset()))
        else:
            ops.append(values[id(stmt)])
    return tuple(ops)


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
    log = bool(s.get("rewrite_log"))
    if level.get("_script") is not None:
        return ServerScript(_script(level), level.get("return") is not None, log)
    rules = _rules(level.get("rewrite"))
    if not rules:
        return None
    return ServerRewrite(rules, level.get("return") is not None, bool(s.get("rewrite_log")))


def build_location_rewrite(s: dict[str, Any], loader: Any) -> LocationRewrite | None:
    server = s.get("_server")
    if server is None:
        return None  # the server's fallback: nginx skips the location phase there
    own_return = _own(s, server, "return")
    if _own(s, server, "_script") is not None:
        return LocationScript(_script(s), own_return is not None, bool(s.get("rewrite_log")))
    rules = _rules(_own(s, server, "rewrite"))
    server_rewrites = server.get("rewrite") or server.get("_script")
    if not rules and not (own_return is not None and server_rewrites):
        return None  # (a return with server rules must wait for them: it is owned here)
    return LocationRewrite(rules, own_return is not None, bool(s.get("rewrite_log")))


def build_try_files(s: dict[str, Any], loader: Any) -> TryFiles | None:
    return _own(s, s.get("_server"), "try_files")


phase_builder(REWRITE, build_server_rewrite)
phase_builder(REWRITE, build_location_rewrite)
phase_builder(PRECONTENT, build_try_files)
