"""A saved SYN decoded once per shape: what the lifecycle log and the status page show of it.

A client's SYNs differ from one connection to the next only in a few fields — its address
and port, the ISN, the IPv4 ID or the IPv6 flow label, the timestamp values — while
everything the decoding and the fingerprints spend their time on (the option walk, JA4T, the
p0f-style signature, the OS family, tcpdump's option text) depends on the rest. So the first
SYN of a shape is decoded in full (savedsyn.decode_syn, synprint) and kept; the next ones
of that shape copy it and fill in their own fields. The result is the same, key for key and
value for value, as decoding each SYN in full (tests/unit/test_synshape.py holds the two to
it over real and crafted SYNs and random changes of them).

The shape key is the raw SYN with the per-connection fields left out (their zero-ness
kept: p0f's quirks look at it) and a TS option's values cut out — where the option walk of
the first decode found the TS option; a key whose cut is not at a real option start is
never stored. A SYN without a fixed layout (IPv6 extension headers, a non-TCP or short
header) is decoded every time. The memo is bounded.

Owns the memo. Never reads a socket; what it returns must not be changed by its callers
(the lists inside are shared by every SYN of a shape).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from . import savedsyn, synprint

MEMO_MAX = 1024  # shapes kept; past it the memo starts again, empty
_MEMO: dict[bytes, tuple[Any, ...]] = {}
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_TS = struct.Struct("!II")
_V, _E = "\x00tsval\x00", "\x00tsecr\x00"  # markers: where the TS values go in options_text
_FLAG = (b"0", b"1")


def _key(raw: bytes) -> tuple[bytes, int, int, int, int] | None:
    """(shape key, IP header length, offset of the TCP options and their end, the TS
    cut in them or -1)."""
    n = len(raw)
    if n < 40:
        return None
    version = raw[0] >> 4
    if version == 4 and raw[9] == 6:
        off = (raw[0] & 0x0F) * 4
        if off < 20 or n < off + 20:
            return None
        # ver/ihl, tos, total length | IP ID zero? | flags/fragment, TTL, protocol | the
        # destination and IP options (the checksum and the source are left out)
        ip = raw[0:4] + _FLAG[raw[4] != 0 or raw[5] != 0] + raw[6:10] + raw[16:off]
    elif version == 6 and raw[6] == 6:
        off = 40
        if n < 60:
            return None
        # version, traffic class (the flow label left out: its zero-ness kept), payload
        # length, next header, hop limit, the destination
        flow = raw[1] & 0x0F or raw[2] or raw[3]
        ip = raw[0:1] + bytes((raw[1] & 0xF0,)) + _FLAG[bool(flow)] + raw[4:8] + raw[24:40]
    else:
        return None
    tcp = off
    doff = (raw[tcp + 12] >> 4) * 4
    opts = raw[tcp + 20 : tcp + doff]
    cut = opts.find(b"\x08\x0a")  # a TS option (kind 8, length 10): its values change
    ts = b""
    if cut >= 0 and cut + 10 <= len(opts):
        tsval, tsecr = _TS.unpack_from(opts, cut + 2)
        ts = _FLAG[tsval == 0] + _FLAG[tsecr != 0]  # (p0f's ts1- and ts2+ quirks)
        opts = opts[: cut + 2] + opts[cut + 10 :]
    else:
        cut = -1
    isn_zero = _FLAG[raw[tcp + 4 : tcp + 8] == b"\0\0\0\0"]
    # the destination port | ISN zero? | ack, data offset, flags, window | urgent pointer |
    # the options without TS values | the length of what was saved
    key = b"|".join((
        ip, raw[tcp + 2 : tcp + 4], isn_zero, raw[tcp + 8 : tcp + 16], raw[tcp + 18 : tcp + 20],
        opts, ts, b"%d %d" % (n, cut),
    ))  # fmt: skip
    return key, off, tcp + 20, tcp + doff, cut


def decode(raw: bytes | None) -> tuple[dict[str, Any] | None, tuple[str, str, str, str] | None]:
    """(savedsyn.decode_syn(raw), (options_text, ja4t, signature, os_family)) — each the
    same as computed in full, the second None when the first is."""
    if not raw:
        return None, None
    raw = bytes(raw)
    found = _key(raw)
    if found is not None:
        key, ip_len, opt_at, opt_end, cut = found
        shape = _MEMO.get(key)
        if shape is not None:
            return _fill(raw, shape, ip_len, opt_at, cut)
    info = savedsyn.decode_syn(raw)
    if info is None:
        return None, None
    opts = info["options"]
    text = savedsyn.options_text(info)
    derived = (text, synprint.ja4t(info), synprint.signature(info), synprint.os_family(info))
    if found is not None and not opts["malformed"] and _cut_is_real(raw[opt_at:opt_end], cut, info):
        if cut >= 0:
            marked = dict(opts, tsval=_V, tsecr=_E)
            head, _, rest = savedsyn.options_text(marked).partition(_V)
            middle, _, tail = rest.partition(_E)
        else:
            head = middle = tail = ""
        if len(_MEMO) >= MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = (info, opts, derived, head, middle, tail)
    return info, derived


def _cut_is_real(body: bytes, cut: int, info: dict[str, Any]) -> bool:
    """The TS cut is where the option walk found the one TS option (or there is none)."""
    opts = info["options"]
    if cut < 0:
        return not opts["timestamps"]
    starts, i = set(), 0
    while i < len(body) and body[i] != 0:
        starts.add(i)
        i += 1 if body[i] == 1 or i + 1 >= len(body) or body[i + 1] < 2 else body[i + 1]
    if cut not in starts or opts["option_kinds"].count("TS") != 1:
        return False
    return (opts["tsval"], opts["tsecr"]) == _TS.unpack_from(body, cut + 2)


def _fill(
    raw: bytes, shape: tuple[Any, ...], ip_len: int, opt_at: int, cut: int
) -> tuple[dict[str, Any], tuple[str, str, str, str]]:
    template, opts_template, derived, head, middle, tail = shape
    info = dict(template)
    tcp = ip_len
    if template["ip_version"] == 4:
        info["src"] = socket.inet_ntop(socket.AF_INET, raw[12:16])
        info["ip_id"] = _BE16.unpack_from(raw, 4)[0]
    else:
        info["src"] = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        info["flow_label"] = _BE32.unpack_from(raw)[0] & 0xFFFFF
    info["src_port"] = _BE16.unpack_from(raw, tcp)[0]
    info["isn"] = _BE32.unpack_from(raw, tcp + 4)[0]
    if cut < 0:
        info["options"] = dict(opts_template)
        return info, derived
    tsval, tsecr = _TS.unpack_from(raw, opt_at + cut + 2)
    info["options"] = dict(opts_template, tsval=tsval, tsecr=tsecr)
    text = f"{head}{tsval}{middle}{tsecr}{tail}"
    return info, (text, derived[1], derived[2], derived[3])
