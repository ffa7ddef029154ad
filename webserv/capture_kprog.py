"""lifecycle_capture's eBPF program (capture_kernel.py runs it on the tap): a connection's
entry — its layout is here — and the instructions that keep its handshake and close in it,
written with capture_ebpf.Asm. What it does, step by step, is capture_match.Wire.add's logic
in the kernel: see `program`. Owns the entry's layout and the program; opens nothing.
"""

from __future__ import annotations

from typing import Any

from . import capture_ebpf as e
from .capture_ebpf import DW, FP, R0, R1, R2, R3, R4, R6, R7, R8, R9, B, H, W
from .capture_match import ACK, FIN, MAX_SEGMENTS, RST, SYN

KEY_SIZE = 36
# one entry: a header, then MAX_SEGMENTS slots (u64 time, u32 seq, u32 ack, u16 length,
# u8 flags, u8 from_server, u8 role, 3 bytes unused)
OFF_X, OFF_Y, OFF_FIN_SEQ = 0, 4, 8  # u32; FIN_SEQ + 4 × side (0 client, 1 server)
OFF_X_SET, OFF_Y_SET, OFF_ACKED = 16, 17, 18  # u8 flags
OFF_FIN_SET, OFF_FIN_ACKED, OFF_RST = 19, 21, 23  # u8 + side
OFF_SYN_COUNT, OFF_SYNACK_COUNT = 25, 26  # u8
OFF_NSEG = 28  # u32, taken atomically (may pass MAX_SEGMENTS: the rest did not fit)
SLOTS, SLOT = 32, 24
OFF_KEY = SLOTS + SLOT * MAX_SEGMENTS  # the entry's own key (what the ring hands over)
VALUE_SIZE = OFF_KEY + 40
ROLES = ("", "syn", "syn-ack", "ack", "rst", "fin", "close-ack")
SYN_ROLE, SYNACK_ROLE, ACK_ROLE, RST_ROLE, FIN_ROLE, CLOSE_ACK_ROLE = range(1, 7)
# the counters page (u64 each): the program's, then one slot per worker (scoreboard slot)
C_CREATED, C_WIRE_FULL, C_RING, C_CLAIMED = 0, 8, 16, 64  # C_RING: handed over by the ring
CLAIM_SLOTS = 64  # (workers beyond 64 share one: their counts may then be short)
MAX_CAPACITY = 1 << 18
# stack (R10 = FP): the key at -40..-5, then the segment's numbers, 8 bytes each
S_KEY, S_SEQ, S_ACK, S_LEN, S_FLAGS, S_ROLE, S_TIME = -40, -48, -56, -64, -72, -80, -88
PACKET_OUTGOING, LOOPBACK_IFINDEX = 4, 1


def program(
    ports: list[int], wires: int, template: int, counters: int, ring: int | None = None
) -> bytes:
    """The socket filter (see the module docstring); map descriptors as the kernel knows
    them. Registers kept across calls: R6 the packet, R7 the entry, R8 the TCP header's
    offset, R9 the direction (0 from the client, 1 from the server). With a `ring`: an entry
    whose close is complete is copied to it and deleted from the map."""
    a = e.Asm()
    a.movr(R6, 1)
    # the loopback's outgoing copy (the incoming one is what tcpdump shows)
    a.load(W, R0, R6, 4)  # __sk_buff.pkt_type
    a.jump(e.JNE, R0, PACKET_OUTGOING, "ip")
    a.load(W, R0, R6, 40)  # __sk_buff.ifindex
    a.jump(e.JEQ, R0, LOOPBACK_IFINDEX, "drop")
    a.label("ip")
    a.packet(B, 0)
    a.movr(R1, R0)
    a.alu(e.AND, R1, 0xF0)
    a.jump(e.JEQ, R1, 0x40, "v4")
    a.jump(e.JEQ, R1, 0x60, "v6")
    a.goto("drop")

    a.label("v4")
    a.movr(R8, R0)
    a.alu(e.AND, R8, 0x0F)
    a.alu(e.LSH, R8, 2)
    a.packet(B, 9)
    a.jump(e.JNE, R0, 6, "drop")  # TCP
    a.packet(H, 6)
    a.jump(e.JSET, R0, 0x1FFF, "drop")  # a later fragment
    a.packet(H, 2)
    a.alur(e.SUB, R0, R8)  # the TCP segment's length
    a.store(DW, FP, S_LEN, R0)
    _ports(a, ports, (H, 2, R8), "v4c", (H, 0, R8), "v4s")
    for side, (client, server) in (("v4c", (12, 16)), ("v4s", (16, 12))):
        a.label(side)
        a.mov(R9, side == "v4s")
        _copy(a, client, 4, S_KEY)
        _copy(a, server, 4, S_KEY + 4)
        _ports_key(a, (W, 0, R8), S_KEY + 8, swap=side == "v4s")
        a.store_imm(W, FP, S_KEY + 12, 0)
        for off in range(16, 40, 8):
            a.store_imm(DW, FP, S_KEY + off, 0)
        a.goto("tcp")

    a.label("v6")
    a.packet(B, 6)
    a.jump(e.JNE, R0, 6, "drop")  # TCP right after the fixed header
    a.mov(R8, 40)
    a.packet(H, 4)  # the payload length: the TCP segment's
    a.store(DW, FP, S_LEN, R0)
    _ports(a, ports, (H, 42, None), "v6c", (H, 40, None), "v6s")
    for side, (client, server) in (("v6c", (8, 24)), ("v6s", (24, 8))):
        a.label(side)
        a.mov(R9, side == "v6s")
        _copy(a, client, 16, S_KEY)
        _copy(a, server, 16, S_KEY + 16)
        _ports_key(a, (W, 40, None), S_KEY + 32, swap=side == "v6s")
        a.goto("tcp")

    a.label("tcp")
    a.packet(B, 12, R8)
    a.alu(e.RSH, R0, 4)
    a.alu(e.LSH, R0, 2)
    a.load(DW, R1, FP, S_LEN)
    a.alur(e.SUB, R1, R0)  # the payload's length
    a.jump(e.JSLT, R1, 0, "drop")
    a.store(DW, FP, S_LEN, R1)
    a.packet(B, 13, R8)
    a.store(DW, FP, S_FLAGS, R0)
    a.jump(e.JSET, R0, SYN | FIN | RST, "wanted")
    a.load(DW, R1, FP, S_LEN)  # (a packet load clobbers R1-R5)
    a.jump(e.JNE, R1, 0, "drop")  # data: never kept
    a.jump(e.JSET, R0, ACK, "wanted")
    a.goto("drop")
    a.label("wanted")
    a.packet(W, 4, R8)
    a.store(DW, FP, S_SEQ, R0)
    a.packet(W, 8, R8)
    a.store(DW, FP, S_ACK, R0)
    _lookup(a, wires)
    a.load(DW, R0, FP, S_FLAGS)
    a.jump(e.JSET, R0, SYN, "syn")
    a.jump(e.JNE, R7, 0, "have")
    a.jump(e.JSET, R0, FIN | RST, "lone")
    a.goto("drop")
    a.label("lone")
    _create(a, wires, template, counters, e.NOEXIST)
    a.goto("have")

    # SYN from the client: a new entry, or the same handshake's retransmission
    a.label("syn")
    a.jump(e.JNE, R9, 0, "synack")
    a.jump(e.JSET, R0, ACK, "drop")  # (a simultaneous open: not a server's handshake)
    a.jump(e.JEQ, R7, 0, "syn_new")
    a.load(B, R1, R7, OFF_X_SET)
    a.jump(e.JEQ, R1, 0, "syn_set")
    a.load(W, R1, R7, OFF_X)
    a.load(DW, R2, FP, S_SEQ)
    a.jumpr(e.JEQ, R1, R2, "syn_set")
    a.label("syn_new")  # (a new SYN on the tuple of an older connection starts afresh)
    _create(a, wires, template, counters, e.ANY)
    a.label("syn_set")
    a.load(DW, R1, FP, S_SEQ)
    a.store(W, R7, OFF_X, R1)
    a.store_imm(B, R7, OFF_X_SET, 1)
    _increment(a, OFF_SYN_COUNT)
    a.mov(R1, SYN_ROLE)
    a.goto("append")
    a.label("synack")
    a.jump(e.JEQ, R7, 0, "drop")
    a.jump(e.JSET, R0, ACK, "synack_ok")
    a.goto("drop")
    a.label("synack_ok")
    a.load(B, R1, R7, OFF_Y_SET)
    a.jump(e.JEQ, R1, 0, "synack_set")
    a.load(W, R1, R7, OFF_Y)
    a.load(DW, R2, FP, S_SEQ)
    a.jumpr(e.JNE, R1, R2, "drop")  # not this handshake's
    a.label("synack_set")
    a.load(DW, R1, FP, S_SEQ)
    a.store(W, R7, OFF_Y, R1)
    a.store_imm(B, R7, OFF_Y_SET, 1)
    _increment(a, OFF_SYNACK_COUNT)
    a.mov(R1, SYNACK_ROLE)
    a.goto("append")

    a.label("have")  # R7: the entry; not a SYN
    a.load(DW, R0, FP, S_FLAGS)
    a.jump(e.JSET, R0, RST, "rst")
    a.jump(e.JSET, R0, FIN, "fin")
    a.jump(e.JNE, R9, 0, "close_ack")  # a pure ACK: the handshake's?
    a.load(B, R1, R7, OFF_ACKED)
    a.jump(e.JNE, R1, 0, "close_ack")
    a.load(B, R1, R7, OFF_Y_SET)
    a.jump(e.JEQ, R1, 0, "close_ack")
    a.load(W, R1, R7, OFF_Y)
    a.alu(e.ADD, R1, 1, wide=False)
    a.load(DW, R2, FP, S_ACK)
    a.jumpr(e.JNE, R1, R2, "close_ack")
    a.store_imm(B, R7, OFF_ACKED, 1)
    a.mov(R1, ACK_ROLE)
    a.goto("append")
    a.label("close_ack")
    _acks(a, "close_ack_yes", "drop")
    a.label("close_ack_yes")
    a.mov(R1, CLOSE_ACK_ROLE)
    a.goto("append")
    a.label("rst")
    a.movr(R2, R7)
    a.alur(e.ADD, R2, R9)
    a.store_imm(B, R2, OFF_RST, 1)
    a.mov(R1, RST_ROLE)
    a.goto("append")
    a.label("fin")  # its own sequence number: seq + payload
    a.load(DW, R1, FP, S_SEQ)
    a.load(DW, R2, FP, S_LEN)
    a.alur(e.ADD, R1, R2, wide=False)
    a.movr(R3, R9)
    a.alu(e.LSH, R3, 2)
    a.movr(R2, R7)
    a.alur(e.ADD, R2, R3)
    a.store(W, R2, OFF_FIN_SEQ, R1)
    a.movr(R2, R7)
    a.alur(e.ADD, R2, R9)
    a.store_imm(B, R2, OFF_FIN_SET, 1)
    _acks(a, "fin_kept", "fin_kept")
    a.label("fin_kept")
    a.mov(R1, FIN_ROLE)

    a.label("append")  # R1: the role
    a.store(DW, FP, S_ROLE, R1)
    a.call(e.KTIME_GET_NS)
    a.store(DW, FP, S_TIME, R0)
    a.mov(R1, 1)
    a.atomic_add(W, R7, OFF_NSEG, R1, fetch=True)
    a.jump(e.JGE, R1, MAX_SEGMENTS, "full", wide=False)
    a.alu(e.AND, R1, 0xFF)  # (known small: the verifier's bound for the slot's address)
    a.jump(e.JGE, R1, MAX_SEGMENTS, "full")
    a.alu(e.MUL, R1, SLOT)
    a.movr(R2, R7)
    a.alur(e.ADD, R2, R1)
    for off, size, slot in ((S_TIME, DW, 0), (S_SEQ, W, 8), (S_ACK, W, 12),
                            (S_LEN, H, 16), (S_FLAGS, B, 18), (S_ROLE, B, 20)):  # fmt: skip
        a.load(DW, R1, FP, off)
        a.store(size, R2, SLOTS + slot, R1)
    a.store(B, R2, SLOTS + 19, R9)
    if ring is not None:
        _hand_over(a, wires, counters, ring)
    a.goto("drop")
    a.label("full")
    a.map_value(R1, counters, C_WIRE_FULL)
    a.mov(R2, 1)
    a.atomic_add(DW, R1, 0, R2)
    a.label("drop")
    a.mov(R0, 0)
    a.exit()
    return a.code()


def _ports(a: e.Asm, ports: list[int], to_server: Any, client: str, from_server: Any,
           server: str) -> None:  # fmt: skip
    """Jump to `client` if the destination port is captured, `server` if the source is."""
    size, off, index = to_server
    a.packet(size, off, index)
    for port in ports:
        a.jump(e.JEQ, R0, port, client)
    size, off, index = from_server
    a.packet(size, off, index)
    for port in ports:
        a.jump(e.JEQ, R0, port, server)
    a.goto("drop")


def _copy(a: e.Asm, off: int, length: int, to: int) -> None:
    """Packet bytes [off, off + length) to the stack at `to`, as the wire has them."""
    for word in range(0, length, 4):
        a.packet(W, off + word)
        a.be(R0, 32)
        a.store(W, FP, to + word, R0)


def _ports_key(a: e.Asm, load: Any, to: int, swap: bool) -> None:
    """The two ports, client's first, as the wire has them."""
    size, off, index = load
    a.packet(size, off, index)  # source << 16 | destination
    if swap:
        a.movr(R1, R0)
        a.alu(e.RSH, R1, 16, wide=False)
        a.alu(e.LSH, R0, 16, wide=False)
        a.alur(e.OR, R0, R1, wide=False)
    a.be(R0, 32)
    a.store(W, FP, to, R0)


def _lookup(a: e.Asm, wires: int) -> None:
    a.map_fd(R1, wires)
    a.movr(R2, FP)
    a.alu(e.ADD, R2, S_KEY)
    a.call(e.LOOKUP)
    a.movr(R7, R0)


def _create(a: e.Asm, wires: int, template: int, counters: int, flags: int) -> None:
    """A zeroed entry for the key (counted), then R7 = it; none: the packet is left."""
    a.map_fd(R1, wires)
    a.movr(R2, FP)
    a.alu(e.ADD, R2, S_KEY)
    a.map_value(R3, template)
    a.mov(R4, flags)
    a.call(e.UPDATE)
    a.map_value(R1, counters, C_CREATED)
    a.mov(R2, 1)
    a.atomic_add(DW, R1, 0, R2)
    _lookup(a, wires)
    a.jump(e.JEQ, R7, 0, "drop")
    for off in range(0, KEY_SIZE, 4):  # (its key, for the ring)
        a.load(W, R1, FP, S_KEY + off)
        a.store(W, R7, OFF_KEY + off, R1)
    a.load(DW, R0, FP, S_FLAGS)


def _hand_over(a: e.Asm, wires: int, counters: int, ring: int) -> None:
    """A complete close (capture_kwire.complete): the entry to the ring, out of the map
    (a full ring: it stays, and the worker looks it up)."""
    for off in (OFF_X_SET, OFF_Y_SET, OFF_ACKED):
        a.load(B, R1, R7, off)
        a.jump(e.JEQ, R1, 0, "drop")
    a.load(B, R1, R7, OFF_RST)
    a.jump(e.JNE, R1, 0, "complete")
    a.load(B, R1, R7, OFF_RST + 1)
    a.jump(e.JNE, R1, 0, "complete")
    a.load(B, R1, R7, OFF_FIN_ACKED)
    a.jump(e.JEQ, R1, 0, "drop")
    a.load(B, R1, R7, OFF_FIN_ACKED + 1)
    a.jump(e.JEQ, R1, 0, "drop")
    a.label("complete")
    a.map_fd(R1, ring)
    a.movr(R2, R7)
    a.mov(R3, VALUE_SIZE)
    a.mov(R4, 0)
    a.call(e.RINGBUF_OUTPUT)
    a.jump(e.JNE, R0, 0, "drop")
    a.map_value(R1, counters, C_RING)
    a.mov(R2, 1)
    a.atomic_add(DW, R1, 0, R2)
    a.map_fd(R1, wires)
    a.movr(R2, FP)
    a.alu(e.ADD, R2, S_KEY)
    a.call(e.DELETE)


def _increment(a: e.Asm, off: int) -> None:
    a.load(B, R1, R7, off)
    a.alu(e.ADD, R1, 1)
    a.store(B, R7, off, R1)


def _acks(a: e.Asm, yes: str, no: str) -> None:
    """Does the segment acknowledge the other side's FIN, for the first time? (then
    marked acknowledged); jump to `yes` or `no`."""
    a.mov(R3, 1)
    a.alur(e.SUB, R3, R9)  # the other side
    a.movr(R2, R7)
    a.alur(e.ADD, R2, R3)
    a.load(B, R1, R2, OFF_FIN_SET)
    a.jump(e.JEQ, R1, 0, no)
    a.load(B, R1, R2, OFF_FIN_ACKED)
    a.jump(e.JNE, R1, 0, no)
    a.load(DW, R1, FP, S_FLAGS)
    a.jump(e.JSET, R1, ACK, f"{yes}_ack")
    a.goto(no)
    a.label(f"{yes}_ack")
    a.alu(e.LSH, R3, 2)
    a.movr(R4, R7)
    a.alur(e.ADD, R4, R3)
    a.load(W, R1, R4, OFF_FIN_SEQ)
    a.alu(e.ADD, R1, 1, wide=False)
    a.load(DW, R4, FP, S_ACK)
    a.jumpr(e.JNE, R1, R4, no)
    a.store_imm(B, R2, OFF_FIN_ACKED, 1)
    a.goto(yes)
