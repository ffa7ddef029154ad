"""Matching captured segments to connections: the 4-tuple table, the pending segments, the
TIME_WAIT expiry, and what one connection's handshake and close looked like on the wire.

A segment (capture.decode) names its connection by its 4-tuple key, in the client → server
orientation whichever way it travelled. `WireTable` holds one `Wire` per key:

    own       the worker's own connections (attached at accept), open or closed; a closed
              one whose close is not complete yet stays for TIME_WAIT (60 s) so that its
              last ACK, which can leave after the socket is gone, still finds it (bounded:
              MAX_CLOSED, oldest out first); a complete one goes when its record retires
    pending   keys no record claims yet: the SYN, SYN-ACK and ACK arrive before accept, and
              with several workers every worker sees every other worker's segments. Kept
              60 s, at most MAX_PENDING wires (the oldest go first) of at most MAX_SEGMENTS
              segments each: a SYN or RST flood evicts, and counts, what it pushes out.

Which pure ACKs are kept: the filter passes every zero-payload ACK (cBPF cannot tell the one
that completes a handshake or a close from the ACK of data); here only the client's ACK of
y + 1 after the SYN-ACK and each side's ACK of the other's FIN are kept, the rest ignored.

This module decodes nothing and touches no socket; it never raises on odd segments (a
flood is a stream of odd segments): they are kept, ignored or counted.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
TIME_WAIT = 60.0  # seconds a closed connection's key still collects segments (Linux: 60 s)
MAX_PENDING = 4096  # wires not (yet) claimed by a record
MAX_CLOSED = 8192  # closed connections still collecting their last segments
MAX_SEGMENTS = 16  # per wire: SYN and SYN-ACK retransmissions, RSTs, the close
SETTLE = 1.0  # seconds a closed record's log line waits for the rest of its close
_U32 = 0xFFFFFFFF
_SIDES = ("client", "server")
# a segment: (time, from_server, flags, seq, ack, payload length, role)
Segment = tuple[float, bool, int, int, int, int, str]


class Wire:
    """One connection's handshake and close as captured (numbers as on the wire)."""

    __slots__ = (
        "segments", "x", "y", "syn_count", "synack_count", "handshake_acked", "fin_seq",
        "fin_acked", "rst", "lost", "first_seen", "key",
    )  # fmt: skip

    def __init__(self, now: float) -> None:
        self.segments: list[Segment] = []
        self.x: int | None = None  # the client's ISN (its SYN's seq)
        self.y: int | None = None  # the server's ISN (its SYN-ACK's seq)
        self.syn_count = 0
        self.synack_count = 0
        self.handshake_acked = False
        self.fin_seq: list[int | None] = [None, None]  # each side's FIN's own sequence number
        self.fin_acked = [False, False]  # each side's FIN acknowledged by the other
        self.rst: list[bool] = [False, False]
        self.lost = False  # the kernel dropped captured segments while this one was live
        self.first_seen = now
        self.key = b""  # its 4-tuple, once a record claims it

    def add(self, t: float, srv: bool, flags: int, seq: int, ack: int, length: int) -> int:
        """Take one segment; 1 kept, 0 ignored (an ACK of data), -1 a SYN of a new
        connection on the same 4-tuple (the caller starts a new wire), -2 no room."""
        if flags & SYN:
            if not srv and not flags & ACK:
                if self.x is not None and seq != self.x:
                    return -1
                self.x = seq
                self.syn_count += 1
                role = "syn"
            elif srv and flags & ACK:
                if self.y is not None and seq != self.y:
                    return 0  # not this handshake's
                self.y = seq
                self.synack_count += 1
                role = "syn-ack"
            else:
                return 0  # a simultaneous open: not a server's handshake
        elif flags & RST:
            self.rst[srv] = True
            role = "rst"
        elif flags & FIN:
            self.fin_seq[srv] = (seq + length) & _U32
            role = "fin"
            self._acks(srv, flags, ack)
        elif (
            not srv
            and not self.handshake_acked
            and self.y is not None
            and ack == (self.y + 1) & _U32
        ):
            self.handshake_acked = True
            role = "ack"
        elif self._acks(srv, flags, ack):
            role = "close-ack"
        else:
            return 0
        if len(self.segments) >= MAX_SEGMENTS:
            return -2
        self.segments.append((t, srv, flags, seq, ack, length, role))
        return 1

    def _acks(self, srv: bool, flags: int, ack: int) -> bool:
        """Does this segment acknowledge the other side's FIN (first time)?"""
        other = not srv
        fin = self.fin_seq[other]
        if fin is None or self.fin_acked[other] or not flags & ACK or ack != (fin + 1) & _U32:
            return False
        self.fin_acked[other] = True
        return True

    def missing(self) -> list[str]:
        out = [name for name, seen in (
            ("syn", self.x is not None), ("syn-ack", self.y is not None),
            ("ack", self.handshake_acked),
        ) if not seen]  # fmt: skip
        if not any(self.rst):
            for side in (0, 1):
                if self.fin_seq[side] is None:
                    out.append(f"{_SIDES[side]} fin")
                elif not self.fin_acked[side]:
                    out.append(f"ack of the {_SIDES[side]}'s fin")
        return out

    def complete(self) -> bool:
        """not self.lost and not self.missing(), without building the list"""
        if self.lost or self.x is None or self.y is None or not self.handshake_acked:
            return False
        rst, acked = self.rst, self.fin_acked
        return rst[0] or rst[1] or (acked[0] and acked[1])

    def first_fin(self) -> str | None:
        for seg in self.segments:
            if seg[6] == "fin":
                return _SIDES[seg[1]]
        return None

    def time_wait(self) -> str | None:
        """The side that sent the first FIN and then ACKed the other's FIN ends in TIME_WAIT."""
        first = self.first_fin()
        if first is None or any(self.rst):
            return None
        side = first == "server"
        return first if self.fin_acked[not side] else None

    def to_json(self, t0: float) -> dict[str, Any]:
        segments = []
        for t, srv, flags, seq, ack, length, role in self.segments:
            segments.append({
                "from": _SIDES[srv], "role": role, "flags": flags_text(flags), "seq": seq,
                "ack": ack if flags & ACK else None, "len": length, "t": t,
                "t_ms": round((t - t0) * 1000, 3),
            })  # fmt: skip
        return {
            "complete": self.complete(),
            "missing": self.missing(),
            "capture_dropped": self.lost,
            "client_isn": self.x,
            "server_isn": self.y,
            "syn_retransmits": max(0, self.syn_count - 1),
            "syn_ack_retransmits": max(0, self.synack_count - 1),
            "first_fin": self.first_fin(),
            "time_wait": self.time_wait(),
            "rst_from": [_SIDES[s] for s in (0, 1) if self.rst[s]],
            "segments": segments,
        }


def flags_text(flags: int) -> str:
    """tcpdump's notation: S SYN, F FIN, R RST, P PSH, . ACK."""
    out = "".join(c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (0x08, "P")) if flags & bit)
    return out + ("." if flags & ACK else "")


class WireTable:
    """The 4-tuple table of one worker (see the module docstring)."""

    def __init__(self, max_pending: int = MAX_PENDING, max_closed: int = MAX_CLOSED) -> None:
        self.own: dict[bytes, Wire] = {}
        self.pending: dict[bytes, Wire] = {}  # insertion order = age
        self.closing: deque[tuple[float, bytes, Wire]] = deque()
        self.held: list[tuple[float, Any]] = []  # (release at, (record, log)) see settle
        self.max_pending = max_pending
        self.max_closed = max_closed
        self.segments = 0  # kept
        self.settled_segments = -1  # `segments` when `held` was last looked at
        self.dropped = {"pending_full": 0, "wire_full": 0}

    def add(self, key: bytes, t: float, srv: bool, flags: int, seq: int, ack: int, n: int) -> None:
        wire = self.own.get(key)
        if wire is not None:
            kept = wire.add(t, srv, flags, seq, ack, n)
            if kept > 0:
                self.segments += 1
                return
            if kept == -2:
                self.dropped["wire_full"] += 1
            if kept != -1:
                return
            del self.own[key]  # the port was reused: a new connection, not ours yet
        pending = self.pending
        wire = pending.get(key)
        if wire is None:
            if not flags & (SYN | FIN | RST):
                return  # a lone ACK: nothing it could complete
            wire = Wire(t)
            if len(pending) >= self.max_pending:
                self._evict()
            pending[key] = wire
        kept = wire.add(t, srv, flags, seq, ack, n)
        if kept == -1:  # an older SYN from the same port: start again
            wire = pending[key] = Wire(t)
            kept = wire.add(t, srv, flags, seq, ack, n)
        if kept > 0:
            self.segments += 1
        elif kept == -2:
            self.dropped["wire_full"] += 1

    def _evict(self) -> None:
        key = next(iter(self.pending))
        self.dropped["pending_full"] += len(self.pending.pop(key).segments) or 1

    def attach(self, key: bytes, isn: int | None) -> Wire:
        """The wire of a connection just accepted (the record's SYN says its ISN)."""
        wire = self.pending.pop(key, None)
        if wire is None or (isn is not None and wire.x is not None and wire.x != isn):
            wire = Wire(time.time())
        wire.key = key
        self.own[key] = wire
        return wire

    def settle(self, batch: list[Any], now: float) -> list[Any]:
        """Closed records (record, log) to retire now: those whose close is complete on the
        wire, or has waited SETTLE seconds; the others wait (their lifecycle log line then
        carries the whole close). Their keys start their TIME_WAIT."""
        out = []
        held = self.held
        # (looked at again only when segments came in since, or the oldest is due)
        if held and (self.segments != self.settled_segments or held[0][0] <= now):
            self.settled_segments = self.segments
            keep = []
            for until, item in held:
                wire = item[0].wire
                if wire.complete():
                    out.append(item)
                    self._done(wire)
                elif until <= now:
                    out.append(item)
                else:
                    keep.append((until, item))
            self.held = held = keep
        for item in batch:
            wire = getattr(item[0], "wire", None)
            if wire is None:
                out.append(item)
            elif wire.complete():
                out.append(item)
                self._done(wire)
            else:
                self.closing.append((now + TIME_WAIT, wire.key, wire))
                held.append((now + SETTLE, item))
        return out

    def _done(self, wire: Wire) -> None:
        """A complete close: nothing more is expected on its key, which is freed now (a
        closed wire kept for TIME_WAIT is what the garbage collector walks: measured,
        8192 of them cost ~4 µs per connection in collections)."""
        if self.own.get(wire.key) is wire:
            del self.own[wire.key]

    def release(self) -> list[Any]:
        """Every record still waiting (the worker is stopping)."""
        out = [item for _, item in self.held]
        self.held = []
        return out

    def expire(self, now: float) -> None:
        """Past TIME_WAIT: closed connections' keys and pending wires go."""
        closing, own = self.closing, self.own
        while closing and (closing[0][0] <= now or len(closing) > self.max_closed):
            _, key, wire = closing.popleft()
            if own.get(key) is wire:
                del own[key]
        pending = self.pending
        limit = now - TIME_WAIT
        while pending:
            key = next(iter(pending))
            if pending[key].first_seen > limit:
                break
            del pending[key]

    def mark_lost(self) -> int:
        """The kernel dropped segments: every wire still collecting may miss some."""
        marked = 0
        for wire in (*self.own.values(), *self.pending.values()):
            if not wire.complete():
                wire.lost = True
                marked += 1
        return marked
