"""`lifecycle_capture on;`: the handshake and close segments of the listening ports, as the
wire carried them — an AF_PACKET socket, the classic BPF program the kernel runs on every
packet before queueing it, reading that socket in the event loop (its TPACKET_V3 ring,
capture_ring.py; without one, recvmsg with kernel receive timestamps, SO_TIMESTAMPNS), and
decoding IP + TCP headers into segments for the 4-tuple table (capture_match.py; a
connection's key in it: capture_keys.py).

The filter passes only TCP segments to or from a listening port with SYN, FIN or RST set,
and zero-payload ACKs: which pure ACK completes a handshake or a close depends on sequence
numbers cBPF cannot remember, so every pure ACK passes and capture_match keeps the right
ones. Data segments never leave the kernel (a FIN that carries data passes, as a FIN). Each
segment is cut to its headers (the IP header and 20 bytes of TCP; capture_bpf.py). On
loopback every segment passes the tap twice, going out and coming in: the outgoing copy is
dropped (in the filter, or by PACKET_IGNORE_OUTGOING on `lo` alone, and again by the
recvmsg reader from sll_pkttype), as libpcap does, so times are the receive times tcpdump
shows.

Several workers: each worker opens its own socket and so sees every segment; it keeps the
segments of its own connections (the 4-tuple of a record it made) and, pending, those no
record claims yet — the SYN before accept, and the other workers' connections, which expire
or are pushed out of the bounded pending table. Nothing is shared between processes.

Owns one worker's capture socket, its timer and its WireTable. Never blocks the loop
(non-blocking reads, BATCH at a time), never raises into it: no AF_PACKET, no CAP_NET_RAW
or a failed read leave one line in the error log and the server serving without capture.
Never reads a payload byte and never decides anything about a connection.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from typing import Any

from . import capture_ring
from .capture_bpf import (  # noqa: F401 (the names tests and readers use as capture.*)
    ARPHRD_LOOPBACK,
    PACKET_OUTGOING,
    RET,
    SNAP,
    attach_filter,
    bind_loopback,
    bpf_program,
    drain,
)
from .capture_keys import record_key
from .capture_match import WireTable
from .capture_ring import _TCP, decode
from .logs import error_log

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
# asm-generic values (x86, arm, riscv...); alpha, mips, parisc and sparc number them otherwise
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
_GENERIC = sys.platform.startswith("linux") and not any(
    arch in os.uname().machine for arch in ("mips", "sparc", "parisc", "alpha")
)
BATCH = 256  # segments read per wake-up; the rest wait for the next turn of the loop
# after a read, the socket is left alone this long (its buffer holds what comes meanwhile):
# one wake-up then reads the segments of many connections, not one or two (measured: waking
# for each burst cost more than decoding it)
PAUSE = 0.005
RCVBUF = 4 << 20  # the socket's receive buffer (root may force it past rmem_max)
SETTLE_AFTER = 0.02  # with a ring: no fold this long and records held → fold (SETTLE_SLICE)
SETTLE_SLICE = 64
TICK = 0.5  # seconds between two looks at the kernel's drop counter and the expiries
_ANC = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 64
_TIMESPEC = struct.Struct("qq")


def open_socket(ports: list[int], loopback: bool = False) -> socket.socket:
    """The capture socket, filter attached, timestamps on, non-blocking; OSError if the
    system or the process's privileges do not allow it. `loopback`: every listener of
    `ports` has a loopback address, so only `lo` is tapped, and only as packets come in
    (PACKET_IGNORE_OUTGOING: the kernel then neither clones nor filters the outgoing copy
    of each packet, data included, for this socket)."""
    if not _GENERIC or not hasattr(socket, "AF_PACKET"):
        raise OSError(0, "AF_PACKET sockets are Linux's")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    try:
        _configure(sock, ports, loopback)
    except BaseException:
        sock.close()
        raise
    return sock


def open_capture(
    ports: list[int], loopback: bool = False
) -> tuple[socket.socket, capture_ring.Ring | None, OSError | None]:
    """As open_socket, with a TPACKET_V3 ring when the kernel gives one (else None and why).
    The ring comes first: setting it up empties the socket's queue, and from then on what
    the kernel passes goes to the ring (what came before the filter is skipped by the
    reader: parse_block keeps TCP of `ports` only)."""
    if not _GENERIC or not hasattr(socket, "AF_PACKET"):
        raise OSError(0, "AF_PACKET sockets are Linux's")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    ring: capture_ring.Ring | None = None
    why: OSError | None = None
    try:
        try:
            ring = capture_ring.Ring(capture_ring.setup(sock))
        except OSError as exc:
            why = exc
        _configure(sock, ports, loopback)
    except BaseException:
        if ring is not None:
            ring.close()
        sock.close()
        raise
    return sock, ring, why


def _configure(sock: socket.socket, ports: list[int], loopback: bool) -> None:
    """The filter, the interface, timestamps, the buffer, non-blocking, an empty queue."""
    attach_filter(sock, bpf_program(ports))
    if loopback:
        bind_loopback(sock)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.setblocking(False)
    drain(sock)
    drops(sock)  # (and forget its counts)


def drops(sock: socket.socket) -> int:
    """Segments the kernel dropped (receive buffer full) since the last call
    (PACKET_STATISTICS: struct tpacket_stats {tp_packets, tp_drops}, reset by reading)."""
    try:
        return struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
    except OSError:
        return 0


def kernel_matching(config: Any) -> bool:
    """No captured server asks for `lifecycle_capture userspace;`."""
    return not any(s.lifecycle and s.lifecycle_capture == "userspace" for s in config.servers)


def capture_ports(config: Any) -> list[int]:
    """The ports of listeners with a server that has lifecycle and lifecycle_capture on."""
    return sorted({
        listener.address.port
        for listener in config.listeners
        for group in listener.groups.values()
        for server in group.servers
        if server.lifecycle and getattr(server, "lifecycle_capture", False)
    })  # fmt: skip


def loopback_only(config: Any, ports: list[int]) -> bool:
    """Every listener on one of `ports` is bound to a loopback address (127/8, ::1)."""
    hosts = [listener.address.host for listener in config.listeners
             if listener.address.port in ports]  # fmt: skip
    return bool(hosts) and all(h.startswith("127.") or h in ("::1", "localhost") for h in hosts)


# --- one worker's capture -----------------------------------------------------------------


class Capture:
    """The capture socket of one worker, read in its event loop, and its table."""

    def __init__(
        self, loop: Any, sock: socket.socket, ports: list[int], stats: Any,
        ring: capture_ring.Ring | None = None, on_settled: Any = None,
    ) -> None:  # fmt: skip
        self.loop = loop
        self.sock: socket.socket | None = sock
        self.ports = frozenset(ports)
        self.stats = stats
        self.table = WireTable()
        self.kernel_drops = 0
        self.marked_lost = 0
        self.timer: Any = None
        self.paused: Any = None  # the call that resumes reading (see PAUSE)
        self.ring = ring  # None: recvmsg, a segment at a time
        self.on_settled = on_settled  # Worker.fold: held records may be complete now
        self.settled_at = 0.0  # the last settle (Worker.fold)
        self.read_segments = 0  # segments read from the kernel (kept or not)
        loop.add_reader(sock.fileno(), self.wake if ring is None else self.wake_ring)
        self.timer = loop.call_later(TICK, self.tick)

    @classmethod
    def start(cls, worker: Any) -> Any:
        """Capture for `worker`: the cycle's kernel tap (capture_kwire.KernelCapture), else
        this class, else None (with one warn line from the first worker)."""
        ports = capture_ports(worker.config)
        if not ports:
            return None
        cycle = getattr(worker, "cycle", None)
        tap = getattr(cycle, "tap", None)
        if tap is not None and tap.sock is not None:
            from .capture_kwire import KernelCapture

            return KernelCapture(worker.loop, tap, worker.stats, worker.slot, worker.ordinal == 0)
        refused = getattr(cycle, "tap_why", None)
        try:
            sock, ring, why = open_capture(ports, loopback_only(worker.config, ports))
        except OSError as exc:
            if worker.ordinal == 0:
                why = exc.strerror or str(exc)
                need = " (needs CAP_NET_RAW)" if exc.errno in (1, 13) else ""
                error_log.warn(
                    f"lifecycle_capture: AF_PACKET socket failed ({exc.errno}: {why}){need}, "
                    "capture off"
                )
            return None
        if refused is not None and worker.ordinal == 0:
            error_log.warn(
                f"lifecycle_capture: no kernel matching ({refused.errno}: "
                f"{refused.strerror or refused}), matching in user space"
            )
        if why is not None and worker.ordinal == 0:
            error_log.warn(
                f"lifecycle_capture: no PACKET_RX_RING ({why.errno}: {why.strerror or why}), "
                "reading with recvmsg()"
            )
        return cls(worker.loop, sock, ports, worker.stats, ring, getattr(worker, "fold", None))

    def attach(self, record: Any, conn: Any) -> None:
        """A connection accepted: its record's wire (one dict lookup by 4-tuple)."""
        found = record_key(record, conn)
        if found is not None:
            record.wire = self.table.attach(*found)

    def wake(self) -> None:
        """The reader callback: read a batch, then pause reading for PAUSE seconds."""
        sock = self.sock
        if sock is None:
            return
        self.loop.remove_reader(sock.fileno())
        self.read()
        if self.sock is not None:
            self.paused = self.loop.call_later(PAUSE, self.resume)

    def wake_ring(self) -> None:
        """The reader callback with a ring: a block (or more) was handed over."""
        if self.read() and self.table.held and self.on_settled is not None:
            if time.monotonic() - self.settled_at > SETTLE_AFTER:
                self.on_settled(SETTLE_SLICE)  # no fold lately: retire what is complete now

    def resume(self) -> None:
        self.paused = None
        if self.sock is not None:
            self.loop.add_reader(self.sock.fileno(), self.wake)

    def read(self) -> int:
        """Up to BATCH segments (with a ring: every block handed over), decoded and
        matched; how many were read."""
        sock = self.sock
        if sock is None:
            return 0
        if self.ring is not None:
            n = self.ring.read(self.ports, self.table.add, self.ring.block_nr)
            self.read_segments += n
            return n
        return self.recv_batch()

    def recv_batch(self) -> int:
        """Up to BATCH segments with recvmsg (no ring; or, with one, those the socket
        queued before the ring was set up)."""
        sock = self.sock
        if sock is None:
            return 0
        recvmsg, add, ports = sock.recvmsg, self.table.add, self.ports
        unpack_tcp, unpack_time = _TCP.unpack_from, _TIMESPEC.unpack
        for n in range(BATCH):
            try:
                data, anc, _, addr = recvmsg(SNAP, _ANC)
            except (BlockingIOError, InterruptedError):
                self.read_segments += n
                return n
            except OSError as exc:
                self.fail(exc)
                return n
            if addr[2] == PACKET_OUTGOING and addr[3] == ARPHRD_LOOPBACK:
                continue  # the loopback's other copy (the filter drops these already)
            if data[0] == 0x45 and len(data) >= 40:  # IPv4 without options: decode() inline
                sport, dport, seq, ack, offset, flags = unpack_tcp(data, 20)
                length = ((data[2] << 8) | data[3]) - 20 - (offset >> 4) * 4
                if dport in ports:
                    key, srv = data[12:24], False
                elif sport in ports:
                    key, srv = data[16:20] + data[12:16] + data[22:24] + data[20:22], True
                else:
                    continue
            else:
                seg = decode(data, ports)
                if seg is None:
                    continue
                key, srv, flags, seq, ack, length = seg
            if anc and anc[0][1] == SCM_TIMESTAMPNS:
                sec, nsec = unpack_time(anc[0][2])
                t = sec + nsec * 1e-9
            else:
                t = time.time()
            add(key, t, srv, flags, seq, ack, length)
        self.read_segments += BATCH
        return BATCH

    def check_drops(self) -> None:
        sock = self.sock
        lost = drops(sock) if sock is not None else 0
        if lost:
            self.kernel_drops += lost
            self.marked_lost += self.table.mark_lost()
        stats = self.stats
        if stats is not None:
            counts = stats.capture
            counts["captured"] = self.table.segments
            counts["kernel"] = self.kernel_drops
            counts.update(self.table.dropped)

    def tick(self) -> None:
        self.check_drops()
        self.table.expire(time.time())
        if self.sock is not None:
            self.timer = self.loop.call_later(TICK, self.tick)

    def settle(self, batch: list[Any]) -> list[Any]:
        """Worker.fold's closed records: what the kernel holds read first, then those whose
        close is complete (or has waited long enough) to retire now."""
        for _ in range(4):  # (bounded: a flood waits for the reader, not the fold)
            if self.read() < BATCH or self.ring is not None:
                break
        self.check_drops()
        self.settled_at = time.monotonic()
        return self.table.settle(batch, time.time())

    def state_json(self) -> dict[str, Any]:
        table = self.table
        return {
            "on": self.sock is not None,
            "ports": sorted(self.ports),
            "own": len(table.own),
            "pending": len(table.pending),
            "pending_max": table.max_pending,
            "held": len(table.held),
            "captured": table.segments,
            "read": self.read_segments,
            "mode": "ring" if self.ring is not None else "recvmsg",
            "ring": self.ring is not None,
            "dropped": {"kernel": self.kernel_drops, **table.dropped},
        }

    def fail(self, exc: OSError) -> None:
        error_log.error(f"lifecycle_capture: recvmsg() failed ({exc.errno}: {exc.strerror}), "
                        "capture off")  # fmt: skip
        self.stop()

    def stop(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                self.loop.remove_reader(sock.fileno())
            except (ValueError, OSError):
                pass
            sock.close()
        if self.timer is not None:
            self.timer.cancel()
        if self.paused is not None:
            self.paused.cancel()
        if self.ring is not None:
            self.ring.close()

    def close(self) -> list[Any]:
        """Stop capturing; the records still waiting for their close, to retire now."""
        while self.read() >= BATCH:
            pass
        self.stop()
        return self.table.release()
