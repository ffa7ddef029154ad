"""server_names.py: nginx's PCRE spellings in `server_name ~REGEX`, translated for `re`.

Each case is what PCRE (nginx) matches; the translation must match the same hosts and refuse,
with an error, what it cannot translate faithfully.
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from webserv.config.lexer import walk
from webserv.server_names import (
    capture_names,
    category_class,
    compile_name_regex,
    pcre_to_python,
)

MATCHES = [
    # pattern, host, expected group "name" (None: no match)
    (r"^(?P<name>[a-z]+)\Q.example.com\E$", "blah.example.com", "blah"),
    (r"^(?P<name>[a-z]+)\Q.example.com\E$", "blahxexamplexcom", None),  # \Q: "." is literal
    (r"^(?<name>[a-z]+)\.example\.com$", "www.example.com", "www"),  # PCRE's (?<name>
    (r"^(?'name'[a-z]+)\.example\.com$", "www.example.com", "www"),  # and (?'name'
    (r"^(?P<name>www\p{N}+)\.example\.com$", "www01.example.com", "www01"),
    (r"^(?P<name>www\p{N}+)\.example\.com$", "www\u00b2.example.com", "www\u00b2"),  # No
    (r"^(?P<name>www\p{N}+)\.example\.com$", "wwwx.example.com", None),
    (r"^(?P<name>www\pN+)\.example\.com$", "www7.example.com", "www7"),  # one letter, no {}
    (r"^(?P<name>[\p{L}-]+)\.example$", "a-\u00e9.example", "a-\u00e9"),  # inside a class
    (r"^(?P<name>\P{N}+)$", "abc", "abc"),
    (r"^(?P<name>\P{N}+)$", "ab1", None),
    (r"^(?P<name>\Qa.b\E)\.c$", "A.B.c", "A.B"),  # caseless, as nginx compiles them
    (r"^(?P<name>[]a]+)$", "]a]", "]a]"),  # "]" first in a class is literal (PCRE, re)
    (r"^(?P<name>x\Q(?<y>\E)$", "x(?<y>", "x(?<y>"),  # no group inside \Q...\E
    (r"^(?P<name>a\Eb)$", "ab", "ab"),  # a lone \E is ignored (PCRE)
    (r"^(?P<name>a)\Qb.*", "ab.*", "a"),  # \Q to the end of the pattern
    (r"^(?P<name>a)\Qb.*", "abxx", None),
]


@pytest.mark.parametrize(("pattern", "host", "name"), MATCHES)
def test_translated_regex_matches_as_pcre(pattern, host, name):
    m = compile_name_regex(pattern).search(host)
    assert (m.group("name") if m else None) == name


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"^\p{Greek}+$", r"unsupported Unicode property \p{Greek}"),
        (r"^[\P{N}]$", r"\P inside a character class"),
        (r"^\p{N$", r"missing } after \p"),
        (r"^\p{^N}$", r"\p{^...} is not supported"),
        (r"^x\p", r"\p without a property"),
        (r"^(x$", "missing ), unterminated subpattern"),
    ],
)
def test_untranslatable_or_bad_patterns_are_errors(pattern, message):
    with pytest.raises(re.error) as info:
        compile_name_regex(pattern)
    assert message in str(info.value)


def test_category_class_holds_exactly_the_category():
    body = category_class("Nd")
    digits = re.compile(f"[{body}]")
    for code in (0x30, 0x39, 0x660, 0xFF10, 0x1D7CE):
        assert unicodedata.category(chr(code)) == "Nd"
        assert digits.fullmatch(chr(code))
    for char in "a_-\u00b2\u2160":  # No and Nl are not Nd
        assert not digits.fullmatch(char)
    numbers = re.compile(f"[{category_class('N')}]")
    assert numbers.fullmatch("\u00b2") and numbers.fullmatch("\u2160")


def test_plain_text_is_left_alone():
    assert pcre_to_python(r"^www\.example\.(com|net)$") == r"^www\.example\.(com|net)$"
    assert pcre_to_python(r"(?<=a)b(?<!c)") == r"(?<=a)b(?<!c)"  # lookbehinds are no names


class _Stmt:
    def __init__(self, name, args, block=None):
        self.name, self.args, self.block = name, args, block

    def arg_texts(self):
        return self.args


def test_capture_names_come_from_server_names_and_location_regexes_anywhere():
    statements = [
        _Stmt(
            "http",
            [],
            [
                _Stmt(
                    "server",
                    [],
                    [
                        _Stmt("server_name", ["a.example", r"~^(?<sub>\w+)\Q.b\E$"]),
                        _Stmt("location", ["~", r"^/(?P<page>\w+)"], []),
                        _Stmt("location", ["~*", r"^/(?'Other'\w+)"], []),
                        _Stmt("location", ["/", ""], []),
                        _Stmt("server_name", ["~^(unterminated"]),  # its directive reports it
                    ],
                )
            ],
        )
    ]
    assert capture_names(walk(statements)) == {"sub", "page", "Other"}
