"""webserv/http/request.py: normalize_path (decode, dot segments) and split_target."""

from __future__ import annotations

import itertools

import pytest

from webserv.http.errors import HttpError
from webserv.http.request import normalize_path, split_target


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"/", "/"),
        (b"/a/b.html", "/a/b.html"),
        (b"/a/", "/a/"),
        (b"//", "/"),
        (b"/a//b///c", "/a/b/c"),  # merge_slashes
        (b"//etc/passwd", "/etc/passwd"),
        (b"/a/./b", "/a/b"),
        (b"/a/.", "/a/"),
        (b"/.", "/"),
        (b"/a/../b", "/b"),
        (b"/a/b/..", "/a/"),
        (b"/a/..", "/"),
        (b"/..", "/"),
        (b"/../a", "/a"),
        (b"/../../etc/passwd", "/etc/passwd"),  # never above "/"
        (b"/a/../../../b/", "/b/"),
        (b"/...", "/..."),  # three dots is a name
        (b"/..a/a..", "/..a/a.."),
        (b"/.hidden", "/.hidden"),
        (b"/%41%62c", "/Abc"),
        (b"/%2e%2e/a", "/a"),
        (b"/%2E%2E/%2e%2E/x", "/x"),
        (b"/.%2e/x", "/x"),
        (b"/a/%2e", "/a/"),
        (b"/a%2fb", "/a/b"),  # %2f is decoded before dot segments are removed
        (b"/a%2F..%2Fb", "/b"),
        (b"/..%2f..%2fetc%2fpasswd", "/etc/passwd"),
        (b"/a/..%2f", "/"),
        (b"/caf%C3%A9", "/caf\u00e9"),
        (b"/100%25", "/100%"),
        (b"/%2525", "/%25"),  # decoded once only
        (b"/a\\..\\b", "/a\\..\\b"),  # a backslash is a plain character
        (b"/a%5c..%5cb", "/a\\..\\b"),
        (b"/%00", "/\x00"),  # kept: the file layer answers 404 for it
        (b"/a b", "/a b"),
    ],
)
def test_normalize(raw, expected):
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", [b"/\xff", b"/%FF", b"/caf\xc3\xa9", b"/%C3%28", b"/a/%80/b"])
def test_round_trips_to_the_original_bytes(raw):
    path = normalize_path(raw)
    decoded = raw.replace(b"%FF", b"\xff").replace(b"%C3%28", b"\xc3(").replace(b"%80", b"\x80")
    assert path.encode("utf-8", "surrogateescape") == decoded


@pytest.mark.parametrize(
    "raw",
    [
        b"/%",
        b"/%4",
        b"/a%",
        b"/%zz",
        b"/%g1",
        b"/%%41",
        b"/%2",
        b"/ok/%x0/",
        b"a",
        b"",
        b"*",
        b"../a",
    ],
)
def test_rejected_with_400(raw):
    with pytest.raises(HttpError) as info:
        normalize_path(raw)
    assert info.value.status == 400


SEGMENTS = ["a", "..", ".", "", "%2e%2e", "%2e", "b%2f..", "%2F"]


def test_invariants_over_all_short_paths():
    """Whatever the segments, the result is a clean absolute path: no dot segments, no '//'."""
    for count in range(1, 5):
        for combo in itertools.product(SEGMENTS, repeat=count):
            raw = ("/" + "/".join(combo)).encode()
            path = normalize_path(raw)
            assert path.startswith("/"), raw
            assert "//" not in path, raw
            parts = path.split("/")
            assert ".." not in parts and "." not in parts, raw
            assert normalize_path(path.encode()) == path, raw  # idempotent once clean


@pytest.mark.parametrize(
    "target, expected",
    [
        (b"/", (b"/", b"", None)),
        (b"/a/b?x=1&y=2", (b"/a/b", b"x=1&y=2", None)),
        (b"/a?", (b"/a", b"", None)),
        (b"/a?b?c", (b"/a", b"b?c", None)),
        (b"/a#frag", (b"/a", b"", None)),
        (b"/a?x#frag", (b"/a", b"x", None)),  # the fragment ends the query too (nginx)
        (b"/a?x#f#g?h", (b"/a", b"x", None)),
        (b"/a#f?x", (b"/a", b"", None)),
        (b"http://h?args#frag", (b"/", b"args", b"h")),
        (b"http://h:8080?args#frag", (b"/", b"args", b"h:8080")),
        (b"/a%3Fb?q", (b"/a%3Fb", b"q", None)),  # an encoded "?" is part of the path
        (b"http://example.com/x?y", (b"/x", b"y", b"example.com")),
        (b"HTTP://Example.COM:8080/x", (b"/x", b"", b"Example.COM:8080")),
        (b"https://h", (b"/", b"", b"h")),
        (b"http://h?q=1", (b"/", b"q=1", b"h")),
        (b"http://[::1]:80/p", (b"/p", b"", b"[::1]:80")),
    ],
)
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize(
    "target", [b"*", b"example.com:443", b"ftp://h/x", b"http:/x", b"a/b", b""]
)
def test_split_target_rejects(target):
    with pytest.raises(HttpError) as info:
        split_target(target)
    assert info.value.status == 400
