"""Read and decode the kernel's per-connection TCP state: TCP_INFO (the saved SYN is
savedsyn.py's).

This module only reads socket options and decodes bytes. It keeps no state beyond
precompiled structs, does no logging, I/O scheduling or metrics: callers decide when
to sample and what to do with the numbers.

Everything degrades to None instead of raising: off Linux, on a closed socket, on
an older kernel's shorter struct, or on malformed SYN bytes.
"""

from __future__ import annotations

import operator
import socket
import struct
import sys
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Protocol

_LINUX = sys.platform.startswith("linux")
TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)
_BUFLEN = 512  # bounds the decode-plan cache (any caller-supplied length)


class HasSockopt(Protocol):
    def getsockopt(self, level: int, optname: int, buflen: int = ..., /) -> Any: ...


# struct tcp_info, include/uapi/linux/tcp.h (mainline, 280 bytes as of 6.18).
# Names drop the "tcpi_" prefix. Names starting with "_" are bitfield containers.
#
# Units, as the kernel reports them:
#   rto, ato, rtt, rttvar, rcv_rtt, min_rtt ........ microseconds (rtt is the smoothed RTT)
#   busy_time, rwnd_limited, sndbuf_limited ........ microseconds (cumulative)
#   last_data_sent/_ack_sent/_data_recv/_ack_recv .. milliseconds *ago* (last_ack_sent: always 0)
#   total_rto_time ................................. milliseconds
#   snd_cwnd, snd_ssthresh, reordering ............. segments
#   unacked, sacked, lost, retrans, fackets ........ segments (current, in flight)
#   total_retrans, segs_*, data_segs_*, delivered* . segments (cumulative)
#   snd_mss, rcv_mss, advmss, pmtu, rcv_ssthresh ... bytes
#   rcv_space, notsent_bytes, snd_wnd, rcv_wnd ..... bytes (windows already scaled)
#   bytes_acked, bytes_received, bytes_sent, ...... bytes (cumulative, 64-bit)
#   *_e0_bytes, *_e1_bytes, *_ce_bytes ............. bytes (AccECN counters, 32-bit, wrap)
#   pacing_rate, max_pacing_rate, delivery_rate .... bytes per second (2**64-1 = unlimited)
#   snd_wscale, rcv_wscale ......................... shift counts (peer's and ours)
#   state, ca_state, options, ecn_mode, ... ........ enums / bit sets
_LAYOUT: tuple[tuple[str, str], ...] = (
    ("state", "B"), ("ca_state", "B"), ("retransmits", "B"), ("probes", "B"),
    ("backoff", "B"), ("options", "B"), ("_wscale", "B"), ("_rate_flags", "B"),
    ("rto", "I"), ("ato", "I"), ("snd_mss", "I"), ("rcv_mss", "I"),
    ("unacked", "I"), ("sacked", "I"), ("lost", "I"), ("retrans", "I"), ("fackets", "I"),
    ("last_data_sent", "I"), ("last_ack_sent", "I"), ("last_data_recv", "I"),
    ("last_ack_recv", "I"),
    ("pmtu", "I"), ("rcv_ssthresh", "I"), ("rtt", "I"), ("rttvar", "I"),
    ("snd_ssthresh", "I"), ("snd_cwnd", "I"), ("advmss", "I"), ("reordering", "I"),
    ("rcv_rtt", "I"), ("rcv_space", "I"), ("total_retrans", "I"),  # 104: <= 3.14
    ("pacing_rate", "Q"), ("max_pacing_rate", "Q"),
    ("bytes_acked", "Q"), ("bytes_received", "Q"),
    ("segs_out", "I"), ("segs_in", "I"),
    ("notsent_bytes", "I"), ("min_rtt", "I"), ("data_segs_in", "I"), ("data_segs_out", "I"),
    ("delivery_rate", "Q"),
    ("busy_time", "Q"), ("rwnd_limited", "Q"), ("sndbuf_limited", "Q"),
    ("delivered", "I"), ("delivered_ce", "I"),
    ("bytes_sent", "Q"), ("bytes_retrans", "Q"),
    ("dsack_dups", "I"), ("reord_seen", "I"), ("rcv_ooopack", "I"),
    ("snd_wnd", "I"), ("rcv_wnd", "I"), ("rehash", "I"),
    ("total_rto", "H"), ("total_rto_recoveries", "H"), ("total_rto_time", "I"),  # 248: 6.7
    ("received_ce", "I"), ("delivered_e1_bytes", "I"), ("delivered_e0_bytes", "I"),
    ("delivered_ce_bytes", "I"), ("received_e1_bytes", "I"), ("received_e0_bytes", "I"),
    ("received_ce_bytes", "I"), ("_ecn_bits", "I"),  # 280: AccECN (6.18 has it)
)  # fmt: skip
# The last word is mainline's "ecn_mode:2, accecn_opt_seen:2, accecn_fail_mode:4, options2:24".
# Earlier AccECN revisions put "__u16 accecn_fail_mode, accecn_opt_seen" in the same 4 bytes,
# and the 6.18 kernel this was written on reports ecn_mode 0 even on an RFC 3168 ECN
# connection: trust those four fields only on kernels known to carry the final layout.

# C bitfields, declared first-to-last = (name, width). GCC allocates from the least
# significant bit on little-endian ABIs and from the most significant on big-endian.
_BITFIELDS: dict[str, tuple[int, tuple[tuple[str, int], ...]]] = {
    "_wscale": (8, (("snd_wscale", 4), ("rcv_wscale", 4))),
    "_rate_flags": (8, (("delivery_rate_app_limited", 1), ("fastopen_client_fail", 2))),
    "_ecn_bits": (
        32,
        (("ecn_mode", 2), ("accecn_opt_seen", 2), ("accecn_fail_mode", 4), ("options2", 24)),
    ),
}


def _bit_splitter(container: str) -> Callable[[int], dict[str, int]]:
    size, fields = _BITFIELDS[container]
    parts, pos = [], 0
    for name, width in fields:
        shift = pos if sys.byteorder == "little" else size - pos - width
        parts.append((name, shift, (1 << width) - 1))
        pos += width
    if size == 8:  # a byte has 256 values: look the split up instead of shifting per call
        return tuple({n: (b >> s) & m for n, s, m in parts} for b in range(256)).__getitem__
    zero = {n: 0 for n, _, _ in parts}  # the AccECN word is 0 on almost every connection
    return lambda v: {n: (v >> s) & m for n, s, m in parts} if v else zero


_SPLIT = {c: _bit_splitter(c) for c in _BITFIELDS}

TCP_INFO_FIELDS: tuple[str, ...] = tuple(
    n
    for name, _ in _LAYOUT
    for n in ([f for f, _ in _BITFIELDS[name][1]] if name in _BITFIELDS else [name])
)
# Offset just past each _LAYOUT entry; "=" packing has no padding, and neither has the C struct.
_ENDS: tuple[int, ...] = tuple(accumulate(struct.calcsize("=" + f) for _, f in _LAYOUT))
TCP_INFO_SIZE: int = _ENDS[-1]

TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}  # fmt: skip
# TCPI_OPT_* bits of tcpi_options.
TCPI_OPTIONS: tuple[tuple[int, str], ...] = (
    (1, "timestamps"), (2, "sack"), (4, "wscale"), (8, "ecn"), (16, "ecn_seen"),
    (32, "syn_data"), (64, "usec_ts"), (128, "tfo_child"),
)  # fmt: skip
# Both are u8, so decoding them is an index into a 256-entry table.
_STATE_NAME = tuple(TCP_STATES.get(i, f"UNKNOWN_{i}") for i in range(256))
_OPTION_NAMES = tuple(tuple(n for bit, n in TCPI_OPTIONS if i & bit) for i in range(256))

_KEYS = (*TCP_INFO_FIELDS, "state_name", "options_names")
# Copying a dict that already has every key, then updating it, beats growing a new one.
_ALL_NONE = dict.fromkeys(_KEYS)
# Per covered length: the prefix Struct, the keys its values go to, and the bitfield splits
# to apply. A bitfield word is first stored under its first field's key, then split in place,
# which keeps the dict's key order without popping placeholder keys.
_Plan = tuple[struct.Struct, tuple[str, ...], tuple[tuple[str, Callable[[int], Any]], ...]]
_PLANS: dict[int, _Plan | None] = {}


def _plan(length: int) -> _Plan | None:
    # Kernels copy min(optlen, sizeof) bytes, so an older kernel hands back a prefix of the
    # struct; bytes past 280 would be fields newer than this table and are ignored.
    key = min(length, TCP_INFO_SIZE)
    if key in _PLANS:
        plan = _PLANS[key]
    else:
        k = sum(1 for end in _ENDS if end <= key)
        names = tuple(_BITFIELDS[n][1][0][0] if n in _SPLIT else n for n, _ in _LAYOUT[:k])
        splits = tuple((_BITFIELDS[n][1][0][0], _SPLIT[n]) for n, _ in _LAYOUT[:k] if n in _SPLIT)
        fmt = "=" + "".join(f for _, f in _LAYOUT[:k])
        plan = _PLANS[key] = (struct.Struct(fmt), names, splits) if k else None
    if length <= _BUFLEN:  # bound the cache against arbitrary caller-supplied lengths
        _PLANS[length] = plan
    return plan


_plan(104)  # warm the common lengths so the hot path is a dict hit
_plan(TCP_INFO_SIZE)


def decode_tcp_info(raw: bytes | None) -> dict[str, Any]:
    """Decode TCP_INFO bytes into {field: int | None} plus state_name and options_names.

    Every name in TCP_INFO_FIELDS is a key, in struct order; fields the buffer doesn't fully
    cover are None.
    """
    out = _ALL_NONE.copy()
    if not raw:
        return out
    n = len(raw)
    plan = _PLANS[n] if n in _PLANS else _plan(n)
    if plan is None:
        return out
    st, names, splits = plan
    v = st.unpack_from(raw)
    out.update(zip(names, v, strict=True))
    for first, split in splits:
        out.update(split(out[first]))
    out["state_name"] = _STATE_NAME[v[0]]
    if len(v) > 5:
        out["options_names"] = list(_OPTION_NAMES[v[5]])
    return out


HOT_FIELDS: tuple[str, ...] = (
    "rtt", "rttvar", "snd_cwnd", "rcv_space", "total_retrans",
    "bytes_acked", "bytes_received", "last_ack_recv",
)  # fmt: skip


# One Struct over offsets 56..136 (last_ack_recv .. bytes_received) skipping the fields in
# between, so the fast path is a single unpack_from plus one C-level reorder. The offsets are
# hand-written; the unit tests check them against the full decode.
_HOT = struct.Struct("=I8xII4xI12xII16xQQ")
_HOT_START, _HOT_END = 56, 136
_HOT_ORDER = operator.itemgetter(1, 2, 3, 4, 5, 6, 7, 0)


def hot_fields(raw: bytes | None) -> tuple[int | None, ...]:
    """(rtt, rttvar, snd_cwnd, rcv_space, total_retrans, bytes_acked, bytes_received,
    last_ack_recv) without building the dict; None for fields the buffer doesn't cover."""
    if raw is not None and len(raw) >= _HOT_END:
        return _HOT_ORDER(_HOT.unpack_from(raw, _HOT_START))
    d = decode_tcp_info(raw)
    return tuple(d[n] for n in HOT_FIELDS)


# What a connection's close needs, in one unpack: state, total_retrans, bytes_acked,
# bytes_received, bytes_sent, bytes_retrans (offsets checked against the full decode in tests)
_CLOSE = struct.Struct("=B99xI16xQQ64xQQ")
CLOSE_FIELDS: tuple[str, ...] = (
    "state", "total_retrans", "bytes_acked", "bytes_received", "bytes_sent", "bytes_retrans",
)  # fmt: skip


def close_fields(raw: bytes | None) -> tuple[int | None, ...]:
    """CLOSE_FIELDS of a TCP_INFO buffer; None for fields the buffer doesn't cover."""
    if raw is not None and len(raw) >= _CLOSE.size:
        return _CLOSE.unpack_from(raw)
    d = decode_tcp_info(raw)
    return tuple(d[n] for n in CLOSE_FIELDS)


# What the handshake summary needs, in one unpack: state, options, the wscale byte, snd_mss,
# rcv_mss, last_ack_recv, rtt, rttvar, advmss (offsets checked against the full decode in tests)
_HANDSHAKE = struct.Struct("=B4xBB9xII32xI8xII8xI")
HANDSHAKE_FIELDS: tuple[str, ...] = (
    "rtt", "rttvar", "snd_mss", "rcv_mss", "advmss", "snd_wscale", "rcv_wscale",
    "options_names", "last_ack_recv", "state_name",
)  # fmt: skip
_WSCALES = tuple((d["snd_wscale"], d["rcv_wscale"]) for d in map(_SPLIT["_wscale"], range(256)))


def handshake_fields(raw: bytes | None) -> tuple[Any, ...]:
    """HANDSHAKE_FIELDS of a TCP_INFO buffer, as decode_tcp_info gives them (options_names a
    new list) without building its dict; None for fields the buffer doesn't cover."""
    if raw is not None and len(raw) >= _HANDSHAKE.size:
        state, options, wscale, snd_mss, rcv_mss, ack_recv, rtt, rttvar, advmss = (
            _HANDSHAKE.unpack_from(raw)
        )
        snd_wscale, rcv_wscale = _WSCALES[wscale]
        names = list(_OPTION_NAMES[options])
        return (
            rtt, rttvar, snd_mss, rcv_mss, advmss, snd_wscale, rcv_wscale, names, ack_recv,
            _STATE_NAME[state],
        )  # fmt: skip
    d = decode_tcp_info(raw)
    return tuple(d[n] for n in HANDSHAKE_FIELDS)


def read_tcp_info(sock: HasSockopt) -> bytes | None:
    """getsockopt(TCP_INFO) on a socket.socket or uvloop PseudoSocket; None if unavailable."""
    if TCP_INFO is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE)
    except OSError:
        return None
    return raw or None


def field_reader(name: str) -> Callable[[bytes | None], int | None] | None:
    """A fast reader of one TCP_INFO field (for `$tcpinfo_NAME`), or None if no such field."""
    if name not in TCP_INFO_FIELDS:
        return None
    offset = 0
    for (entry, fmt), end in zip(_LAYOUT, _ENDS, strict=True):
        fields = [f for f, _ in _BITFIELDS[entry][1]] if entry in _BITFIELDS else [entry]
        if name in fields:
            one = struct.Struct("=" + fmt)
            if entry in _SPLIT:
                split = _SPLIT[entry]
                return lambda raw: (
                    split(one.unpack_from(raw, offset)[0])[name]
                    if raw and len(raw) >= end
                    else None
                )
            return lambda raw: one.unpack_from(raw, offset)[0] if raw and len(raw) >= end else None
        offset = end
    return None


# lifecycle_request_tcpinfo: what a request's JSON says of TCP, (key, field) — deltas first
REQUEST_DELTAS: tuple[tuple[str, str], ...] = (
    ("retransmits", "total_retrans"), ("bytes_acked", "bytes_acked"),
    ("bytes_received", "bytes_received"), ("segs_out", "segs_out"), ("segs_in", "segs_in"),
    ("data_segs_out", "data_segs_out"), ("data_segs_in", "data_segs_in"),
)  # fmt: skip


def request_deltas(start: bytes | None, end: bytes | None) -> dict[str, Any]:
    """A request's TCP numbers: what changed between TCP_INFO at its first byte and once its
    response was handed to the kernel, then the RTT and the delivery rate at that moment —
    the rate only when the kernel did not mark it app-limited (measured while the sender had
    too little to send, it is the application's pace, not the path's). None where a buffer
    lacks a field (an older kernel, or the connection was gone before its answer)."""
    a, b = decode_tcp_info(start), decode_tcp_info(end)
    out: dict[str, Any] = {}
    for key, name in REQUEST_DELTAS:
        x, y = a[name], b[name]
        out[key] = None if x is None or y is None else y - x
    out["rtt_us"] = b["rtt"]
    out["rttvar_us"] = b["rttvar"]
    limited = b["delivery_rate_app_limited"]
    out["delivery_rate"] = b["delivery_rate"] if limited == 0 else None
    out["delivery_rate_app_limited"] = None if limited is None else bool(limited)
    return out
