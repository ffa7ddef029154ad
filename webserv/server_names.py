"""`server_name ~REGEX` in nginx's PCRE syntax, and which names a config's regexes capture.

nginx compiles server names with PCRE, caseless; Python's `re` spells a few things
otherwise. `pcre_to_python` rewrites, once at load:

    \\Q...\\E         the text between, literal           → re.escape(text)
    \\p{N} \\pL       a Unicode general category (or major class: L, N, P, S, Z, M, C)
                     → a character class of its code points (unicodedata's, made once)
    \\P{N}            its complement (outside a [...] only: a class inside a class
                     cannot be negated in `re`)
    (?<name>...)     a named group                     → (?P<name>...)
    (?'name'...)     the same                          → (?P<name>...)

A script or property name (`\\p{Greek}`, `\\p{Xan}`) is refused with an error at load rather
than matched wrongly. `capture_names` walks a config's statements before anything is parsed
and collects the named groups of its `server_name` and `location` regexes: nginx makes each
one a variable of the whole configuration (`$name`, "" where it did not match).

`capture` is the value of `$1`..`$9` and `$name` in a compiled template (variables.py names
it): the chosen regex location's captures, else those of the regex name that chose the
server (router.Routes.name_match, memoised per (address, Host)). Never chooses a server or a
location itself: router.py does.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Any

_NAME_START = re.compile(r"[A-Za-z_]")


def compile_name_regex(pattern: str) -> re.Pattern[str]:
    """A `server_name ~PATTERN` regex, caseless as nginx's (NGX_REGEX_CASELESS); raises
    re.error (a bad pattern, or a PCRE feature this translation refuses)."""
    return re.compile(pcre_to_python(pattern), re.IGNORECASE)


def pcre_to_python(pattern: str) -> str:
    """PATTERN in Python's `re` syntax (see the module's docstring); raises re.error."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    in_class = False
    class_start = -1  # index in `out` where the current [...] began (for "[]" and "[^]")
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if e == "E":  # a \E without its \Q: PCRE ignores it
                i += 2
                continue
            if e in "pP":
                ranges, i = _category(pattern, i)
                negate = e == "P"
                if in_class:
                    if negate:
                        raise re.error(f"\\P inside a character class at position {i}")
                    out.append(ranges)
                else:
                    out.append(("[^" if negate else "[") + ranges + "]")
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            # a "]" right after "[" or "[^" is a literal one (PCRE and re agree)
            if c == "]" and len(out) > class_start + 1:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            class_start = len(out)
            if pattern.startswith("^", i + 1):
                out.append("^")
                class_start = len(out)
                i += 1
            i += 1
            continue
        if c == "(" and pattern.startswith("(?<", i) and _NAME_START.match(pattern, i + 3):
            out.append("(?P<")
            i += 3
            continue
        if c == "(" and pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end > i + 3:
                out.append(f"(?P<{pattern[i + 3 : end]}>")
                i = end + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _category(pattern: str, at: int) -> tuple[str, int]:
    """The class body for the `\\p` / `\\P` at AT, and where the pattern goes on."""
    start = at + 2
    if start < len(pattern) and pattern[start] == "{":
        end = pattern.find("}", start)
        if end < 0:
            raise re.error(f"missing }} after \\p at position {at}")
        name, after = pattern[start + 1 : end], end + 1
    elif start < len(pattern):
        name, after = pattern[start], start + 1
    else:
        raise re.error(f"\\p without a property at position {at}")
    if name.startswith("^"):  # \p{^N}: PCRE's other spelling of \P{N}
        raise re.error(f"\\p{{^...}} is not supported, write \\P{{...}} (position {at})")
    if name not in _CATEGORIES:
        raise re.error(f"unsupported Unicode property \\p{{{name}}} at position {at}")
    return category_class(name), after


# PCRE's general categories and their one-letter classes (unicodedata's names)
_CATEGORIES = frozenset(
    "L Lu Ll Lt Lm Lo M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po "
    "S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn".split()
)


@cache
def category_class(name: str) -> str:
    """The body of a character class ("0-9\\u0660-...") of every code point in general
    category NAME ("N" is Nd, Nl and No). Made once per category per process: a walk over
    every code point (tenths of a second), only for a config that uses it."""
    one_letter = len(name) == 1
    parts: list[str] = []
    first = last = -2
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if (category[0] == name) if one_letter else (category == name):
            if code == last + 1:
                last = code
                continue
            if first >= 0:
                parts.append(_span(first, last))
            first = last = code
    if first >= 0:
        parts.append(_span(first, last))
    return "".join(parts)


def _span(first: int, last: int) -> str:
    if first == last:
        return _char(first)
    return f"{_char(first)}-{_char(last)}"


def _char(code: int) -> str:
    return f"\\U{code:08x}"


def capture_names(statements: Iterable[Any]) -> frozenset[str]:
    """The named groups of every `server_name ~` and `location ~` / `~*` regex among
    STATEMENTS (all of a config's, blocks' included: lexer.walk; a pattern that does not
    compile is left to its directive's parser to report)."""
    names: set[str] = set()
    for stmt in statements:
        patterns: list[str] = []
        if stmt.name == "server_name":
            patterns = [a[1:] for a in stmt.arg_texts() if a.startswith("~")]
        elif stmt.name == "location":
            args = stmt.arg_texts()
            if len(args) == 2 and args[0] in ("~", "~*"):
                patterns = [args[1]]
            elif len(args) == 1 and args[0].startswith("~") and not args[0].startswith("~*"):
                patterns = [args[0][1:]]
        for pattern in patterns:
            if "(?" not in pattern:
                continue
            try:
                names.update(re.compile(pcre_to_python(pattern)).groupindex)
            except re.error:
                pass
    return frozenset(names)


def capture(x: Any, key: int | str) -> str:
    """A capture of the last regex that matched for this request, as nginx keeps them: the
    chosen `location ~` (when it has groups: numbered captures; when it has that name: a
    named one), else the `server_name ~` that chose the server; "" when neither has it."""
    loc = x.location
    regex = loc.regex if loc is not None else None
    if regex is not None and (key in regex.groupindex if type(key) is str else regex.groups):
        match = regex.search(x.path)
        if match is not None:
            return group_of(match, key)
    server = x.server
    if server is None or not server.has_regex_name:
        return ""
    conn = x.conn
    match = conn.worker.routes.name_match(conn.group, x.host)
    return group_of(match, key) if match is not None else ""


def group_of(match: re.Match[str], key: int | str) -> str:
    try:
        return match.group(key) or ""
    except IndexError:  # (re's answer for a group, number or name, the regex lacks)
        return ""
