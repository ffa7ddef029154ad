"""nginx's rewrite-module script, for a level (server or location) with `if`, `break` or `set`.

Such a level's rewrite directives (`rewrite`, `return`, `break`, `set`, `if` and those inside
it) are compiled at load (directives_rewrite.py) into a tuple of ops run in the order written,
as nginx runs its script codes: an `if` whose condition holds runs its block, then the
level's next directives (nginx compiles the block inline); `return` answers, `break` (or
`rewrite ... break`) stops and stays in the location, `rewrite ... last` stops and chooses
the location again, a `rewrite` without flag goes on, `set` stores a value in the
exchange's `set_vars` (variables.py reads it wherever the name is used; it stays through
the request's internal redirects, as nginx's). Captures follow nginx's rules (_State):
`$1`..`$9` of the last regex run, named groups as variables.

Levels without `if`, `break` or `set` keep rewrite.py's phases and pay nothing for this module.
Never chooses a location itself (dispatch.reroute does, on REROUTE).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

from . import phases, server_names
from .handlers import static
from .http.errors import HttpError
from .http.request import Exchange
from .http.response import Response
from .rewrite import Rule, apply_rule

LAST, BREAK = "last", "break"  # how a script stopped without answering


class _State:
    """One run of a script: its captures (what compiled parts read as a match's `group`)
    and whether the path changed. As nginx: `$1`..`$9` are the last regex run's (none when
    it failed or has no groups; before any, the location's or server name's); a named group
    is a variable, set by the last regex that matched with it and kept after."""

    __slots__ = ("ex", "match", "named", "changed")

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.match: Any = None  # None: no regex run yet; False: the last one left none
        self.named: dict[str, str] | None = None
        self.changed = False

    def matched(self, match: re.Match[str] | None) -> None:
        self.match = False if match is None else match
        if match is not None and match.re.groupindex:
            named = dict(self.named or ())
            named.update(match.groupdict(""))
            self.named = named

    def group(self, key: int | str) -> str:
        if type(key) is str:
            if self.named is not None and key in self.named:
                return self.named[key]
            return server_names.capture(self.ex, key)
        match = self.match
        if match is None:
            return server_names.capture(self.ex, key)
        if match is False:
            return ""
        try:
            return match.group(key) or ""
        except IndexError:
            return ""


def render(parts: tuple[Any, ...], ex: Exchange, st: _State) -> str:
    """Parts from rewrite.compile_parts, with the script's captures."""
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
        elif type(part) is int:
            out.append(st.group(part))
        else:
            out.append(part(ex, st))
    return "".join(out)


# --- conditions ---------------------------------------------------------------------------


class VarTest:
    """`if ($var)`: false when the value is empty or "0"."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[Any, ...]) -> None:
        self.value = value

    def test(self, ex: Exchange, st: _State) -> bool:
        text = render(self.value, ex, st)
        return text != "" and text != "0"


class Compare:
    """`if ($var = TEXT)`, `if ($var != TEXT)`: exact comparison."""

    __slots__ = ("value", "other", "negate")

    def __init__(self, value: tuple[Any, ...], other: tuple[Any, ...], negate: bool) -> None:
        self.value, self.other, self.negate = value, other, negate

    def test(self, ex: Exchange, st: _State) -> bool:
        same = render(self.value, ex, st) == render(self.other, ex, st)
        return same != self.negate


class RegexTest:
    """`~`, `~*`, `!~`, `!~*`: a match gives its captures to what follows."""

    __slots__ = ("value", "regex", "negate")

    def __init__(self, value: tuple[Any, ...], regex: re.Pattern[str], negate: bool) -> None:
        self.value, self.regex, self.negate = value, regex, negate

    def test(self, ex: Exchange, st: _State) -> bool:
        match = self.regex.search(render(self.value, ex, st))
        st.matched(match)
        return (match is None) == self.negate


class FileTest:
    """`-f`, `-d`, `-e`, `-x` and their `!` forms on a path (stat follows symlinks, as
    nginx's open_file_cache test does); a path that cannot be stat'ed is "missing"."""

    __slots__ = ("path", "kind", "negate")

    def __init__(self, path: tuple[Any, ...], kind: str, negate: bool) -> None:
        self.path, self.kind, self.negate = path, kind, negate

    def test(self, ex: Exchange, st: _State) -> bool:
        path = render(self.path, ex, st)
        try:
            mode = os.stat(path).st_mode
        except (OSError, ValueError):  # (ValueError: a NUL in the path)
            return self.negate
        kind = self.kind
        if kind == "f":
            found = stat.S_ISREG(mode)
        elif kind == "d":
            found = stat.S_ISDIR(mode)
        elif kind == "e":
            found = True
        else:  # "x": nginx's ngx_is_exec, the owner's x bit (so a directory is one)
            found = mode & stat.S_IXUSR == stat.S_IXUSR
        return found != self.negate


# --- ops ----------------------------------------------------------------------------------


class RuleOp:
    __slots__ = ("rule",)

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def run(self, ex: Exchange, st: _State, log: bool) -> Any:
        rule = self.rule
        match = rule.regex.search(ex.path)
        st.matched(match)
        if match is None:
            return None
        response = apply_rule(ex, rule, st, log)  # (st: its captures, and the if's names)
        if response is not None:
            return response
        st.changed = True
        return rule.flag or None  # "last", "break", or go on


class ReturnOp:
    """`return CODE [TEXT]`; TEXT is RENDER(ex, match), None without one."""

    __slots__ = ("code", "render")

    def __init__(self, code: int, render: Any) -> None:
        self.code, self.render = code, render

    def run(self, ex: Exchange, st: _State, log: bool) -> Response:
        text = self.render(ex, st) if self.render is not None else None
        return answer(ex, self.code, text)


class SetOp:
    """`set $NAME VALUE`: VALUE rendered now, kept under NAME (lowercased) for this request."""

    __slots__ = ("key", "value")

    def __init__(self, key: str, value: tuple[Any, ...]) -> None:
        self.key, self.value = key, value

    def run(self, ex: Exchange, st: _State, log: bool) -> None:
        text = render(self.value, ex, st)
        values = getattr(ex, "set_vars", None)
        if values is None:
            ex.set_vars = {self.key: text}
        else:
            values[self.key] = text


class SetArgsOp(SetOp):
    """`set $args VALUE`: the query string itself ($args, $is_args, $arg_NAME follow; nginx's
    set handler of $args), not $request_uri."""

    __slots__ = ()

    def run(self, ex: Exchange, st: _State, log: bool) -> None:
        ex.query = render(self.value, ex, st)


class BreakOp:
    __slots__ = ()

    def run(self, ex: Exchange, st: _State, log: bool) -> str:
        return BREAK


class IfOp:
    __slots__ = ("condition", "ops")

    def __init__(self, condition: Any, ops: tuple[Any, ...]) -> None:
        self.condition, self.ops = condition, ops

    def run(self, ex: Exchange, st: _State, log: bool) -> Any:
        if not self.condition.test(ex, st):
            return None
        return run_ops(self.ops, ex, st, log)


def run_ops(ops: tuple[Any, ...], ex: Exchange, st: _State, log: bool) -> Any:
    for op in ops:
        result = op.run(ex, st, log)
        if result is not None:
            return result
    return None


# same answers as dispatch.answer_return, for a `return` of the script (it may sit in an `if`)
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def answer(ex: Exchange, code: int, text: str | None) -> Response:
    if code == 444:
        return Response(444, close=True)  # nginx's "close without answering"
    if code in REDIRECTS:
        return static.redirect(code, text or "", ex.location.server_tokens, ex)
    if text is None:
        if code >= 400:
            raise HttpError(code)  # asked for: nothing for the error log
        return Response(code)
    ctype = ex.location.default_type
    return Response(
        code, f"Content-Type: {ctype}\r\n".encode(), text.encode("utf-8", "surrogateescape")
    )


# --- the phase objects ----------------------------------------------------------------------


class _Script:
    __slots__ = ("ops", "takes_return", "log")

    def __init__(self, ops: tuple[Any, ...], takes_return: bool, log: bool) -> None:
        self.ops = ops
        self.takes_return = takes_return  # this level's `return` is one of the ops
        self.log = log

    def check(self, ex: Exchange) -> None:
        return None


class ServerScript(_Script):
    """The server's script, before the location counts (nginx's server rewrite phase)."""

    __slots__ = ()

    def run(self, ex: Exchange) -> Any:
        if ex.redirects:
            return None  # a later pass: not again
        st = _State(ex)
        result = run_ops(self.ops, ex, st, self.log)
        if isinstance(result, Response):
            return result
        return phases.REROUTE if st.changed else None


class LocationScript(_Script):
    """A location's own script: `last` or a change without flag chooses the location again."""

    __slots__ = ()

    def run(self, ex: Exchange) -> Any:
        st = _State(ex)
        result = run_ops(self.ops, ex, st, self.log)
        if result is None:
            return phases.REROUTE if st.changed else None
        if result is BREAK or result == BREAK:
            return None
        if result == LAST:
            return phases.REROUTE
        return result
