"""The classic BPF program of lifecycle_capture's AF_PACKET socket (capture.py), assembled
here from labelled instructions and attached with SO_ATTACH_FILTER: the kernel runs it on
every packet of the tap and keeps only TCP segments to or from the captured ports with SYN,
FIN or RST set, or with no payload, cut to their headers; not the outgoing copy of a
loopback packet. Owns the instruction encoding (linux/filter.h), and the two steps of a tap
socket's set-up both captures take (bind_loopback, drain); nothing else."""

from __future__ import annotations

import ctypes
import socket
import struct
from typing import Any

PACKET_OUTGOING = 4
ARPHRD_LOOPBACK = 772
SO_ATTACH_FILTER = 26  # asm-generic (capture.py refuses the other architectures)
SNAP = 128  # bytes kept of a segment: an IPv4 header (60 at most) and a TCP header (60)

# --- the BPF program ----------------------------------------------------------------------
# struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, linux/filter.h
LD, LDX, ALU, JMP, RET, MISC = 0x00, 0x01, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
ABS, IND, MSH = 0x20, 0x40, 0xA0
AND, ADD, LSH, RSH = 0x50, 0x00, 0x60, 0x70
JEQ, JSET = 0x10, 0x40
K, X = 0x00, 0x08
TAX, TXA = MISC | 0x00, MISC | 0x80
A = 0x10  # RET A: return the accumulator
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
    the outgoing copy of a loopback packet. Offsets are from the IP header (SOCK_DGRAM).
    What it keeps is cut to the IP header and the TCP header's first 20 bytes (options are
    never read): every IPv4 segment without IP options is then 40 bytes, so a ring block
    holds frames of one size (capture_ring's fast path)."""
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
        (LD | B | IND, 13), (JMP | JSET | K, 0x07, "keep4"), (JMP | JSET | K, 0x10, None, "drop"),
        # a pure ACK: total length == IP header + TCP header (data offset × 4)
        (LD | B | IND, 12), (ALU | RSH | K, 4), (ALU | LSH | K, 2), (ALU | ADD | X, 0), (TAX, 0),
        (LD | H | ABS, 2), (JMP | JEQ | X, 0, "keep4", "drop"),
        "v6",
        (LD | B | ABS, 6), (JMP | JEQ | K, 6, None, "drop"),  # TCP right after the header
        *v6ports,
        "v6ok",
        (LD | B | ABS, 53), (JMP | JSET | K, 0x07, "keep"), (JMP | JSET | K, 0x10, None, "drop"),
        (LD | B | ABS, 52), (ALU | RSH | K, 4), (ALU | LSH | K, 2), (TAX, 0),
        (LD | H | ABS, 4), (JMP | JEQ | X, 0, "keep", "drop"),  # payload length == TCP header
        "keep", (RET | K, min(snap, 60)),  # IPv6: its header and the TCP header's first 20
        "keep4", (LDX | B | MSH, 0), (TXA, 0), (ALU | ADD | K, 20), (RET | A, 0),  # IP + 20
        "drop", (RET | K, 0),
    ])  # fmt: skip


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER: struct sock_fprog { unsigned short len; struct sock_filter *filter; }"""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def bind_loopback(sock: socket.socket) -> None:
    """Tap `lo` only, as packets come in (PACKET_IGNORE_OUTGOING, Linux 4.20: the kernel then
    neither clones nor filters the outgoing copy of each packet for this socket; before it,
    the filter leaves them)."""
    sock.bind(("lo", 0x0003))  # ETH_P_ALL
    try:
        sock.setsockopt(263, 23, 1)  # SOL_PACKET, PACKET_IGNORE_OUTGOING
    except OSError:
        pass


def drain(sock: socket.socket) -> None:
    """What reached the non-blocking socket before its filter was attached: dropped."""
    for _ in range(100_000):
        try:
            sock.recv(1)
        except (BlockingIOError, InterruptedError):
            break
