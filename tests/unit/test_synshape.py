"""synshape.decode gives what decoding each SYN in full gives: the same dict, key for key, and
the same option text and fingerprints — for the first SYN of a shape (decoded in full), for
the next ones (filled in from the memo), and for SYNs that look like a shape but are not
(a TS-like byte pair inside another option, a second TS option, a malformed one)."""

from __future__ import annotations

import socket
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_synprint import CRAFTED, EOL, MSS, NOP, SOK, TS, WS, ipv4, ipv6, loopback_syn, tcp

from webserv import savedsyn, synprint, synshape


def full(raw: bytes):
    info = savedsyn.decode_syn(raw)
    if info is None:
        return None, None
    derived = (
        savedsyn.options_text(info),
        synprint.ja4t(info),
        synprint.signature(info),
        synprint.os_family(info),
    )
    return info, derived


def check(raw: bytes) -> None:
    want = full(raw)
    for _ in range(2):  # the first decodes (and may keep the shape), the second may fill in
        assert synshape.decode(raw) == want


def variants(raw: bytes) -> list[bytes]:
    """The SYN with its per-connection fields changed: source address and port, ISN, IP ID
    or flow label, timestamp values (when at the usual place of a loopback/crafted SYN)."""
    out = []
    v4 = raw[0] >> 4 == 4
    off = (raw[0] & 0x0F) * 4 if v4 else 40
    if len(raw) < max(off, 40) + 20:
        return out  # too short to have the fields: decoded as it is only
    for n in (1, 2, 0):
        b = bytearray(raw)
        if v4:
            b[12:16] = bytes((10, 0, n, 9))
            b[4:6] = struct.pack("!H", n * 777)
        else:
            b[8:24] = socket.inet_pton(socket.AF_INET6, f"2001:db8::{n + 5}")
            word = struct.unpack_from("!I", b)[0]
            struct.pack_into("!I", b, 0, (word & ~0xFFFFF) | (n * 0x1111))
        struct.pack_into("!H", b, off, 40000 + n)
        struct.pack_into("!I", b, off + 4, n * 0x01020304)
        opts = bytes(b[off + 20 : off + (b[off + 12] >> 4) * 4])
        ts = opts.find(b"\x08\x0a")
        if ts >= 0 and ts + 10 <= len(opts):
            struct.pack_into("!II", b, off + 20 + ts + 2, n * 1000, n * 7)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_and_their_variants(name: str) -> None:
    raw = CRAFTED[name][0]
    check(raw)
    for other in variants(raw):
        check(other)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_SAVED_SYN is Linux's")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_real_loopback_syns(host: str) -> None:
    try:
        raws = [loopback_syn(host) for _ in range(3)]
    except OSError:
        pytest.skip(f"no {host}")
    for raw in raws:  # the same shape, other ports, ISNs and timestamps
        check(raw)
        for other in variants(raw):
            check(other)


def test_look_alikes_are_decoded_in_full() -> None:
    # an MSS of 0x080a (2058) holds the bytes of a TS option's kind and length
    tricky = ipv4(tcp(MSS(0x080A) + SOK + TS(5, 6) + NOP + WS(7), 29200), ttl=64)
    two_ts = ipv4(tcp(MSS(1460) + TS(1, 2) + TS(3, 4), 29200), ttl=64)
    truncated_ts = ipv4(tcp(MSS(1460) + NOP + NOP + b"\x08\x0a\x00\x00", 29200), ttl=64)
    v6_ext = bytearray(ipv6(tcp(MSS(1440) + TS(9), 65535), hops=60))
    v6_ext[6] = 0  # a hop-by-hop header announced: no fixed layout, decoded every time
    for raw in (tricky, two_ts, truncated_ts, bytes(v6_ext), b"", b"\x45" * 19):
        check(raw)
        for other in variants(raw) if len(raw) >= 40 else ():
            check(other)


def test_memo_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(synshape, "MEMO_MAX", 8)
    synshape._MEMO.clear()
    for window in range(100, 140):
        check(ipv4(tcp(MSS(1460) + SOK + TS(window) + NOP + WS(7), window), ttl=64))
    assert 0 < len(synshape._MEMO) <= 8


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([CRAFTED[name][0] for name in CRAFTED]),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
)
def test_random_changes_agree_with_a_full_decode(base: bytes, edits) -> None:
    raw = bytearray(base)
    for at, value in edits:
        raw[at % len(raw)] = value
    check(bytes(raw))
    for other in variants(bytes(raw)) if len(raw) >= 40 and raw[0] >> 4 in (4, 6) else ():
        check(other)


def test_eol_padding_layouts() -> None:
    for opts in (MSS(1460) + EOL, MSS(1460) + TS(3) + EOL + EOL, TS(8) + MSS(1400)):
        check(ipv4(tcp(opts, 1000), ttl=64))


def test_a_shape_seen_before_is_not_decoded_again(monkeypatch) -> None:
    raw = CRAFTED["macos"][0]
    first, second = variants(raw)[:2]
    synshape._MEMO.clear()
    calls = []
    real = savedsyn.decode_syn
    monkeypatch.setattr(savedsyn, "decode_syn", lambda r: calls.append(r) or real(r))
    want = [full(first), full(second)]
    calls.clear()
    assert [synshape.decode(first), synshape.decode(second)] == want
    assert calls == [first]  # the second: the same shape, filled in from the memo
    tricky = ipv4(tcp(MSS(0x080A) + SOK + TS(5, 6), 29200), ttl=64)
    calls.clear()
    synshape.decode(tricky)
    synshape.decode(tricky)
    assert calls == [tricky, tricky]  # its TS cut is not at an option: never kept
