"""webserv/recode.py: charset_map tables in each direction, and the streamed body."""

from __future__ import annotations

import asyncio
import os

import pytest

from webserv.http.response import FilePart
from webserv.recode import CharsetMap, RecodeBody, recoder

TYPES = frozenset({"text/html"})
# koi8-r's а б and one byte for the euro sign, as a config would write them
KOI8 = CharsetMap(
    "koi8-r", "utf-8", ((0xC1, b"\xd0\xb0"), (0xC2, b"\xd0\xb1"), (0xFF, "€".encode())), "f", 1
)
SINGLE = CharsetMap("b", "a", ((0x58, b"\x59"), (0xE0, b"\xe1")), "f", 2)


def test_same_charset_needs_no_recoder():
    assert recoder([SINGLE], "B", "b", TYPES) is None


def test_missing_map_names_both_charsets():
    with pytest.raises(ValueError, match='no "charset_map" between the charsets "B" and "C"'):
        recoder([SINGLE], "B", "C", TYPES)


def test_single_byte_forward_keeps_ascii_and_questions_the_rest():
    rec = recoder([SINGLE], "B", "A", TYPES)
    assert rec.same_length
    assert rec.recode(b"aX\xe0\xe1\x80-") == b"aY\xe1??-"


def test_single_byte_backward_uses_the_same_map():
    rec = recoder([SINGLE], "a", "b", TYPES)  # (names are case-insensitive)
    # dst2src: Y -> X, \xe1 -> \xe0; X itself stays (ASCII), other high bytes are "?"
    assert rec.recode(b"XY\xe1\xe0") == b"XX\xe0?"


def test_to_utf8():
    rec = recoder([KOI8], "koi8-r", "utf-8", TYPES)
    assert not rec.same_length and rec.to_utf8
    assert rec.recode(b"ab\xc1\xc2\xff\x80") == "abаб€?".encode()


def test_from_utf8_unknown_characters_become_references_and_invalid_bytes_questions():
    rec = recoder([KOI8], "UTF-8", "KOI8-R", TYPES)
    assert rec.from_utf8
    text = "abаб€😀é".encode() + b"\xff."
    assert rec.recode(text) == b"ab\xc1\xc2\xff&#128512;&#233;?."


def test_takes_only_charset_types():
    rec = recoder([SINGLE], "b", "a", TYPES)
    assert rec.takes(b"Content-Type: text/html; charset=a\r\nETag: x\r\n")
    assert rec.takes(b"Content-Type: TEXT/HTML\r\n")
    assert not rec.takes(b"Content-Type: image/png\r\n")
    assert recoder([SINGLE], "b", "a", frozenset({"*"})).takes(b"Content-Type: image/png\r\n")


class Owner:
    def __init__(self) -> None:
        self.released = 0
        self.path = "f"

    def release(self) -> None:
        self.released += 1


async def _drain(body: RecodeBody) -> list[bytes]:
    return [chunk async for chunk in body]


def test_stream_splits_utf8_across_chunks(tmp_path, monkeypatch):
    # a two-byte character cut by the chunk boundary must come out whole
    monkeypatch.setattr("webserv.recode.CHUNK", 3)
    path = tmp_path / "f.html"
    path.write_bytes("aаб€".encode())  # 1 + 2 + 2 + 3 bytes
    fd = os.open(path, os.O_RDONLY)
    try:
        owner = Owner()
        rec = recoder([KOI8], "utf-8", "koi8-r", TYPES)
        body = RecodeBody(rec, [FilePart(fd, 0, 8, owner)])
        assert b"".join(asyncio.run(_drain(body))) == b"a\xc1\xc2\xff"
        assert owner.released == 1
    finally:
        os.close(fd)


def test_stream_keeps_multipart_heads_and_releases_each_part(tmp_path):
    path = tmp_path / "f.html"
    path.write_bytes(b"XXXXYYYY")
    fd = os.open(path, os.O_RDONLY)
    try:
        owner = Owner()
        rec = recoder([SINGLE], "b", "a", TYPES)
        parts = [b"--h1--", FilePart(fd, 0, 2, owner), b"--h2--", FilePart(fd, 4, 4, owner)]
        assert b"".join(asyncio.run(_drain(RecodeBody(rec, parts)))) == b"--h1--YY--h2--YYYY"
        assert owner.released == 2
        # one closed early gives its descriptors back too
        owner2 = Owner()
        body = RecodeBody(rec, [FilePart(fd, 0, 2, owner2), FilePart(fd, 2, 2, owner2)])
        asyncio.run(body.aclose())
        assert owner2.released == 2
    finally:
        os.close(fd)


def test_truncated_file_mid_stream_is_an_error(tmp_path):
    path = tmp_path / "f.html"
    path.write_bytes(b"XX")
    fd = os.open(path, os.O_RDONLY)
    try:
        rec = recoder([SINGLE], "b", "a", TYPES)
        body = RecodeBody(rec, [FilePart(fd, 0, 10, Owner())])
        with pytest.raises(OSError, match="truncated"):
            asyncio.run(_drain(body))
    finally:
        os.close(fd)


def test_from_utf8_when_the_map_gives_an_ascii_byte_a_second_character():
    # 0x58 is "X" and, by the map, "а" too: both come back as 0x58 (nginx's dst2src)
    cmap = CharsetMap("koi8-r", "utf-8", ((0x58, "а".encode()),), "f", 1)
    rec = recoder([cmap], "utf-8", "koi8-r", TYPES)
    assert rec.recode("Xа€".encode()) == b"XX&#8364;"
    assert recoder([cmap], "koi8-r", "utf-8", TYPES).recode(b"X") == "а".encode()
