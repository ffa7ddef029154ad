"""webserv/http/ranges.py: Range header parsing against a size, and coalescing."""

from __future__ import annotations

import pytest

from webserv.http.ranges import UNSATISFIABLE, coalesce, parse_range


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


@pytest.mark.parametrize("header", ["", "bytes", "bytes 0-1", "items=0-1", "bytes0-1=x"])
def test_not_a_byte_range_set_is_ignored(header):
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    "header",
    [
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
        "bytes=0-3;",
        "bytes=10-11 12-",  # no comma
    ],
)
def test_invalid_set_is_unsatisfiable(header):
    # nginx's answer (416), which RFC 9110 §14.2 allows ("MAY ignore or reject")
    assert parse_range(header, 10) == UNSATISFIABLE


def test_max_ranges_counts_satisfiable_ranges_in_order():
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(65))
    assert parse_range(header, 1000) == [(i, i) for i in range(65)]  # no limit by default
    assert parse_range(header, 1000, max_ranges=64) is None
    assert parse_range(header, 1000, max_ranges=65) == [(i, i) for i in range(65)]
    assert parse_range("bytes=0-0", 10, max_ranges=0) is None
    # an unsatisfiable range does not count; one range too many wins over a later error
    assert parse_range("bytes=0-1,50-60,3-4", 10, max_ranges=2) == [(0, 1), (3, 4)]
    assert parse_range("bytes=0-1,3-4,6-7,abc", 10, max_ranges=2) is None
    assert parse_range("bytes=0-1,3-4,abc", 10, max_ranges=2) == UNSATISFIABLE


def test_more_bytes_than_the_whole_is_the_whole():
    assert parse_range("bytes=0-10001, 0-0", 1000) is None  # nginx's range.t
    assert parse_range("bytes=0-9,0-9", 10) is None
    assert parse_range("bytes=0-4,0-4", 10) == [(0, 4), (0, 4)]  # (static.py merges them)


def test_huge_numbers():
    assert parse_range("bytes=0-99999999999999999999999", 10) == UNSATISFIABLE  # > off_t
    assert parse_range("bytes=99999999999999999999999-", 10) == UNSATISFIABLE
    assert parse_range("bytes=-99999999999999999999999", 10) == UNSATISFIABLE
    assert parse_range("bytes=0-9223372036854775807", 10) == [(0, 9)]
    assert parse_range("bytes=-9223372036854775807", 10) == [(0, 9)]


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
