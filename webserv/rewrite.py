"""nginx's rewrite module at request time: `rewrite` rules and their phase objects.

A `Rule` is compiled once at config load (directives_rewrite.py parses it): its regex, its
REPLACEMENT as a list of parts (text, `$1`..`$9` and named captures, variables), its flag.
Two phase objects run rules (phases.py), as nginx's two rewrite phases:
- `ServerRewrite`, first in every location of a server that has server-level rewrites: it
  runs them before the location counts (nginx's server rewrite phase, before the location
  is chosen); when one matched, the request is re-routed (REROUTE) by its new path. It runs
  for the request as the client sent it only, not again after a redirect.
- `LocationRewrite`, a location's own rules (nginx does not inherit them from the server).
Either may own its level's `return` (nginx runs `rewrite` and `return` in order): then it
answers the `return` when no rule stopped the rewriting, and dispatch leaves it to them.

Never touches a socket or a file, never chooses a location itself (dispatch.reroute does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import phases
from .handlers import static
from .http.errors import HttpError
from .http.request import Exchange
from .http.response import Response

REDIRECT_PREFIXES = ("http://", "https://", "$scheme")
FLAGS = ("last", "break", "redirect", "permanent")

# a part of a replacement: str (literal), int (capture number), or a function of (ex, match)
Part = Any


@dataclass(slots=True, frozen=True)
class Rule:
    regex: re.Pattern[str]
    source: str  # REGEX as written, for rewrite_log
    parts: tuple[Part, ...]  # the REPLACEMENT, ending "?" removed
    flag: str  # "", "last", "break", "redirect", "permanent"
    redirect: int  # 0 (internal), 301 or 302
    add_args: bool  # the original query string is appended (no "?" at the end)
    # a redirect's arguments follow "&" if the REPLACEMENT as written has a "?" (nginx's
    # code->args), else "?", whatever its variables and captures hold
    args_after_amp: bool = False

    def render(self, ex: Exchange, match: re.Match[str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if type(part) is str:
                out.append(part)
            elif type(part) is int:
                out.append(_group(match, part))
            else:
                out.append(part(ex, match))
        return "".join(out)


def _group(match: re.Match[str], key: int | str) -> str:
    try:
        return match.group(key) or ""
    except IndexError:  # "$3" of a regex with two groups: empty, as nginx
        return ""


# nginx's NGX_ESCAPE_ARGS: what a capture copied into the query string is escaped for
_ARGS_UNSAFE = frozenset(b" #%&+;?") | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))


def escape_args(text: str) -> str:
    data = text.encode("utf-8", "surrogateescape")
    if not any(b in _ARGS_UNSAFE for b in data):
        return text
    return "".join(f"%{b:02X}" if b in _ARGS_UNSAFE else chr(b) for b in data)


def _quoted(ex: Exchange) -> bool:
    """The request's path had a %-escape or a "+" (nginx's quoted_uri, plus_in_uri): only
    then is a capture escaped where it lands in the query string, or in a redirect."""
    raw = ex.raw_target
    cut = raw.find(b"?")
    path = raw if cut < 0 else raw[:cut]
    return b"%" in path or b"+" in path


def _args_capture(key: int | str) -> Callable[[Exchange, re.Match[str]], str]:
    def render(ex: Exchange, match: re.Match[str]) -> str:
        value = _group(match, key)
        return escape_args(value) if value and _quoted(ex) else value

    return render


_REF = re.compile(r"\$(?:([1-9])|\{([A-Za-z0-9_]+)\}|([A-Za-z_][A-Za-z0-9_]*))")


def compile_parts(
    text: str,
    groups: frozenset[str],
    variable: Callable[[str], Callable[[Any], str]],
    redirect: bool = False,
) -> tuple[Part, ...]:
    """TEXT as parts: literals, capture numbers, named captures, variables (VARIABLE(name)
    compiles one; it raises for an unknown name). In the query string, and anywhere in a
    REDIRECT's target, captures are escaped as nginx escapes them there (its is_args and
    quote: see _quoted)."""
    parts: list[Part] = []
    pos = 0
    in_args = redirect  # past a literal "?" (or a redirect): captures are escaped there
    for m in _REF.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
            in_args = in_args or "?" in text[pos : m.start()]
        digit, braced, bare = m.groups()
        name = braced or bare
        if digit is not None:
            parts.append(_args_capture(int(digit)) if in_args else int(digit))
        elif name in groups:
            parts.append(_args_capture(name) if in_args else _named(name))
        else:
            render = variable(name)
            parts.append(lambda ex, match, render=render: render(ex))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def unescape_redirect(target: str) -> str:
    """nginx's ngx_unescape_uri(NGX_UNESCAPE_REDIRECT) of a `rewrite` redirect's target
    (ngx_http_script_regex_end_code), before the request's arguments are added: up to the
    first `?` (literal or %3F, which is decoded and kept), a %XX is decoded if it is a
    printable character above `%` and kept as it is otherwise (CR, LF, space, `%`, non-ASCII:
    a header line is never split); a `%` without two hex digits after it goes with nginx's
    quirks (`%` and a non-hex: the `%` is dropped; `%X` and a non-hex: all three are)."""
    if "%" not in target:
        return target
    out: list[str] = []
    i, n = 0, len(target)
    while i < n:
        ch = target[i]
        if ch == "?":
            return "".join(out) + target[i:]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        first = target[i + 1 : i + 2]
        if not first:
            break  # a "%" at the end: dropped
        if first not in _HEX:
            out.append(first)  # nginx drops the "%" and writes what follows as it is
            i += 2
            continue
        second = target[i + 2 : i + 3]
        if not second or second not in _HEX:
            i += 3  # "%X" then a non-hex: all three are dropped (at the end: the two)
            continue
        code = int(first + second, 16)
        i += 3
        if code == 0x3F and second not in "0123456789":
            return "".join(out) + "?" + target[i:]  # %3F: decoded, and the end of it
        out.append(chr(code) if 0x25 < code < 0x7F else target[i - 3 : i])
    return "".join(out)


_HEX = "0123456789abcdefABCDEF"


def _named(name: str) -> Callable[[Exchange, re.Match[str]], str]:
    return lambda ex, match: _group(match, name)


def clean_path(path: str) -> str | None:
    """A rewritten or tried path made safe to route and to join to a root: a leading "/",
    dot segments removed (never above "/"), repeated slashes merged; None if it has a NUL.
    Not percent-decoded: nginx takes a rewritten URI as it is (decoded already)."""
    if "\x00" in path:
        return None
    if not path.startswith("/"):
        path = "/" + path
    if "/." not in path and "//" not in path:
        return path
    segments: list[str] = []
    parts = path.split("/")
    for part in parts[1:-1]:
        if part == "..":
            if segments:
                segments.pop()
        elif part and part != ".":
            segments.append(part)
    last = parts[-1]
    trailing = last in ("", ".", "..")
    if last == "..":
        if segments:
            segments.pop()
    elif not trailing:
        segments.append(last)
    cleaned = "/" + "/".join(segments)
    if trailing and cleaned != "/":
        cleaned += "/"
    return cleaned


def apply_rule(ex: Exchange, rule: Rule, match: Any, log: bool) -> Response | None:
    """RULE, whose regex matched: a redirect Response, or None once ex.path and ex.query
    are rewritten (the caller reads rule.flag). MATCH gives the captures (its `group`)."""
    result = rule.render(ex, match)
    if log:
        ex.location.error_log.notice(f'"{rule.source}" matches "{ex.path}"', ex.conn.id)
    if rule.redirect:
        result = unescape_redirect(result)
        if rule.add_args and ex.query:
            result += ("&" if rule.args_after_amp else "?") + ex.query
        if log:
            ex.location.error_log.notice(f'rewritten redirect: "{result}"', ex.conn.id)
        return static.redirect(rule.redirect, result, ex.location.server_tokens, ex)
    path, question, args = result.partition("?")
    if question:
        if rule.add_args and ex.query:
            args += "&" + ex.query
        ex.query = args
    elif not rule.add_args:
        ex.query = ""
    cleaned = clean_path(path)
    if cleaned is None:
        raise HttpError(400, "rewritten path holds a NUL")
    ex.path = cleaned
    if log:
        ex.location.error_log.notice(f'rewritten data: "{ex.path}", args: "{ex.query}"', ex.conn.id)
    return None


class _Rewrites:
    """Rules of one level (server or location), and the `return` it owns, if any."""

    __slots__ = ("rules", "takes_return", "log")

    def __init__(self, rules: tuple[Rule, ...], takes_return: bool, log: bool) -> None:
        self.rules = rules
        self.takes_return = takes_return  # this level's `return` runs after its rules
        self.log = log  # rewrite_log on

    def check(self, ex: Exchange) -> None:
        return None

    def apply(self, ex: Exchange) -> tuple[Any, str]:
        """Run the rules: (a redirect Response, "") or (None, how it ended: "" no rule
        matched, "changed" some did, "last" / "break" a rule with that flag stopped it)."""
        ended = ""
        for rule in self.rules:
            match = rule.regex.search(ex.path)
            if match is None:
                continue
            response = apply_rule(ex, rule, match, self.log)
            if response is not None:
                return response, ""
            if rule.flag in ("last", "break"):
                return None, rule.flag
            ended = "changed"
        return None, ended

    def answer_return(self, ex: Exchange) -> Response:
        from .dispatch import answer_return  # (dispatch imports the config, and so this)

        return answer_return(ex)


class ServerRewrite(_Rewrites):
    """The server's rewrites, before the location counts: re-routes when one matched."""

    __slots__ = ()

    def run(self, ex: Exchange) -> Any:
        if ex.redirects:
            return None  # a later pass (rewrite ... last, try_files, error_page): not again
        response, ended = self.apply(ex)
        if response is not None:
            return response
        if ended in ("last", "break"):
            return phases.REROUTE  # the rewriting stops here, the location is chosen
        if self.takes_return:
            return self.answer_return(ex)
        return phases.REROUTE if ended else None


class LocationRewrite(_Rewrites):
    """A location's own rewrites: `last` (or a change without flag) chooses the location
    again, `break` goes on in this one with the new path."""

    __slots__ = ()

    def run(self, ex: Exchange) -> Any:
        response, ended = self.apply(ex)
        if response is not None:
            return response
        if ended == "break":
            return None
        if ended == "last":
            return phases.REROUTE
        if self.takes_return:
            return self.answer_return(ex)
        return phases.REROUTE if ended else None
