"""Counters and histograms for /metrics and the status page, kept as plain Python numbers.

The hot path only adds to lists (a request costs one index and one bisect); the Prometheus
objects are built from these numbers when /metrics is scraped (metrics.py). One Stats per
worker process; the scoreboard sums them for the server (flat, add_flat).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from prometheus_client.utils import floatToGoString

from . import savedsyn, stats_batch, synprint
from .tls import FAILURE_REASONS

RTT_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
QUEUE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RETRANS_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
RATE_WINDOW = 60  # seconds of connections-per-second history on the status page


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            # le="0.0", not "0": the label string prometheus_client's own histograms write
            out.append((floatToGoString(bound), total))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "bounds": list(self.bounds),
            "counts": self.counts,
            "sum": self.sum,
            "count": self.count,
        }


HISTOGRAMS = ("handshake_rtt", "accept_queue", "request_duration", "retransmits")
_BOUNDS = (RTT_BUCKETS, QUEUE_BUCKETS, DURATION_BUCKETS, RETRANS_BUCKETS)
OS_FAMILIES = synprint.FAMILIES  # a fixed set: a fixed number of columns in the flat row
SYN_REASONS = savedsyn.SYN_REASONS  # the same: why a connection's record has no SYN
# accepted, open, closed_by × 3, requests by class × 6, bytes in and out, connections by OS,
# connections without a SYN by reason
# lifecycle_capture: segments captured, and dropped by why (kernel: the capture socket's
# receive buffer overflowed; pending_full, wire_full: capture_match's bounds)
CAPTURE_COUNTS = ("captured", "kernel", "pending_full", "wire_full")
_COUNTERS = 13 + len(OS_FAMILIES) + len(SYN_REASONS) + len(CAPTURE_COUNTS)
# one worker's numbers as a flat row of floats (exact up to 2**53), the scoreboard's layout
# `listen ... ssl`: handshake durations, failures by reason; at the end of the flat row
TLS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TLS_FAILURES = FAILURE_REASONS
_TLS_SIZE = len(TLS_FAILURES) + len(TLS_BUCKETS) + 3
FLAT_SIZE = _COUNTERS + sum(len(b) + 3 for b in _BOUNDS) + 2 * RATE_WINDOW + _TLS_SIZE


class Stats:
    def __init__(self) -> None:
        self.accepted = 0
        self.closed_by = {"client": 0, "server": 0, "reset": 0}
        self.requests = [0] * 6  # by status class: index 1..5
        self.bytes_in = 0
        self.bytes_out = 0
        self.by_os = dict.fromkeys(OS_FAMILIES, 0)  # connections closed, by OS family guessed
        self.without_syn = dict.fromkeys(SYN_REASONS, 0)  # closed records without a SYN
        self.capture = dict.fromkeys(CAPTURE_COUNTS, 0)  # (capture.py sets them)
        self.handshake_rtt = Histogram(RTT_BUCKETS)
        self.accept_queue = Histogram(QUEUE_BUCKETS)
        self.request_duration = Histogram(DURATION_BUCKETS)
        self.retransmits = Histogram(RETRANS_BUCKETS)
        self.open_now = 0
        self.rate_second = [0] * RATE_WINDOW  # which second each slot counts
        self.rate_count = [0] * RATE_WINDOW
        self.tls_handshake = Histogram(TLS_BUCKETS)
        self.tls_failures = dict.fromkeys(TLS_FAILURES, 0)

    def tls_handshake_done(self, seconds: float) -> None:
        self.tls_handshake.observe(seconds)

    def tls_handshake_failed(self, reason: str) -> None:
        self.tls_failures[reason] += 1

    def requests_done(self, exchanges: Any) -> None:
        """Count a batch of finished exchanges (Worker.fold): one loop, locals only."""
        by_class = self.requests
        duration = self.request_duration
        bounds, counts = duration.bounds, duration.counts
        total = 0.0
        for ex in exchanges:
            status = ex.status
            by_class[status // 100 if 100 <= status < 600 else 5] += 1
            seconds = ex.t_done - ex.start
            counts[bisect_left(bounds, seconds)] += 1
            total += seconds
        duration.sum += total
        duration.count += len(exchanges)

    def connection_opened(self, now: float) -> None:
        self.accepted += 1
        self.open_now += 1
        second = int(now)
        slot = second % RATE_WINDOW
        if self.rate_second[slot] != second:
            self.rate_second[slot], self.rate_count[slot] = second, 0
        self.rate_count[slot] += 1

    def connection_closed(self, closed_by: str) -> None:
        """Count the close of a connection without a lifecycle record."""
        self.open_now -= 1
        self.closed_by[closed_by if closed_by in self.closed_by else "reset"] += 1

    def records_closed(self, batch: Any) -> None:
        """Count a batch of closed connections' records (Worker.fold), with their kernel
        numbers: the whole batch at once (stats_batch.count)."""
        records = [record for record, _ in batch]
        unknown = self.by_os["unknown"]
        stats_batch.count(self, records)
        if self.by_os["unknown"] != unknown:  # a record without a (decodable) SYN: rare
            without = self.without_syn
            for record in records:
                reason = record.syn_reason()
                if reason is not None:
                    without[reason] += 1

    # --- across processes: the scoreboard holds each worker's numbers as one flat row -----

    def flat(self) -> list[float]:
        out = [self.accepted, self.open_now, *self.closed_by.values(), *self.requests]
        out += (self.bytes_in, self.bytes_out)
        out += self.by_os.values()
        out += self.without_syn.values()
        out += self.capture.values()
        for name in HISTOGRAMS:
            hist = getattr(self, name)
            out += hist.counts
            out += (hist.sum, hist.count)
        out += self.rate_second
        out += self.rate_count
        out += self.tls_failures.values()
        out += self.tls_handshake.counts
        out += (self.tls_handshake.sum, self.tls_handshake.count)
        return out

    def add_flat(self, row: Any, gauges: bool = True) -> None:
        """Add one worker's row (see flat) to these numbers: counters and histograms sum,
        connections-per-second merge by second; the open-connections gauge only if asked
        (a worker that has exited has none open)."""
        self.accepted += int(row[0])
        if gauges:
            self.open_now += int(row[1])
        for i, key in enumerate(self.closed_by):
            self.closed_by[key] += int(row[2 + i])
        for i in range(6):
            self.requests[i] += int(row[5 + i])
        self.bytes_in += int(row[11])
        self.bytes_out += int(row[12])
        for i, key in enumerate(self.by_os):
            self.by_os[key] += int(row[13 + i])
        for i, key in enumerate(self.without_syn):
            self.without_syn[key] += int(row[13 + len(OS_FAMILIES) + i])
        for i, key in enumerate(self.capture):
            self.capture[key] += int(row[13 + len(OS_FAMILIES) + len(SYN_REASONS) + i])
        pos = _COUNTERS
        for name in HISTOGRAMS:
            hist = getattr(self, name)
            n = len(hist.counts)
            for i in range(n):
                hist.counts[i] += int(row[pos + i])
            hist.sum += row[pos + n]
            hist.count += int(row[pos + n + 1])
            pos += n + 2
        seconds, counts = self.rate_second, self.rate_count
        for i in range(RATE_WINDOW):
            second, count = int(row[pos + i]), int(row[pos + RATE_WINDOW + i])
            if not count:
                continue
            slot = second % RATE_WINDOW
            if seconds[slot] == second:
                counts[slot] += count
            elif seconds[slot] < second:
                seconds[slot], counts[slot] = second, count
        pos = FLAT_SIZE - _TLS_SIZE
        for i, key in enumerate(self.tls_failures):
            self.tls_failures[key] += int(row[pos + i])
        pos += len(TLS_FAILURES)
        tls = self.tls_handshake
        for i in range(len(tls.counts)):
            tls.counts[i] += int(row[pos + i])
        tls.sum += row[pos + len(tls.counts)]
        tls.count += int(row[pos + len(tls.counts) + 1])

    def connections_per_second(self) -> list[tuple[int, int]]:
        now = int(time.time())
        by_second = dict(zip(self.rate_second, self.rate_count, strict=True))
        return [(s, by_second.get(s, 0)) for s in range(now - RATE_WINDOW + 1, now + 1)]

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "open": self.open_now,
            "closed_by": self.closed_by,
            "requests_by_class": {f"{i}xx": self.requests[i] for i in range(1, 6)},
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "connections_by_os": self.by_os,
            "connections_without_syn": self.without_syn,
            "capture_segments": self.capture,
            "handshake_rtt_seconds": self.handshake_rtt.to_json(),
            "accept_queue_seconds": self.accept_queue.to_json(),
            "request_duration_seconds": self.request_duration.to_json(),
            "retransmits_per_connection": self.retransmits.to_json(),
            "connections_per_second": self.connections_per_second(),
            "tls_handshake_seconds": self.tls_handshake.to_json(),
            "tls_handshake_failures": self.tls_failures,
        }
