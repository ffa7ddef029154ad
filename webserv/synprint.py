"""Fingerprints of a client's TCP stack from its saved SYN: JA4T, a p0f-style signature, and
a guess of the OS family.

Owns the three formats and the guess's rules. Takes what savedsyn.decode_syn returns (or, for
the metrics, the raw saved SYN) and returns strings; keeps only bounded memos of results.
Never reads a socket, never logs, never decides anything per connection by itself: callers
ask only when something reads a fingerprint (a log line, the status page, the lifecycle log)
— except Stats.records_closed, which counts every connection's OS family through
os_family_raw, one dict lookup for a client already seen.

JA4T is FoxIO's (JA4+, FoxIO License 1.1): `window_kinds_mss_wscale`, printed as the
Wireshark and Zeek plugins print it (FoxIO-LLC/ja4#304): no options -> "00", no MSS -> "00",
no (or a zero) window scale -> "00", a non-zero one unpadded; the kinds in wire order, NOPs,
the EOL and the padding bytes after it included (macOS: `..._2-1-3-1-1-8-4-0-0_1460_6`); a
repeated MSS or window scale: the last one counts.

The signature is p0f v3's `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass` with the
initial TTL guessed (the next of 32, 64, 128, 255 at or above the one seen), as p0f.fp's
entries write it (p0f's own raw_sig writes `ttl+distance` there instead).

os_family is a guess from a few rules (_RULES below), not p0f's database: a middlebox that
rewrites SYNs (a proxy, some NATs, a VPN) makes it guess the middlebox, and any stack can be
tuned to look like another.
"""

from __future__ import annotations

from typing import Any

from . import savedsyn

FAMILIES: tuple[str, ...] = ("Linux", "Windows", "macOS/iOS", "FreeBSD", "other", "unknown")
_MEMO_MAX = 4096  # entries per memo; past it the memo starts again, empty

# The initial TTL a sender most likely used: the next of 32, 64, 128, 255 at or above it.
_ITTL = tuple(32 if t <= 32 else 64 if t <= 64 else 128 if t <= 128 else 255 for t in range(256))

# (initial TTL, option kinds up to the EOL, window or None for any) -> family. The layouts
# are the stacks' defaults (Linux also with timestamps or SACK turned off); the windows
# where a stack's default is one fixed value. First match wins; nothing matches: "other".
_RULES: tuple[tuple[int, tuple[int, ...], int | None, str], ...] = (
    (64, (2, 4, 8, 1, 3), None, "Linux"),  # mss,sok,ts,nop,ws (Android too)
    (64, (2, 1, 1, 4, 1, 3), None, "Linux"),  # net.ipv4.tcp_timestamps=0
    (64, (2, 1, 1, 8, 1, 3), None, "Linux"),  # net.ipv4.tcp_sack=0
    (64, (2, 4, 8), None, "Linux"),  # no window scaling
    (64, (2, 1, 3, 1, 1, 8, 4, 0), 65535, "macOS/iOS"),  # mss,nop,ws,nop,nop,ts,sok,eol
    (64, (2, 1, 3, 1, 1, 8, 4), 65535, "macOS/iOS"),
    (64, (2, 1, 3, 4, 8), 65535, "FreeBSD"),  # mss,nop,ws,sok,ts
    (64, (2, 1, 3, 1, 1, 4), 65535, "FreeBSD"),  # net.inet.tcp.rfc1323=0
    (128, (2, 1, 3, 1, 1, 4), None, "Windows"),  # Windows 7 and later
    (128, (2, 1, 3, 1, 1, 8, 1, 1, 4), None, "Windows"),  # with timestamps on
    (128, (2, 1, 1, 4), None, "Windows"),  # XP, 2003
)
_RULE_INDEX: dict[tuple[int, tuple[int, ...]], list[tuple[int | None, str]]] = {}
for _ittl, _layout, _window, _family in _RULES:
    _RULE_INDEX.setdefault((_ittl, _layout), []).append((_window, _family))

# p0f's option names; any other kind is "?N"
_P0F_NAMES = {1: "nop", 2: "mss", 3: "ws", 4: "sok", 5: "sack", 8: "ts"}


def _layout(kinds: list[int]) -> tuple[int, ...]:
    """The option kinds up to and including an EOL (its padding dropped)."""
    if 0 in kinds:
        return tuple(kinds[: kinds.index(0) + 1])
    return tuple(kinds)


def ja4t(syn: Any) -> str:
    """FoxIO's JA4T of a decoded SYN: "65495_2-4-8-1-3_65495_10" for Linux over loopback."""
    opts = syn["options"]
    kinds = opts["kinds"]
    mss, wscale = opts["mss"], opts["wscale"]
    return "%d_%s_%02d_%s" % (  # noqa: UP031 (%02d is the format JA4T is defined in)
        syn["window"] or 0,
        "-".join(map(str, kinds)) if kinds else "00",
        mss or 0,
        str(wscale) if wscale else "00",
    )


def ittl(ttl: int) -> int:
    return _ITTL[ttl & 0xFF]


def _quirks(syn: Any) -> list[str]:
    """p0f's quirks that the saved IP and TCP headers show, in p0f's order."""
    q = []
    v4 = syn["ip_version"] == 4
    flags = syn["flags"]
    if v4:
        if syn["df"]:
            q.append("df")
            if syn["ip_id"]:
                q.append("id+")
        elif syn["ip_id"] == 0:
            q.append("id-")
    if syn["ip_ecn"] or "ECE" in flags or "CWR" in flags or "AE" in flags:
        q.append("ecn")
    if v4 and syn["ip_mbz"]:
        q.append("0+")
    if not v4 and syn["flow_label"]:
        q.append("flow")
    if syn["isn"] == 0:
        q.append("seq-")
    if "ACK" not in flags:
        if syn["ack"]:
            q.append("ack+")
    elif syn["ack"] == 0:
        q.append("ack-")
    if syn["urgent_ptr"] and "URG" not in flags:
        q.append("uptr+")
    if "URG" in flags:
        q.append("urgf+")
    if "PSH" in flags:
        q.append("pushf+")
    opts = syn["options"]
    if opts["timestamps"]:
        if not opts["tsval"]:
            q.append("ts1-")
        if opts["tsecr"]:
            q.append("ts2+")
    kinds = opts["kinds"]
    if 0 in kinds and any(kinds[kinds.index(0) + 1 :]):
        q.append("opt+")
    if opts["wscale"] is not None and opts["wscale"] > 14:
        q.append("exws")
    if opts["malformed"]:
        q.append("bad")
    return q


def _wsize(window: int, mss: int, version: int) -> str:
    """The window as p0f writes it: a multiple of the MSS ("mss*N"), else of the MTU the MSS
    implies ("mtu*N"), else the number."""
    if window and mss >= 100:
        if window % mss == 0:
            return f"mss*{window // mss}"
        mtu = mss + (40 if version == 4 else 60)
        if window % mtu == 0:
            return f"mtu*{window // mtu}"
    return str(window)


def signature(syn: Any) -> str:
    """A p0f-style signature: "4:64:0:65495:mss*1,10:mss,sok,ts,nop,ws:df,id+:0" for Linux
    over loopback. An absent MSS or window scale is 0, as p0f writes them."""
    opts = syn["options"]
    kinds = opts["kinds"]
    mss, version = opts["mss"] or 0, syn["ip_version"]
    layout = []
    for i, kind in enumerate(kinds):
        if kind == 0:
            layout.append(f"eol+{len(kinds) - i - 1}")
            break
        layout.append(_P0F_NAMES.get(kind) or f"?{kind}")
    payload = syn["payload_len"]
    return ":".join((
        str(version), str(ittl(syn["ttl"])), str(syn["ip_options_len"]), str(mss),
        f"{_wsize(syn['window'] or 0, mss, version)},{opts['wscale'] or 0}",
        ",".join(layout), ",".join(_quirks(syn)), "+" if payload else "0",
    ))  # fmt: skip


_FAMILY_MEMO: dict[tuple[int, int | None, tuple[int, ...]], str] = {}


def os_family(syn: Any) -> str:
    """A guess among FAMILIES from the initial TTL, the window and the option layout (see
    _RULES); "unknown" without a SYN."""
    if syn is None:
        return "unknown"
    key = (_ITTL[syn["ttl"] & 0xFF], syn["window"], _layout(syn["options"]["kinds"]))
    family = _FAMILY_MEMO.get(key)
    if family is None:
        family = "other"
        for window, name in _RULE_INDEX.get((key[0], key[2]), ()):
            if window is None or window == key[1]:
                family = name
                break
        if len(_FAMILY_MEMO) >= _MEMO_MAX:
            _FAMILY_MEMO.clear()
        _FAMILY_MEMO[key] = family
    return family


# --- from the raw saved SYN, for the metrics: one dict lookup for a client seen before ----

_RAW_MEMO: dict[bytes, str] = {}
_ITTL_BYTE = tuple(bytes((t,)) for t in _ITTL)


def raw_key(raw: bytes) -> tuple[bytes | None, int]:
    """(the bytes that decide the OS family: the initial TTL, the window and the TCP options
    with a TS option's values cut out, and where they were cut or -1). None: no fixed layout
    (IPv6 extension headers, a short or non-TCP SYN); such a SYN is decoded every time."""
    n = len(raw)
    version = raw[0] >> 4 if n >= 40 else 0
    if version == 4 and raw[9] == 6:
        off, ttl = (raw[0] & 0x0F) * 4, raw[8]
    elif version == 6 and raw[6] == 6:
        off, ttl = 40, raw[7]
    else:
        return None, -1
    if off < 20 or n < off + 20:
        return None, -1
    opts = raw[off + 20 : off + (raw[off + 12] >> 4) * 4]
    cut = opts.find(b"\x08\x0a")  # a TS option (kind 8, length 10): its values change
    if cut >= 0:
        opts = opts[: cut + 2] + opts[cut + 10 :]
    return _ITTL_BYTE[ttl] + raw[off + 14 : off + 16] + opts, cut


def _option_starts(opts: bytes) -> set[int]:
    starts, i = set(), 0
    while i < len(opts) and opts[i] != 0:
        starts.add(i)
        i += 1 if opts[i] == 1 or i + 1 >= len(opts) or opts[i + 1] < 2 else opts[i + 1]
    return starts


def os_family_raw(raw: bytes | None) -> str:
    """os_family of a raw saved SYN, memoised by raw_key (bounded). A key whose cut is not
    at a real TS option is never stored, so a hit means the same options but for the TS
    values: the same family."""
    if raw is None:
        return "unknown"
    key, cut = raw_key(raw)
    family = _RAW_MEMO.get(key) if key is not None else None
    if family is not None:
        return family
    family = os_family(savedsyn.decode_syn(raw))
    if key is not None and (cut < 0 or cut in _option_starts(key[3 : 3 + cut + 1])):
        if len(_RAW_MEMO) >= _MEMO_MAX:
            _RAW_MEMO.clear()
        _RAW_MEMO[key] = family
    return family
