"""synprint: JA4T, the p0f-style signature and the OS-family guess, on SYNs this machine's
Linux sends over loopback (checked against values read straight from the raw bytes) and on
crafted SYNs of the other families and of the edge cases (no options, no MSS, no window
scale, quirks), built byte by byte with struct."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from webserv import savedsyn, synprint
from webserv.synprint import ja4t, os_family, os_family_raw, signature

LINUX = sys.platform.startswith("linux")

MSS = lambda v: b"\x02\x04" + struct.pack("!H", v)  # noqa: E731
WS = lambda v: b"\x03\x03" + bytes((v,))  # noqa: E731
SOK, NOP, EOL = b"\x04\x02", b"\x01", b"\x00"
TS = lambda val, ecr=0: b"\x08\x0a" + struct.pack("!II", val, ecr)  # noqa: E731


def tcp(opts: bytes, window: int, flags: int = 0x02, isn: int = 0x12345678, **kw: int) -> bytes:
    opts += b"\x00" * (-len(opts) % 4)  # padding: EOL bytes
    doff = (20 + len(opts)) // 4
    return (
        struct.pack(
            "!HHIIBBHHH", 50000, 443, isn, kw.get("ack", 0), doff << 4, flags, window,
            0xBEEF, kw.get("urg", 0),
        )
        + opts
    )  # fmt: skip


def ipv4(segment: bytes, ttl: int, df: bool = True, ip_id: int = 0x1234, **kw: int) -> bytes:
    ip_opts = kw.get("ip_opts", b"")
    ihl = 5 + len(ip_opts) // 4
    frag = (0x4000 if df else 0) | (0x8000 if kw.get("mbz") else 0)
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x40 | ihl, kw.get("tos", 0),
            ihl * 4 + len(segment) + kw.get("data", 0), ip_id, frag, ttl, 6, 0,
            socket.inet_pton(socket.AF_INET, "192.0.2.10"),
            socket.inet_pton(socket.AF_INET, "198.51.100.7"),
        )
        + ip_opts
        + segment
    )  # fmt: skip


def ipv6(segment: bytes, hops: int, flow: int = 0) -> bytes:
    return struct.pack(
        "!IHBB16s16s", 6 << 28 | flow, len(segment), 6, hops,
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        socket.inet_pton(socket.AF_INET6, "2001:db8:0:1::2"),
    ) + segment  # fmt: skip


CRAFTED = {
    # Windows 10/11: mss,nop,ws,nop,nop,sok; TTL 128, IP IDs counting up; 64240 = 44 × 1460
    "windows": (
        ipv4(tcp(MSS(1460) + NOP + WS(8) + NOP + NOP + SOK, 64240), ttl=117),
        "64240_2-1-3-1-1-4_1460_8",
        "4:128:0:1460:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0",
        "Windows",
    ),
    "windows-65535": (
        ipv4(tcp(MSS(1460) + NOP + WS(8) + NOP + NOP + SOK, 65535), ttl=128),
        "65535_2-1-3-1-1-4_1460_8",
        "4:128:0:1460:65535,8:mss,nop,ws,nop,nop,sok:df,id+:0",
        "Windows",
    ),
    # macOS / iOS: mss,nop,ws,nop,nop,ts,sok,eol + one byte of padding; ECN asked (ECE|CWR)
    "macos": (
        ipv4(
            tcp(MSS(1460) + NOP + WS(6) + NOP + NOP + TS(123456) + SOK + EOL, 65535, 0xC2),
            ttl=52,
        ),
        "65535_2-1-3-1-1-8-4-0-0_1460_6",
        "4:64:0:1460:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,id+,ecn:0",
        "macOS/iOS",
    ),
    # FreeBSD 11+: mss,nop,ws,sok,ts, window 65535; here over IPv6 with a flow label
    "freebsd-ipv6": (
        ipv6(tcp(MSS(1440) + NOP + WS(6) + SOK + TS(99), 65535), hops=60, flow=0x12345),
        "65535_2-1-3-4-8_1440_6",
        "6:64:0:1440:65535,6:mss,nop,ws,sok,ts:flow:0",
        "FreeBSD",
    ),
    # no options at all (a scanner's SYN): "00" for the options, the MSS and the scale
    "no-options": (
        ipv4(tcp(b"", 1024), ttl=250, df=False, ip_id=0),
        "1024_00_00_00",
        "4:255:0:0:1024,0::id-:0",
        "other",
    ),
    # no MSS: the MSS is "00" (JA4T) and 0 (p0f); the EOL padding is listed
    "no-mss": (
        ipv4(tcp(SOK + NOP + NOP + WS(7), 8192), ttl=64, ip_id=0),
        "8192_4-1-1-3-0_00_7",
        "4:64:0:0:8192,7:sok,nop,nop,ws,eol+0:df:0",
        "other",
    ),
    # an MSS but no window scale (Linux with net.ipv4.tcp_window_scaling=0): 29200 = 20 × 1460
    "no-wscale": (
        ipv4(tcp(MSS(1460) + SOK + TS(5), 29200), ttl=61),
        "29200_2-4-8_1460_00",
        "4:64:0:1460:mss*20,0:mss,sok,ts:df,id+:0",
        "Linux",
    ),
    # a window scale of 0 prints as absent in JA4T (as Wireshark and Zeek print it); the
    # window is a multiple of the MTU the MSS implies (1500 = 1460 + 40)
    "wscale-zero": (
        ipv4(tcp(MSS(1460) + NOP + WS(0), 3000), ttl=30),
        "3000_2-1-3_1460_00",
        "4:32:0:1460:mtu*2,0:mss,nop,ws:df,id+:0",
        "other",
    ),
    # a repeated MSS or window scale: the last one counts (FoxIO-LLC/ja4#304)
    "duplicates": (
        ipv4(tcp(MSS(1460) + MSS(1400) + WS(2) + WS(9), 14000), ttl=64),
        "14000_2-2-3-3-0-0_1400_9",
        "4:64:0:1400:mss*10,9:mss,mss,ws,ws,eol+1:df,id+:0",
        "other",
    ),
    # every header quirk a saved SYN can show, and data on the SYN (pclass +)
    "quirks": (
        ipv4(
            tcp(
                MSS(1460) + TS(0, 77) + WS(15) + EOL + b"\x07",
                5840,
                0x02 | 0x08,
                isn=0,
                ack=99,
                urg=5,
            ),
            ttl=64,
            tos=0x02,
            mbz=1,
            ip_opts=b"\x01\x01\x01\x00",
            data=10,
        ),
        "5840_2-8-3-0-7-0_1460_15",
        "4:64:4:1460:mss*4,15:mss,ts,ws,eol+2:"
        "df,id+,ecn,0+,seq-,ack+,uptr+,pushf+,ts1-,ts2+,opt+,exws:+",
        "other",
    ),  # fmt: skip
    # a lying option length: the options end before it (as tcpinfo's decode does), "bad"
    "malformed": (
        ipv4(tcp(MSS(1460) + b"\x03\x09\x07\x00", 65535), ttl=128, ip_id=0),
        "65535_2_1460_00",
        "4:128:0:1460:65535,0:mss:df,bad:0",
        "other",
    ),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted(name: str) -> None:
    raw, want_ja4t, want_sig, want_family = CRAFTED[name]
    syn = savedsyn.decode_syn(raw)
    assert syn is not None
    assert ja4t(syn) == want_ja4t
    assert signature(syn) == want_sig
    assert os_family(syn) == want_family
    assert os_family_raw(raw) == want_family
    assert os_family_raw(raw) == want_family  # again: from the memo


def test_ittl_and_no_syn() -> None:
    assert [synprint.ittl(t) for t in (1, 32, 33, 64, 65, 128, 129, 255)] == [
        32, 32, 64, 64, 128, 128, 255, 255,
    ]  # fmt: skip
    assert os_family(None) == os_family_raw(None) == "unknown"
    assert os_family_raw(b"\x12" * 60) == "unknown"  # no IP header to read
    assert set(synprint.FAMILIES) >= {r[3] for r in synprint._RULES} | {"other", "unknown"}


def test_raw_memo_is_keyed_without_timestamps_and_bounded() -> None:
    synprint._RAW_MEMO.clear()
    opts = MSS(1460) + SOK + TS(1) + NOP + WS(7)
    a = ipv4(tcp(opts, 64240), ttl=60)
    b = ipv4(tcp(MSS(1460) + SOK + TS(987654, 3) + NOP + WS(7), 64240, isn=7), ttl=57, ip_id=9)
    assert os_family_raw(a) == "Linux" and len(synprint._RAW_MEMO) == 1
    # another connection of the same stack: other TS values, ISN, TTL seen, IP ID — one entry
    assert os_family_raw(b) == "Linux" and len(synprint._RAW_MEMO) == 1
    assert synprint.raw_key(a)[0] == synprint.raw_key(b)[0]
    # the TS pattern inside an MSS value (2058 = 0x080a) is no TS option: never memoised
    odd = ipv4(tcp(MSS(2058) + SOK + TS(1) + NOP + WS(7), 64240), ttl=64)
    assert os_family_raw(odd) == "Linux" and len(synprint._RAW_MEMO) == 1
    # IPv6 with an extension header: no fixed offsets, decoded each time
    hop = ipv6(bytes([6, 0]) + bytes(6) + tcp(opts, 64240), hops=64)
    hop = hop[:6] + b"\x00" + hop[7:]  # next header: hop-by-hop
    assert synprint.raw_key(hop)[0] is None and os_family_raw(hop) == "Linux"
    for window in range(synprint._MEMO_MAX + 10):  # a new key each
        os_family_raw(ipv4(tcp(opts, window), ttl=64))
    assert 0 < len(synprint._RAW_MEMO) <= synprint._MEMO_MAX


def parse_raw(raw: bytes) -> tuple[int, list[int], int, int]:
    """(window, option kinds, mss, wscale) straight from the bytes, independently of tcpinfo."""
    off = (raw[0] & 0x0F) * 4 if raw[0] >> 4 == 4 else 40
    window = struct.unpack_from("!H", raw, off + 14)[0]
    opts = raw[off + 20 : off + (raw[off + 12] >> 4) * 4]
    kinds, mss, ws, i = [], 0, 0, 0
    while i < len(opts):
        kinds.append(opts[i])
        if opts[i] in (0, 1):
            i += 1
            continue
        if opts[i] == 2:
            mss = struct.unpack_from("!H", opts, i + 2)[0]
        if opts[i] == 3:
            ws = opts[i + 2]
        i += opts[i + 1]
    return window, kinds, mss, ws


def loopback_syn(host: str) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as lst:
        assert savedsyn.enable_save_syn(lst)
        lst.bind((host, 0))
        lst.listen(4)
        with socket.create_connection(lst.getsockname()[:2], timeout=5):
            srv, _ = lst.accept()
            with srv:
                raw = savedsyn.read_saved_syn(srv)
    assert raw is not None
    return raw


@pytest.mark.skipif(not LINUX, reason="TCP_SAVED_SYN is Linux-only")
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_linux_loopback_syn(host: str) -> None:
    try:
        raw = loopback_syn(host)
    except OSError:
        pytest.skip(f"no loopback on {host}")
    syn = savedsyn.decode_syn(raw)
    window, kinds, mss, ws = parse_raw(raw)
    v = 6 if ":" in host else 4
    assert kinds == [2, 4, 8, 1, 3]  # mss,sackOK,TS,nop,wscale: Linux's order
    assert mss == (65495 if v == 4 else 65476)  # loopback MTU 65536 minus the headers
    assert ja4t(syn) == f"{window}_2-4-8-1-3_{mss}_{ws}"  # e.g. 65495_2-4-8-1-3_65495_10
    ttl = raw[8] if v == 4 else raw[7]
    wsize = f"mss*{window // mss}" if window % mss == 0 else str(window)
    quirks = "df,id+" if v == 4 and raw[4:6] != b"\0\0" else "df" if v == 4 else ""
    if v == 6 and struct.unpack_from("!I", raw)[0] & 0xFFFFF:
        quirks = "flow"
    assert signature(syn) == (
        f"{v}:{synprint.ittl(ttl)}:0:{mss}:{wsize},{ws}:mss,sok,ts,nop,ws:{quirks}:0"
    )
    assert os_family(syn) == os_family_raw(raw) == "Linux"
    # a second connection from the same stack is one memo entry, not two
    key = synprint.raw_key(raw)[0]
    assert key is not None and synprint._RAW_MEMO.get(key) == "Linux"
    assert synprint.raw_key(loopback_syn(host))[0] == key
