"""The kernel numbers of a batch of closed connections, counted into a Stats in C-level loops.

Every closed connection's record adds to five series: who closed, the OS family of its SYN,
the handshake RTT and the accept-queue wait (TCP_INFO at accept), the retransmits and the
payload bytes (TCP_INFO at close). Done a record at a time in Python that was ~26,000
instructions a connection (callgrind), more than the rest of the lifecycle together. Here
the TCP_INFO buffers of a batch are joined and read as one array of words, and each series is
a slice of it counted by map/sum/Counter: the per-record work is C's.

Only when every buffer of the batch has the same, full layout; otherwise (an older kernel's
shorter TCP_INFO, a connection without one) `count_each` does it a record at a time — the
same numbers (tests/unit/test_stats_batch.py holds both to it).

Owns that arithmetic; never reads a socket, never touches a record beyond its fields.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from itertools import compress
from operator import attrgetter, or_, sub
from typing import Any

from . import synprint, tcpinfo

# struct tcp_info offsets (include/uapi/linux/tcp.h; checked against the full decode in tests)
_RTT = 68  # u32, µs
_LAST_ACK_RECV = 56  # u32, ms ago (at accept: the time the connection waited to be accepted)
_TOTAL_RETRANS = 100  # u32
_BYTES_ACKED, _BYTES_RECEIVED = 120, 128  # u64
_BYTES_SENT, _BYTES_RETRANS = 200, 208  # u64
_NEEDS = 216  # a buffer this long has every field above
_PEER_FIN_STATES = (6, 8, 9, 11)  # TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING: the client's FIN
_FIN_STATE = bytes(1 if s in _PEER_FIN_STATES else 0 for s in range(256))

_SYN = attrgetter("syn")
_ACCEPT = attrgetter("info_accept")
_CLOSE = attrgetter("info_close")
_CLOSED_BY = attrgetter("closed_by")
_PEER_EOF = attrgetter("peer_eof")


def int_bounds(bounds: tuple[float, ...], scale: float) -> list[int]:
    """Bounds in seconds as integer thresholds of a value in 1/scale seconds: for an integer
    v, bisect_left(int_bounds, v) == bisect_left(bounds, v / scale), exactly (no rounding
    of b * scale decides a value that lies on a bound)."""
    out = []
    for bound in bounds:
        t = int(bound * scale) - 2  # the least integer t with t / scale > bound is near here
        while t / scale <= bound:
            t += 1
        out.append(t - 1)  # v > t - 1  ⟺  v / scale > bound
    return out


def count(stats: Any, records: list[Any]) -> None:
    """Count closed `records` into `stats` (see the module docstring)."""
    n = len(records)
    if not n:
        return
    accepts = list(map(_ACCEPT, records))
    closes = list(map(_CLOSE, records))
    size = len(accepts[0] or b"")
    try:
        joined_accept = b"".join(accepts)
        joined_close = b"".join(closes)
    except TypeError:  # a record without TCP_INFO
        count_each(stats, records)
        return
    if size < _NEEDS or size % 8 or len(joined_accept) != size * n or len(joined_close) != size * n:
        count_each(stats, records)
        return
    closed_by = stats.closed_by
    for who, k in Counter(map(_CLOSED_BY, records)).items():
        closed_by[who if who in closed_by else "reset"] += k
    by_os = stats.by_os
    for family, k in Counter(map(synprint.os_family_raw, map(_SYN, records))).items():
        by_os[family] += k
    words = memoryview(joined_accept).cast("I")
    stride = size // 4
    _observe(stats.handshake_rtt, words[_RTT // 4 :: stride].tolist(), 1e6)
    _observe(stats.accept_queue, words[_LAST_ACK_RECV // 4 :: stride].tolist(), 1e3)
    words = memoryview(joined_close).cast("I")
    _observe(stats.retransmits, words[_TOTAL_RETRANS // 4 :: stride].tolist(), 0)
    quads = memoryview(joined_close).cast("Q")
    stride = size // 8
    received = quads[_BYTES_RECEIVED // 8 :: stride].tolist()
    # the client's FIN takes a sequence number: bytes_received counts it (see _data_bytes)
    fin = map(or_, map(_PEER_EOF, records), joined_close[::size].translate(_FIN_STATE))
    stats.bytes_in += sum(received) - sum(compress(fin, received))
    sent = map(sub, quads[_BYTES_SENT // 8 :: stride], quads[_BYTES_RETRANS // 8 :: stride])
    stats.bytes_out += sum(map(min, quads[_BYTES_ACKED // 8 :: stride], sent))
    stats.open_now -= n


_INT_BOUNDS: dict[tuple[int, float], list[int]] = {}


def _observe(hist: Any, values: list[int], scale: float) -> None:
    """Add integer `values` (in 1/scale seconds; scale 0: plain numbers) to `hist`: sorted
    once, each bucket is the difference of two bisections (bucket i holds what is ≤ bound i
    and > bound i - 1, as bisect_left(bounds, value) puts it)."""
    if scale:
        key = (id(hist.bounds), scale)
        bounds = _INT_BOUNDS.get(key)
        if bounds is None:
            bounds = _INT_BOUNDS[key] = int_bounds(hist.bounds, scale)
        hist.sum += sum(values) / scale
    else:
        bounds = hist.bounds
        hist.sum += sum(values)
    values.sort()
    counts = hist.counts
    below = 0
    for index, bound in enumerate(bounds):
        upto = bisect_right(values, bound)
        counts[index] += upto - below
        below = upto
    counts[-1] += len(values) - below
    hist.count += len(values)


def count_each(stats: Any, records: list[Any]) -> None:
    """The same counts, a record at a time: for buffers of another size, or none."""
    closed_by, by_os = stats.closed_by, stats.by_os
    rtt, queue, retrans = stats.handshake_rtt, stats.accept_queue, stats.retransmits
    for record in records:
        who = record.closed_by
        closed_by[who if who in closed_by else "reset"] += 1
        by_os[synprint.os_family_raw(record.syn)] += 1
        if record.info_accept is not None:
            accept = tcpinfo.hot_fields(record.info_accept)
            if accept[0] is not None:
                rtt.observe(accept[0] / 1e6)
            if accept[7] is not None:
                queue.observe(accept[7] / 1e3)
        data_in, data_out, resent = record.data_bytes()
        if resent is not None:
            retrans.observe(resent)
        stats.bytes_in += data_in or 0
        stats.bytes_out += data_out or 0
    stats.open_now -= len(records)
