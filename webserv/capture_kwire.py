"""One worker's side of the kernel-matched capture (capture_kernel.py): each connection's
wire is its key in the generation's map, read once after the connection closed.

At accept, a record gets a `KernelWire`: its key (from the saved SYN, with the client's ISN;
else from the socket's addresses) and nothing else — no system call. With one worker the
program hands each entry whose close is complete over through a ring buffer (read from
shared memory at each fold, no system call) and deletes it from the map; a closed record
takes its entry from there, at once or at a later fold (a client's close completes on the
wire after the server's socket is closed). With several workers, or where there is no ring,
Worker.fold's closed record reads its entry (one bpf() look-up; by then the close is
usually complete: the lingering close has seen the client's FIN) and a fold's entries are
deleted in one call. A record whose close is not complete is looked up again every
SLOW_LOOK, by later folds, until it is or it has waited SETTLE. It then retires with the
entry's bytes kept and decoded only when asked for (status page, lifecycle log). An open
connection's wire is looked up when something reads it (the status page). No timer of its
own: measured, a timer that woke the loop a few ms after each close to read its entry cost
more system time per connection (+6 µs) than the look-up it spaced out.

A wire is the same `capture_match.Wire` the user-space capture builds, so the JSON, the
page and the log do not know which capture made it. Owns the worker's held records and its
counts; never opens a socket or a map (the cycle's Tap did) and never raises into the loop.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from typing import Any

from .capture_ebpf import MapReader, RingReader
from .capture_kernel import (
    KEY_SIZE,
    OFF_KEY,
    OFF_NSEG,
    OFF_X,
    RING_SIZE,
    ROLES,
    SLOT,
    SLOTS,
    VALUE_SIZE,
)
from .capture_keys import record_key
from .capture_match import MAX_SEGMENTS, SETTLE, Wire
from .logs import error_log

SLOW_LOOK = 0.05  # seconds between two looks at an entry whose close is not complete
TICK = 0.5  # seconds between two updates of the /metrics counts
AGE_OUT = 2 * SETTLE  # seconds a handed-over entry waits for its record, at least
_HEADER = struct.Struct("<IIII11B")
_SLOT = struct.Struct("<QIIHBBB")
_NSEG = struct.Struct("<I")
_X = struct.Struct("<I")
# a ring record: its header, the entry up to its key (what decode reads), the key
_RING_ENTRY = struct.Struct(f"<I4x{OFF_KEY}s{KEY_SIZE}s{VALUE_SIZE - OFF_KEY - KEY_SIZE}x")


def complete(raw: bytes) -> bool:
    """capture_match.Wire.complete on an entry's bytes: SYN, SYN-ACK and the ACK of the
    server's ISN seen, and a reset or both FINs acknowledged."""
    return raw[16] and raw[17] and raw[18] and (raw[23] or raw[24] or (raw[21] and raw[22]))


def decode(raw: bytes | None, lost: bool, now_real: float, now_mono: float) -> Wire:
    """The Wire of an entry (None: nothing captured); times from CLOCK_MONOTONIC to epoch."""
    wire = Wire(now_real)
    wire.lost = lost
    if raw is None:
        return wire
    x, y, fin0, fin1, x_set, y_set, acked, fset0, fset1, facked0, facked1, rst0, rst1, syns, \
        synacks = _HEADER.unpack_from(raw)  # fmt: skip
    wire.x = x if x_set else None
    wire.y = y if y_set else None
    wire.syn_count, wire.synack_count = syns, synacks
    wire.handshake_acked = bool(acked)
    wire.fin_seq = [fin0 if fset0 else None, fin1 if fset1 else None]
    wire.fin_acked = [bool(facked0), bool(facked1)]
    wire.rst = [bool(rst0), bool(rst1)]
    offset = now_real - now_mono
    segments = []
    for i in range(min(MAX_SEGMENTS, _NSEG.unpack_from(raw, OFF_NSEG)[0])):
        ns, seq, ack, length, flags, srv, role = _SLOT.unpack_from(raw, SLOTS + i * SLOT)
        if ns:  # (0: a slot taken and not yet written)
            segments.append((ns * 1e-9 + offset, bool(srv), flags, seq, ack, length, ROLES[role]))
    segments.sort()
    wire.segments = segments
    return wire


class KernelWire:
    """A record's wire in the kernel map (the Wire interface the lifecycle reads)."""

    __slots__ = ("key", "isn", "source", "raw", "final", "lost", "_wire")

    def __init__(self, key: bytes, isn: int | None, source: KernelCapture) -> None:
        self.key = key
        self.isn = isn
        self.source = source
        self.raw: bytes | None = None
        self.final = False  # retired: `raw` is all there will be
        self.lost = False
        self._wire: Wire | None = None

    def mine(self, raw: bytes) -> bool:
        """Not a newer connection's entry on the same 4-tuple (its SYN says another ISN)."""
        return self.isn is None or not raw[16] or _X.unpack_from(raw, OFF_X)[0] == self.isn

    def look(self) -> bytes | None:
        """The entry now: handed over by the ring, or in the map (None: none, or another
        connection's)."""
        source = self.source
        raw = source.ready.get(self.key) or source.stale.get(self.key)
        if raw is None:
            raw = self.source.reader.lookup(self.key)
        return raw if raw is not None and self.mine(raw) else None

    def current(self) -> Wire:
        if self.final:
            if self._wire is None:
                self._wire = decode(self.raw, self.lost, time.time(), time.monotonic())
            return self._wire
        try:
            raw = self.look()
        except OSError:
            raw = None
        return decode(raw, self.lost, time.time(), time.monotonic())

    def complete(self) -> bool:
        return self.current().complete()

    def missing(self) -> list[str]:
        return self.current().missing()

    def time_wait(self) -> str | None:
        return self.current().time_wait()

    def to_json(self, t0: float) -> dict[str, Any]:
        return self.current().to_json(t0)


class KernelCapture:
    """One worker's reading of the cycle's Tap (the interface of capture.Capture)."""

    def __init__(self, loop: Any, tap: Any, stats: Any, slot: int, reports: bool) -> None:
        self.loop = loop
        self.tap = tap
        self.ports = frozenset(tap.ports)
        self.reader = MapReader(tap.wires, KEY_SIZE, VALUE_SIZE)
        self.ring = None if tap.ring_fd is None else RingReader(tap.ring_fd, RING_SIZE)
        # complete entries the ring handed over, by key, until their record closes (a
        # server's close completes on the wire before its lingering close returns); those
        # no record claims (a refused connection, a server without the lifecycle on a
        # captured port) go after one to two AGE_OUT periods (`stale`, then dropped)
        self.ready: dict[bytes, bytes] = {}
        self.stale: dict[bytes, bytes] = {}
        self.aged_at = time.monotonic()
        self.stats = stats
        self.slot = slot  # the scoreboard slot: this worker's claim counter
        self.reports = reports  # the map's own counts go to /metrics from one worker only
        # closed records whose close was not complete when they were handed over:
        # (look it up at, give up at, item)
        self.held: deque[tuple[float, float, Any]] = deque()
        self.held_due = 0.0  # the earliest look-up among them
        self.segments = 0  # kept segments of the entries this worker read
        self.claimed = 0
        self.timer = loop.call_later(TICK, self.tick)
        self.on = True

    def attach(self, record: Any, conn: Any) -> None:
        found = record_key(record, conn)
        if found is None:
            return
        key, isn = found
        record.wire = KernelWire(key.ljust(KEY_SIZE, b"\0"), isn, self)

    def settle(self, batch: list[Any]) -> list[Any]:
        """Worker.fold's closed records: those to retire now (see the module docstring)."""
        out: list[Any] = []
        done: list[bytes] = []
        now = time.monotonic()
        ring = self.ring is not None
        handed = self._drain(now) if ring else 0
        ready, stale, held = self.ready, self.stale, self.held
        for item in batch:
            wire = getattr(item[0], "wire", None)
            if wire.__class__ is not KernelWire:
                out.append(item)
                continue
            if ring:
                raw = ready.pop(wire.key, None) or stale.pop(wire.key, None)
                if raw is not None and wire.mine(raw):
                    self._final(wire, raw)
                    out.append(item)
                    continue
            if not ring and self._finish(wire, now + SETTLE, now, done):
                out.append(item)
            else:
                if not held:
                    self.held_due = now + SLOW_LOOK
                held.append((now + SLOW_LOOK, now + SETTLE, item))
        if held and (handed or self.held_due <= now):
            self._recheck(now, out, done)
        if done:
            try:
                self.reader.delete(done)
            except OSError as exc:
                error_log.error(f"lifecycle_capture: deleting map entries failed ({exc})")
            self.claimed += len(done)
            self.tap.claim(self.slot, len(done))
        if self.stats is not None:
            self.count()
        return out

    def _drain(self, now: float) -> int:
        """The ring's complete entries into `ready`; how many."""
        entries = self.ring.read(_RING_ENTRY)
        ready = self.ready
        for _, raw, key in entries:
            ready[key] = raw
        if now - self.aged_at > AGE_OUT:
            self.aged_at = now
            self.stale, self.ready = ready, {}
        return len(entries)

    def _recheck(self, now: float, out: list[Any], done: list[bytes]) -> None:
        """The held records: handed over by the ring since, or due for a look-up."""
        keep: deque[tuple[float, float, Any]] = deque()
        ready, stale, due = self.ready, self.stale, now + SLOW_LOOK
        for entry in self.held:
            look_at, until, item = entry
            wire = item[0].wire
            raw = ready.pop(wire.key, None) or stale.pop(wire.key, None)
            if raw is not None and wire.mine(raw):
                self._final(wire, raw)
                out.append(item)
            elif look_at > now:
                keep.append(entry)
                due = min(due, look_at)
            elif self._finish(wire, until, now, done):
                out.append(item)
            else:
                keep.append((now + SLOW_LOOK, until, item))
        self.held = keep
        self.held_due = due

    def _final(self, wire: KernelWire, raw: bytes) -> None:
        wire.raw, wire.final = raw, True
        self.segments += min(MAX_SEGMENTS, _NSEG.unpack_from(raw, OFF_NSEG)[0])

    def _finish(self, wire: KernelWire, until: float, now: float, done: list[bytes]) -> bool:
        """Look the entry up; True (and the wire final) if the close is complete on the
        wire or has waited long enough."""
        try:
            raw = self.reader.lookup(wire.key)
        except OSError:
            raw = None
        if raw is not None and not wire.mine(raw):
            raw = None
        if raw is None:
            if until > now:
                return False
            wire.lost = self.tap.pushed_out() > 0  # (the map was full: it may have been ours)
        elif not complete(raw) and until > now:
            return False
        else:
            done.append(wire.key)
            self.segments += min(MAX_SEGMENTS, _NSEG.unpack_from(raw, OFF_NSEG)[0])
            if not raw[16]:
                wire.lost = self.tap.pushed_out() > 0
        wire.raw, wire.final = raw, True
        return True

    def tick(self) -> None:
        if self.ring is not None:
            self._drain(time.monotonic())  # (and ages out what no record claimed)
        self.count()
        if self.on:
            self.timer = self.loop.call_later(TICK, self.tick)

    def count(self) -> None:
        """/metrics' counts (the map's own from one worker: the sum is over workers)."""
        stats = self.stats
        if stats is not None:
            counts = stats.capture
            counts["captured"] = self.segments
            if self.reports:
                counts["pending_full"] = self.tap.pushed_out()
                counts["wire_full"] = self.tap.wire_full()

    def state_json(self) -> dict[str, Any]:
        tap = self.tap
        created = tap.created()
        return {
            "on": self.on,
            "mode": "kernel",
            "ports": sorted(self.ports),
            "own": None,
            "pending": min(tap.capacity, max(0, created - tap.claimed() - tap.handed_over())),
            "pending_max": tap.capacity,
            "created": created,  # entries the program made since the map was (all workers)
            "handed_over": tap.handed_over() if self.ring is not None else None,
            "held": len(self.held),
            "captured": self.segments,
            "read": self.claimed,
            "ring": False,
            "dropped": {
                "kernel": 0,
                "pending_full": tap.pushed_out(),
                "wire_full": tap.wire_full(),
            },
        }

    def stop(self) -> None:
        self.on = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> list[Any]:
        """Stop; the records still waiting, their wires as they are now, to retire."""
        if self.ring is not None:
            self._drain(time.monotonic())
        out = []
        for _, _, item in self.held:
            wire = item[0].wire
            try:
                wire.raw = wire.look()
            except OSError:
                wire.raw = None
            wire.final = True
            out.append(item)
        self.held.clear()
        self.stop()
        return out
