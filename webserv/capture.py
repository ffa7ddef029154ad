"""`lifecycle_capture on;`: the handshake and close segments of the listening ports, as the
wire carried them — an AF_PACKET socket, the classic BPF program the kernel runs on every
packet before queueing it, reading that socket in the event loop with kernel receive
timestamps (SO_TIMESTAMPNS), and decoding IP + TCP headers into segments for the 4-tuple
table (capture_match.py).

The filter passes only TCP segments to or from a listening port with SYN, FIN or RST set,
and zero-payload ACKs: which pure ACK completes a handshake or a close depends on sequence
numbers cBPF cannot remember, so every pure ACK passes and capture_match keeps the right
ones. Data segments never leave the kernel (a FIN that carries data passes, as a FIN). Each
segment is cut to its headers (SNAP). On loopback every segment passes the tap twice, going
out and coming in: the outgoing copy is dropped (in the filter, and again by the reader from
recvmsg's sll_pkttype), as libpcap does, so times are the receive times tcpdump shows.

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

import ctypes
import os
import socket
import struct
import sys
import time
from typing import Any

from .capture_match import WireTable
from .logs import error_log

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
# asm-generic values (x86, arm, riscv...); alpha, mips, parisc and sparc number them otherwise
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
_GENERIC = sys.platform.startswith("linux") and not any(
    arch in os.uname().machine for arch in ("mips", "sparc", "parisc", "alpha")
)
SNAP = 128  # bytes kept of a segment: an IPv4 header (60 at most) and a TCP header (60)
BATCH = 256  # segments read per wake-up; the rest wait for the next turn of the loop
# after a read, the socket is left alone this long (its buffer holds what comes meanwhile):
# one wake-up then reads the segments of many connections, not one or two (measured: waking
# for each burst cost more than decoding it)
PAUSE = 0.005
RCVBUF = 4 << 20  # the socket's receive buffer (root may force it past rmem_max)
TICK = 0.5  # seconds between two looks at the kernel's drop counter and the expiries
_ANC = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 64
_TIMESPEC = struct.Struct("qq")
_TCP = struct.Struct("!HHIIBB")  # ports, seq, ack, data offset, flags
_PORTS = struct.Struct("!HH")
_ISN = struct.Struct("!I")
_V4MAPPED = b"\0" * 10 + b"\xff\xff"

# --- the BPF program ----------------------------------------------------------------------
# struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, linux/filter.h
LD, LDX, ALU, JMP, RET, MISC = 0x00, 0x01, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
ABS, IND, MSH = 0x20, 0x40, 0xA0
AND, ADD, LSH, RSH = 0x50, 0x00, 0x60, 0x70
JEQ, JSET = 0x10, 0x40
K, X = 0x00, 0x08
TAX = MISC | 0x00
AD = 0xFFFFF000  # SKF_AD_OFF (-0x1000): the ancillary loads below
AD_PKTTYPE, AD_HATYPE = AD + 4, AD + 28
MAX_FILTER_PORTS = 60  # more: every TCP segment of those flags passes, the reader picks


def _assemble(items: list[Any]) -> bytes:
    """Labels (str) and (code, k, jt, jf) with jt / jf a label or None (the next one)."""
    where, n = {}, 0
    for item in items:
        if isinstance(item, str):
            where[item] = n
        else:
            n += 1
    out, i = [], 0
    for item in items:
        if isinstance(item, str):
            continue
        code, k, jt, jf = (*item, None, None)[:4]
        offsets = [0 if lab is None else where[lab] - i - 1 for lab in (jt, jf)]
        if not all(0 <= off <= 255 for off in offsets):
            raise ValueError("BPF jump out of range")
        out.append(struct.pack("HBBI", code, offsets[0], offsets[1], k & 0xFFFFFFFF))
        i += 1
    return b"".join(out)


def _port_test(load: Any, ports: list[int], hit: str) -> list[Any]:
    """Load a port (source, then destination) and jump to `hit` on a listening one."""
    out: list[Any] = [(LD | H | load[0], load[1])]
    out += [(JMP | JEQ | K, p, hit) for p in ports]
    out.append((LD | H | load[0], load[1] + 2))
    out += [(JMP | JEQ | K, p, hit) for p in ports[:-1]]
    out.append((JMP | JEQ | K, ports[-1], hit, "drop"))
    return out


def bpf_program(ports: list[int], snap: int = SNAP) -> bytes:
    """The filter: TCP to or from `ports` with SYN, FIN or RST, or a zero-payload ACK; not
    the outgoing copy of a loopback packet. Offsets are from the IP header (SOCK_DGRAM)."""
    ports = sorted(set(ports))
    if len(ports) > MAX_FILTER_PORTS:
        v4ports: list[Any] = [(JMP | JEQ | K, 0, "v4ok", "v4ok")]
        v6ports: list[Any] = [(JMP | JEQ | K, 0, "v6ok", "v6ok")]
    else:
        v4ports, v6ports = _port_test((IND, 0), ports, "v4ok"), _port_test((ABS, 40), ports, "v6ok")
    return _assemble([
        (LD | W | ABS, AD_PKTTYPE), (JMP | JEQ | K, PACKET_OUTGOING, None, "ip"),
        (LD | W | ABS, AD_HATYPE), (JMP | JEQ | K, ARPHRD_LOOPBACK, "drop", "ip"),
        "ip",
        (LD | B | ABS, 0), (ALU | AND | K, 0xF0),
        (JMP | JEQ | K, 0x40, "v4"), (JMP | JEQ | K, 0x60, "v6", "drop"),
        "v4",
        (LD | B | ABS, 9), (JMP | JEQ | K, 6, None, "drop"),  # TCP
        (LD | H | ABS, 6), (JMP | JSET | K, 0x1FFF, "drop"),  # not a later fragment
        (LDX | B | MSH, 0),  # X = the IP header's length
        *v4ports,
        "v4ok",
        (LD | B | IND, 13), (JMP | JSET | K, 0x07, "keep"), (JMP | JSET | K, 0x10, None, "drop"),
        # a pure ACK: total length == IP header + TCP header (data offset × 4)
        (LD | B | IND, 12), (ALU | RSH | K, 4), (ALU | LSH | K, 2), (ALU | ADD | X, 0), (TAX, 0),
        (LD | H | ABS, 2), (JMP | JEQ | X, 0, "keep", "drop"),
        "v6",
        (LD | B | ABS, 6), (JMP | JEQ | K, 6, None, "drop"),  # TCP right after the header
        *v6ports,
        "v6ok",
        (LD | B | ABS, 53), (JMP | JSET | K, 0x07, "keep"), (JMP | JSET | K, 0x10, None, "drop"),
        (LD | B | ABS, 52), (ALU | RSH | K, 4), (ALU | LSH | K, 2), (TAX, 0),
        (LD | H | ABS, 4), (JMP | JEQ | X, 0, "keep", "drop"),  # payload length == TCP header
        "keep", (RET | K, snap),
        "drop", (RET | K, 0),
    ])  # fmt: skip


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER: struct sock_fprog { unsigned short len; struct sock_filter *filter; }"""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def open_socket(ports: list[int]) -> socket.socket:
    """The capture socket, filter attached, timestamps on, non-blocking; OSError if the
    system or the process's privileges do not allow it."""
    if not _GENERIC or not hasattr(socket, "AF_PACKET"):
        raise OSError(0, "AF_PACKET sockets are Linux's")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    try:
        attach_filter(sock, bpf_program(ports))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
        # what arrived between socket() and the filter was not filtered: drop it
        for _ in range(100_000):
            try:
                sock.recv(1)
            except (BlockingIOError, InterruptedError):
                break
        drops(sock)  # (and forget its counts)
    except BaseException:
        sock.close()
        raise
    return sock


def drops(sock: socket.socket) -> int:
    """Segments the kernel dropped (receive buffer full) since the last call
    (PACKET_STATISTICS: struct tpacket_stats {tp_packets, tp_drops}, reset by reading)."""
    try:
        return struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
    except OSError:
        return 0


# --- decoding -----------------------------------------------------------------------------


def decode(data: bytes, ports: Any) -> tuple[bytes, bool, int, int, int, int] | None:
    """(key, from_server, flags, seq, ack, payload length) of an IP + TCP header to or from
    one of `ports`, None otherwise. The key is the 4-tuple as the client's SYN carries it:
    client address, server address, client port, server port (network byte order)."""
    if len(data) < 40:
        return None
    version = data[0] >> 4
    if version == 4:
        ihl = (data[0] & 15) * 4
        if data[9] != 6 or ihl < 20 or len(data) < ihl + 20:
            return None
        sport, dport, seq, ack, offset, flags = _TCP.unpack_from(data, ihl)
        length = ((data[2] << 8) | data[3]) - ihl - (offset >> 4) * 4
        if dport in ports:
            return data[12:20] + data[ihl : ihl + 4], False, flags, seq, ack, length
        if sport in ports:
            key = data[16:20] + data[12:16] + data[ihl + 2 : ihl + 4] + data[ihl : ihl + 2]
            return key, True, flags, seq, ack, length
        return None
    if version == 6 and data[6] == 6 and len(data) >= 60:
        sport, dport, seq, ack, offset, flags = _TCP.unpack_from(data, 40)
        length = ((data[4] << 8) | data[5]) - (offset >> 4) * 4
        if dport in ports:
            return data[8:44], False, flags, seq, ack, length
        if sport in ports:
            key = data[24:40] + data[8:24] + data[42:44] + data[40:42]
            return key, True, flags, seq, ack, length
    return None


def syn_key(syn: bytes | None) -> tuple[bytes, int] | None:
    """(key, client ISN) from the saved SYN's headers, the cheap way to a connection's key."""
    if not syn or len(syn) < 40:
        return None
    if syn[0] >> 4 == 4:
        ihl = (syn[0] & 15) * 4
        if len(syn) >= ihl + 8:
            return syn[12:20] + syn[ihl : ihl + 4], _ISN.unpack_from(syn, ihl + 4)[0]
    elif syn[0] >> 4 == 6 and syn[6] == 6 and len(syn) >= 48:
        return syn[8:44], _ISN.unpack_from(syn, 44)[0]
    return None


def address_key(client: tuple[str, int], server: tuple[str, int]) -> bytes:
    """The key from socket addresses (an IPv4 client of an IPv6 socket is IPv4 on the wire)."""
    return _ip(client[0]) + _ip(server[0]) + _PORTS.pack(client[1], server[1])


def _ip(addr: str) -> bytes:
    addr = addr.partition("%")[0]
    if ":" not in addr:
        return socket.inet_pton(socket.AF_INET, addr)
    packed = socket.inet_pton(socket.AF_INET6, addr)
    return packed[12:] if packed[:12] == _V4MAPPED else packed


def capture_ports(config: Any) -> list[int]:
    """The ports of listeners with a server that has lifecycle and lifecycle_capture on."""
    return sorted({
        listener.address.port
        for listener in config.listeners
        for group in listener.groups.values()
        for server in group.servers
        if server.lifecycle and getattr(server, "lifecycle_capture", False)
    })  # fmt: skip


# --- one worker's capture -----------------------------------------------------------------


class Capture:
    """The capture socket of one worker, read in its event loop, and its table."""

    def __init__(self, loop: Any, sock: socket.socket, ports: list[int], stats: Any) -> None:
        self.loop = loop
        self.sock: socket.socket | None = sock
        self.ports = frozenset(ports)
        self.stats = stats
        self.table = WireTable()
        self.kernel_drops = 0
        self.marked_lost = 0
        self.timer: Any = None
        self.paused: Any = None  # the call that resumes reading (see PAUSE)
        loop.add_reader(sock.fileno(), self.wake)
        self.timer = loop.call_later(TICK, self.tick)

    @classmethod
    def start(cls, worker: Any) -> Capture | None:
        """Capture for `worker`, or None (with one warn line from the first worker)."""
        ports = capture_ports(worker.config)
        if not ports:
            return None
        try:
            sock = open_socket(ports)
        except OSError as exc:
            if worker.ordinal == 0:
                why = exc.strerror or str(exc)
                need = " (needs CAP_NET_RAW)" if exc.errno in (1, 13) else ""
                error_log.warn(
                    f"lifecycle_capture: AF_PACKET socket failed ({exc.errno}: {why}){need}, "
                    "capture off"
                )
            return None
        return cls(worker.loop, sock, ports, worker.stats)

    def attach(self, record: Any, conn: Any) -> None:
        """A connection accepted: its record's wire (one dict lookup by 4-tuple)."""
        found = syn_key(record.syn)
        if found is None:
            try:
                key = address_key((conn.remote_addr, conn.remote_port), conn.local_address)
            except (OSError, ValueError, TypeError):
                return
            record.wire = self.table.attach(key, None)
        else:
            record.wire = self.table.attach(found[0], found[1])

    def wake(self) -> None:
        """The reader callback: read a batch, then pause reading for PAUSE seconds."""
        sock = self.sock
        if sock is None:
            return
        self.loop.remove_reader(sock.fileno())
        self.read()
        if self.sock is not None:
            self.paused = self.loop.call_later(PAUSE, self.resume)

    def resume(self) -> None:
        self.paused = None
        if self.sock is not None:
            self.loop.add_reader(self.sock.fileno(), self.wake)

    def read(self) -> int:
        """Up to BATCH segments, decoded and matched; how many were read."""
        sock = self.sock
        if sock is None:
            return 0
        recvmsg, add, ports = sock.recvmsg, self.table.add, self.ports
        unpack_tcp, unpack_time = _TCP.unpack_from, _TIMESPEC.unpack
        for n in range(BATCH):
            try:
                data, anc, _, addr = recvmsg(SNAP, _ANC)
            except (BlockingIOError, InterruptedError):
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
            if self.read() < BATCH:
                break
        self.check_drops()
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

    def close(self) -> list[Any]:
        """Stop capturing; the records still waiting for their close, to retire now."""
        while self.read() == BATCH:
            pass
        self.stop()
        return self.table.release()
