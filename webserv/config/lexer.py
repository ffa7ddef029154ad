"""Config tokenizer and statement tree: nginx grammar, every token knows its file:line.

Owns: turning text into `Statement`s (directive + arguments + optional block), and
`include` expansion (files are spliced into the block that names them).
Never interprets a directive's meaning: that belongs to directives.py.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import ConfigError

MAX_INCLUDE_DEPTH = 16
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
_SPECIAL = {";", "{", "}"}


@dataclass(slots=True)
class Token:
    text: str
    file: str
    line: int
    quoted: bool = False  # a quoted ";" or "{" is an argument, not punctuation


@dataclass(slots=True)
class Statement:
    name: str
    args: list[Token]
    file: str
    line: int
    block: list[Statement] | None = None  # None: ends with ";"; a list: had "{ }"
    end_line: int = 0

    def arg_texts(self) -> list[str]:
        return [t.text for t in self.args]


def walk(statements: Iterable[Statement]) -> Iterator[Statement]:
    """Every statement of STATEMENTS and of their blocks, at any depth (in no set order)."""
    stack = list(statements)
    while stack:
        stmt = stack.pop()
        if stmt.block:
            stack.extend(stmt.block)
        yield stmt


def tokenize(text: str, file: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in _SPECIAL:
            tokens.append(Token(c, file, line))
            i += 1
        elif c in "\"'":
            start_line, quote, buf = line, c, []
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(
                        file, start_line, "unexpected end of file, expecting closing quote"
                    )
                c = text[i]
                if c == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    buf.append(_ESCAPES.get(nxt, "\\" + nxt))
                    if nxt == "\n":
                        line += 1
                    i += 2
                    continue
                if c == quote:
                    i += 1
                    break
                if c == "\n":
                    line += 1
                buf.append(c)
                i += 1
            # (nginx lets ")" follow a quote: `if ($a = "b")`, the ")" a word of its own)
            if i < n and text[i] not in " \t\r\n;{}#)":
                raise ConfigError(file, line, f'unexpected "{text[i]}" after a closing quote')
            tokens.append(Token("".join(buf), file, start_line, quoted=True))
        else:
            # nginx's word rules: only blanks, ";" and "{" end an unquoted word, so "#", "}"
            # and quotes inside it are plain characters ("/page#top", "a}"); a "{" right after
            # "$" belongs to a variable ("${host}x"); a backslash keeps the next character
            start, start_line, variable = i, line, False
            while i < n:
                c = text[i]
                if c == "\\" and i + 1 < n:
                    if text[i + 1] == "\n":
                        line += 1
                    i += 2
                    variable = False
                    continue
                if c in " \t\r\n;" or (c == "{" and not variable):
                    break
                variable = c == "$"
                i += 1
            tokens.append(Token(_unescape(text[start:i]), file, start_line))
    return tokens


def _unescape(word: str) -> str:
    """The escapes nginx applies to every word, quoted or not; others keep their backslash."""
    if "\\" not in word:
        return word
    out, i = [], 0
    while i < len(word):
        if word[i] == "\\" and i + 1 < len(word):
            out.append(_ESCAPES.get(word[i + 1], word[i : i + 2]))
            i += 2
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def parse_file(path: str, base_dir: str | None = None, _depth: int = 0) -> list[Statement]:
    """Read PATH and return its top-level statements with includes spliced in."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, 0, f'open() "{path}" failed ({exc.strerror})') from None
    except UnicodeDecodeError:
        raise ConfigError(path, 0, "file is not valid UTF-8") from None
    base_dir = base_dir or os.path.dirname(os.path.abspath(path))
    tokens = tokenize(text, path)
    pos, statements = _parse_block(tokens, 0, path, base_dir, _depth, top=True)
    return statements


def _parse_block(
    tokens: list[Token], pos: int, file: str, base_dir: str, depth: int, top: bool
) -> tuple[int, list[Statement]]:
    out: list[Statement] = []
    n = len(tokens)
    while pos < n:
        tok = tokens[pos]
        if not tok.quoted and tok.text == "}":
            if top:
                raise ConfigError(tok.file, tok.line, 'unexpected "}"')
            return pos + 1, out
        if not tok.quoted and tok.text in (";", "{"):
            raise ConfigError(tok.file, tok.line, f'unexpected "{tok.text}"')
        name_tok = tok
        pos += 1
        args: list[Token] = []
        while True:
            if pos >= n:
                last = tokens[-1]
                raise ConfigError(
                    last.file, last.line, 'unexpected end of file, expecting ";" or "}"'
                )
            t = tokens[pos]
            if not t.quoted and t.text == ";":
                stmt = Statement(name_tok.text, args, name_tok.file, name_tok.line)
                pos += 1
                if stmt.name == "include":
                    out.extend(_include(stmt, base_dir, depth))
                else:
                    out.append(stmt)
                break
            if not t.quoted and t.text == "{":
                pos, children = _parse_block(tokens, pos + 1, file, base_dir, depth, top=False)
                stmt = Statement(name_tok.text, args, name_tok.file, name_tok.line, children)
                stmt.end_line = tokens[pos - 1].line
                out.append(stmt)
                break
            if not t.quoted and t.text == "}":
                raise ConfigError(t.file, t.line, 'unexpected "}"')
            args.append(t)
            pos += 1
    if not top:
        last = tokens[-1] if tokens else Token("", file, 1)
        raise ConfigError(last.file, last.line, 'unexpected end of file, expecting "}"')
    return pos, out


def _include(stmt: Statement, base_dir: str, depth: int) -> list[Statement]:
    if len(stmt.args) != 1:
        raise ConfigError(
            stmt.file, stmt.line, 'invalid number of arguments in "include" directive'
        )
    if depth >= MAX_INCLUDE_DEPTH:
        raise ConfigError(stmt.file, stmt.line, "include nested too deeply (a loop?)")
    pattern = stmt.args[0].text
    if not os.path.isabs(pattern):
        pattern = os.path.join(base_dir, pattern)
    if glob.has_magic(pattern):
        paths = sorted(glob.glob(pattern))
    else:
        paths = [pattern]
    out: list[Statement] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(
                stmt.file, stmt.line, f'open() "{path}" failed ({exc.strerror})'
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(stmt.file, stmt.line, f'"{path}" is not valid UTF-8') from None
        tokens = tokenize(text, path)
        _, statements = _parse_block(tokens, 0, path, base_dir, depth + 1, top=True)
        out.extend(statements)
    return out
