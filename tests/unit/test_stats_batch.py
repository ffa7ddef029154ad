"""stats_batch.count (a batch at a time, C-level loops over joined TCP_INFO buffers) against
a verbatim copy of the per-record loop it replaced (Stats.records_closed before), on batches
of crafted records: full buffers (the joined path), shorter ones and missing ones (the
per-record path), states with and without the client's FIN, values on the buckets' bounds.
"""

from __future__ import annotations

import random
import struct
from bisect import bisect_left
from typing import Any

import pytest
from test_record_json import SYNS, build, synthetic_info

from webserv import stats_batch, synprint, tcpinfo
from webserv.stats import QUEUE_BUCKETS, RTT_BUCKETS, Stats


def ref_records_closed(self: Stats, batch: Any) -> None:
    """Stats.records_closed as it was (a record at a time), but for `self` as a parameter."""
    closed_by = self.closed_by
    rtt, queue, retrans = self.handshake_rtt, self.accept_queue, self.retransmits
    rtt_bounds, rtt_counts = rtt.bounds, rtt.counts
    queue_bounds, queue_counts = queue.bounds, queue.counts
    retrans_bounds, retrans_counts = retrans.bounds, retrans.counts
    hot_fields = tcpinfo.hot_fields
    by_os, os_family = self.by_os, synprint.os_family_raw  # memoised by the SYN's bytes
    rtt_sum = queue_sum = 0.0
    rtt_n = queue_n = retrans_sum = retrans_n = bytes_in = bytes_out = 0
    for record, _ in batch:
        who = record.closed_by
        closed_by[who if who in closed_by else "reset"] += 1
        by_os[os_family(record.syn)] += 1
        if record.info_accept is not None:
            accept = hot_fields(record.info_accept)
            if accept[0] is not None:
                seconds = accept[0] / 1e6
                rtt_counts[bisect_left(rtt_bounds, seconds)] += 1
                rtt_sum += seconds
                rtt_n += 1
            if accept[7] is not None:
                seconds = accept[7] / 1e3
                queue_counts[bisect_left(queue_bounds, seconds)] += 1
                queue_sum += seconds
                queue_n += 1
        data_in, data_out, resent = record.data_bytes()
        if resent is not None:
            retrans_counts[bisect_left(retrans_bounds, resent)] += 1
            retrans_sum += resent
            retrans_n += 1
        bytes_in += data_in or 0
        bytes_out += data_out or 0
    self.open_now -= len(batch)
    rtt.sum += rtt_sum
    rtt.count += rtt_n
    queue.sum += queue_sum
    queue.count += queue_n
    retrans.sum += retrans_sum
    retrans.count += retrans_n
    self.bytes_in += bytes_in
    self.bytes_out += bytes_out


NAMES = [name for name, _ in tcpinfo._LAYOUT]
FORMAT = "=" + "".join(code for _, code in tcpinfo._LAYOUT)


def with_fields(raw: bytes, **fields: int) -> bytes:
    values = list(struct.unpack(FORMAT, raw))
    for name, value in fields.items():
        values[NAMES.index(name)] = value
    return struct.pack(FORMAT, *values)


def on_bounds(rng: random.Random, raw: bytes) -> bytes:
    """Values on, just under and just over the buckets' bounds, and the extremes."""
    rtt = round(rng.choice(RTT_BUCKETS) * 1e6) + rng.choice((-1, 0, 0, 1))
    queue = round(rng.choice(QUEUE_BUCKETS) * 1e3) + rng.choice((-1, 0, 0, 1))
    rtt = rng.choice((rtt, 0, 2**32 - 1))
    return with_fields(raw, rtt=max(rtt, 0), last_ack_recv=max(queue, 0))


def batch_of(rng: random.Random, n: int, shape: str) -> list[Any]:
    batch = []
    for _ in range(n):
        accept, close = synthetic_info(rng), synthetic_info(rng)
        if rng.random() < 0.5:
            accept = on_bounds(rng, accept)
        if shape == "short" and rng.random() < 0.3:
            accept = accept[: rng.choice((0, 8, 100, 200, tcpinfo.TCP_INFO_SIZE - 8))] or None
        if shape == "missing" and rng.random() < 0.3:
            close = None
        who = rng.choice(("client", "server", "reset", "worker_connections"))
        record = build(rng, rng.choice(list(SYNS.values())), accept, close, 0, closed_by=who)
        record.info_close = close  # (build leaves some without: that is the "missing" shape)
        record.peer_eof = rng.random() < 0.5
        batch.append((record, None))
    return batch


def numbers(stats: Stats) -> dict[str, Any]:
    out: dict[str, Any] = {
        "closed_by": dict(stats.closed_by), "by_os": dict(stats.by_os),
        "bytes": (stats.bytes_in, stats.bytes_out), "open": stats.open_now,
    }  # fmt: skip
    for name in ("handshake_rtt", "accept_queue", "retransmits"):
        hist = getattr(stats, name)
        out[name] = (list(hist.counts), hist.count)
        out[name + "_sum"] = hist.sum
    return out


@pytest.mark.parametrize("shape", ["full", "short", "missing"])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 300])
def test_batch_counts_equal_the_per_record_loop(
    shape: str, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    each = stats_batch.count_each
    calls: list[int] = []
    monkeypatch.setattr(stats_batch, "count_each", lambda *a: (calls.append(1), each(*a)))
    rng = random.Random(f"{shape}-{n}")
    for _ in range(3):
        batch = batch_of(rng, n, shape)
        got, want = Stats(), Stats()
        for stats in (got, want):
            stats.open_now = 1000
        got.records_closed(batch)
        ref_records_closed(want, batch)
        a, b = numbers(got), numbers(want)
        for key in a:
            if key.endswith("_sum"):
                assert a[key] == pytest.approx(b[key], rel=1e-12), key
            else:
                assert a[key] == b[key], key
        # full buffers take the joined path; a short or missing one sends the batch record
        # by record
        full = all(
            r.info_accept is not None and r.info_close is not None
            and len(r.info_accept) == len(r.info_close) == tcpinfo.TCP_INFO_SIZE
            for r, _ in batch
        )  # fmt: skip
        assert bool(calls) == (not full), shape
        assert full or shape != "full"
        calls.clear()


def test_int_bounds_decide_values_on_a_bound_as_the_float_division() -> None:
    for bounds, scale in ((RTT_BUCKETS, 1e6), (QUEUE_BUCKETS, 1e3)):
        ints = stats_batch.int_bounds(bounds, scale)
        for bound in bounds:
            centre = round(bound * scale)
            for value in range(max(0, centre - 3), centre + 4):
                assert bisect_left(ints, value) == bisect_left(bounds, value / scale)


def test_offsets_are_the_kernel_layout() -> None:
    """The hand-written offsets of stats_batch read the fields decode_tcp_info names."""
    rng = random.Random(7)
    raw = synthetic_info(rng)
    decoded = tcpinfo.decode_tcp_info(raw)
    for name, offset, code in (
        ("rtt", stats_batch._RTT, "I"), ("last_ack_recv", stats_batch._LAST_ACK_RECV, "I"),
        ("total_retrans", stats_batch._TOTAL_RETRANS, "I"),
        ("bytes_acked", stats_batch._BYTES_ACKED, "Q"),
        ("bytes_received", stats_batch._BYTES_RECEIVED, "Q"),
        ("bytes_sent", stats_batch._BYTES_SENT, "Q"),
        ("bytes_retrans", stats_batch._BYTES_RETRANS, "Q"),
    ):  # fmt: skip
        assert struct.unpack_from("=" + code, raw, offset)[0] == decoded[name], name
        assert offset + struct.calcsize(code) <= stats_batch._NEEDS
