"""`lifecycle_capture on;` matched in the kernel: an eBPF socket filter on the AF_PACKET tap
keeps each connection's handshake and close in a map keyed by its 4-tuple, so no segment is
ever queued to user space; a worker reads a connection's entry once, after its close.

The program (capture_kprog.program, eBPF assembled by capture_ebpf.Asm) runs on every packet of the
tap, before anything is copied, and does what capture_match.Wire.add does in Python: for a
TCP segment to or from a captured port with SYN, FIN or RST set or no payload, it finds the
connection's entry (client address, server address, client port, server port, as
capture_keys makes them; 36 bytes, an IPv4 key padded with zeros), creates one for a SYN
(or a lone FIN or RST), and keeps the segment when it is the SYN, the SYN-ACK, the ACK of
the server's ISN + 1, a FIN, the ACK of the other side's FIN or a RST — time (CLOCK_MONOTONIC,
taken as the tap sees the segment), sequence and acknowledgement numbers, payload length,
flags, direction and role, up to MAX_SEGMENTS a connection. With one worker (on x86, where
the ring's reader needs no barrier) an entry whose close is complete is copied to a BPF ring
buffer (RING_SIZE bytes, read from shared memory) and deleted from the map. It returns 0 for
every packet: the socket's queue stays empty.

The map is an LRU hash of CAPACITY entries: connections no worker claims (a SYN flood,
clients that never complete, SYNs before accept) are pushed out by new ones, and kernel
memory stays bounded. What was pushed out unread is counted as at least created − claimed −
capacity, from the counters page (an mmap'd array map: the program adds the entries it
created and those it handed over, each worker the entries it read, in its own slot).

`Tap` is one generation's: made by the cycle before any worker starts (so even connections
queued before a worker accepts have their handshake), shared by the generation's workers
through inherited descriptors (one program run per packet, not one per worker). Linux 5.12
or later (atomic fetch-and-add) with CAP_BPF or CAP_SYS_ADMIN and CAP_NET_RAW; otherwise
`Tap.open` says why and every worker captures in user space (capture.py). Owns the maps,
the ring and the tap socket; never reads an entry (capture_kwire.py does), never blocks.
"""

from __future__ import annotations

import mmap
import os
import socket
from typing import Any

from . import capture_ebpf as e
from .capture_bpf import bind_loopback, drain
from .capture_kprog import (  # noqa: F401 (the entry's layout, for readers as capture_kernel.*)
    C_CLAIMED,
    C_CREATED,
    C_RING,
    C_WIRE_FULL,
    CLAIM_SLOTS,
    KEY_SIZE,
    MAX_CAPACITY,
    OFF_KEY,
    OFF_NSEG,
    OFF_X,
    ROLES,
    SLOT,
    SLOTS,
    VALUE_SIZE,
    program,
)
from .capture_match import MAX_PENDING

RING_SIZE = 1 << 20  # bytes: ~2,200 complete entries between two folds
# the ring's reader loads without acquire ordering, which x86's memory model makes safe
RING_SAFE = os.uname().machine in ("x86_64", "i686", "i386")
ETH_P_ALL = 0x0003


def capacity_for(config: Any, workers: int) -> int:
    """Room for every connection the workers may hold, and MAX_PENDING more."""
    return min(MAX_CAPACITY, MAX_PENDING + workers * config.worker_connections)


class Tap:
    """One generation's kernel capture: the tap socket with the program, the map of
    connections, the counters page. Made in the master (or the one process) before the
    workers start; the workers use its descriptors."""

    def __init__(self, ports: list[int], capacity: int, loopback: bool, ring: bool) -> None:
        self.ports = sorted(set(ports))
        self.capacity = capacity
        self.fds: list[int] = []
        self.sock: socket.socket | None = None
        self.counters: mmap.mmap | None = None
        self.ring_fd: int | None = None  # (one worker: complete entries handed over)
        self.wants_ring = ring
        try:
            self.wires = self._fd(e.map_create(e.MAP_LRU_HASH, KEY_SIZE, VALUE_SIZE, capacity))
            template = self._fd(e.map_create(e.MAP_ARRAY, 4, VALUE_SIZE, 1))
            counters = self._fd(e.map_create(e.MAP_ARRAY, 4, 4096, 1, e.F_MMAPABLE))
            self.counters = mmap.mmap(counters, 4096, mmap.MAP_SHARED,
                                      mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
            if ring:
                try:
                    self.ring_fd = self._fd(e.map_create(e.MAP_RINGBUF, 0, 0, RING_SIZE))
                except OSError:
                    pass  # (before Linux 5.8: every entry is looked up)
            code = program(self.ports, self.wires, template, counters, self.ring_fd)
            prog = self._fd(e.prog_load(code))
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            self.sock = sock
            sock.setsockopt(socket.SOL_SOCKET, e.SO_ATTACH_BPF, prog)
            if loopback:
                bind_loopback(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)  # (nothing is queued)
            sock.setblocking(False)
            drain(sock)
        except BaseException:
            self.close()
            raise

    def _fd(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    @classmethod
    def open(
        cls, config: Any, workers: int, old: Tap | None = None
    ) -> tuple[Tap | None, OSError | None]:
        """The tap for `config`'s captured ports: `old` (the previous generation's) when it
        fits, else a new one, or (None, why) — no kernel capture configured is (None, None).
        A tap with a ring is never shared: a ring has one reader, and the old generation's
        worker would take the new one's entries."""
        from .capture import capture_ports, kernel_matching, loopback_only

        ports = capture_ports(config)
        if not ports or not kernel_matching(config):
            return None, None
        capacity = capacity_for(config, workers)
        ring = workers == 1 and RING_SAFE
        if (
            old is not None
            and not old.wants_ring
            and not ring
            and old.ports == ports
            and old.capacity >= capacity
        ):
            return old, None
        try:
            return cls(ports, capacity, loopback_only(config, ports), ring), None
        except OSError as exc:
            return None, exc

    def _counter(self, off: int) -> int:
        counters = self.counters
        return int.from_bytes(counters[off : off + 8], "little") if counters else 0

    def created(self) -> int:
        return self._counter(C_CREATED)

    def wire_full(self) -> int:
        return self._counter(C_WIRE_FULL)

    def claimed(self) -> int:
        counters = self.counters
        if counters is None:
            return 0
        view = memoryview(counters)[C_CLAIMED : C_CLAIMED + 8 * CLAIM_SLOTS].cast("Q")
        try:
            return sum(view)
        finally:
            view.release()

    def claim(self, slot: int, n: int) -> None:
        """Count `n` entries read by the worker of scoreboard `slot` (its own u64: no two
        processes write the same one)."""
        counters = self.counters
        if counters is not None:
            off = C_CLAIMED + 8 * (slot % CLAIM_SLOTS)
            value = int.from_bytes(counters[off : off + 8], "little") + n
            counters[off : off + 8] = value.to_bytes(8, "little")

    def handed_over(self) -> int:
        return self._counter(C_RING)

    def pushed_out(self) -> int:
        """Entries created that no worker read and the map no longer holds: at least this
        many (an LRU map may push out before it is full)."""
        gone = self.claimed() + self.handed_over()
        return max(0, self.created() - gone - self.capacity)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.counters is not None:
            try:
                self.counters.close()
            except BufferError:
                pass
            self.counters = None
        fds, self.fds = self.fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
