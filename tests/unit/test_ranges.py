"""webserv/http/ranges.py: Range header parsing against a size, and coalescing."""

from __future__ import annotations

import pytest

from webserv.http.ranges import MAX_RANGES, UNSATISFIABLE, coalesce, parse_range


@pytest.mark.parametrize(
    "header, size, expected",
    [
        ("bytes=0-0", 10, [(0, 0)]),
        ("bytes=0-9", 10, [(0, 9)]),
        ("bytes=2-5", 10, [(2, 5)]),
        ("bytes=5-", 10, [(5, 9)]),
        ("bytes=9-", 10, [(9, 9)]),
        ("bytes=0-100", 10, [(0, 9)]),  # a last byte past the end is clamped
        ("bytes=-3", 10, [(7, 9)]),
        ("bytes=-10", 10, [(0, 9)]),
        ("bytes=-11", 10, [(0, 9)]),  # a suffix longer than the file is the whole file
        ("bytes=0-1,4-5,-2", 10, [(0, 1), (4, 5), (8, 9)]),
        ("bytes=4-5,0-1", 10, [(4, 5), (0, 1)]),  # order kept (the handler decides merging)
        ("bytes=0-1,20-30", 10, [(0, 1)]),  # unsatisfiable parts are dropped
        ("bytes=0-1,-0", 10, [(0, 1)]),  # "-0" selects nothing
        ("bytes=0-1,,2-3", 10, [(0, 1), (2, 3)]),  # empty list elements are allowed
        (" BYTES = 1 - 2 , 3 - ", 10, [(1, 2), (3, 9)]),
        ("bytes=0-0", 1, [(0, 0)]),
        ("bytes=-1", 1, [(0, 0)]),
    ],
)
def test_satisfiable(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header, size",
    [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=-0", 10),
        ("bytes=20-,30-40", 10),
        ("bytes=0-0", 0),
        ("bytes=-5", 0),
        ("bytes=,", 10),
    ],
)
def test_unsatisfiable(header, size):
    assert parse_range(header, size) == UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes 0-1",
        "items=0-1",
        "bytes=abc",
        "bytes=5-2",  # last before first
        "bytes=1-2-3",
        "bytes=-",
        "bytes=0x1-2",
        "bytes=+1-2",
        "bytes=1-+2",
        "bytes=1.5-2",
        "bytes=0-1,abc",  # one bad element spoils the set
        "bytes=\u00b2-",  # superscript two: isdigit() but not a number
        "bytes=\u0661-2",  # an Arabic-Indic digit is not an HTTP digit
        "bytes=0-\u00b3",
    ],
)
def test_invalid_is_ignored(header):
    assert parse_range(header, 10) is None


def test_too_many_ranges_ignored():
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(MAX_RANGES + 1))
    assert parse_range(header, 1000) is None
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(MAX_RANGES))
    assert parse_range(header, 1000) == [(i, i) for i in range(MAX_RANGES)]


def test_huge_numbers():
    assert parse_range("bytes=0-99999999999999999999999", 10) == [(0, 9)]
    assert parse_range("bytes=99999999999999999999999-", 10) == UNSATISFIABLE
    assert parse_range("bytes=-99999999999999999999999", 10) == [(0, 9)]


@pytest.mark.parametrize(
    "ranges, expected",
    [
        ([], []),
        ([(0, 1)], [(0, 1)]),
        ([(0, 5), (3, 8)], [(0, 8)]),
        ([(0, 1), (2, 3)], [(0, 3)]),  # adjacent
        ([(0, 1), (3, 4)], [(0, 1), (3, 4)]),
        ([(5, 9), (0, 2), (1, 6)], [(0, 9)]),
        ([(0, 9), (2, 3)], [(0, 9)]),  # contained
        ([(4, 5), (0, 1)], [(0, 1), (4, 5)]),  # sorted
    ],
)
def test_coalesce(ranges, expected):
    assert coalesce(ranges) == expected
