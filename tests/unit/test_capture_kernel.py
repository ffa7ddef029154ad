"""The kernel-matched capture's pure pieces: the eBPF encoding (labels, 64-bit loads), the
decoding of a map entry into a Wire (the same JSON the user-space capture builds), and the
program the verifier is given, on this kernel when it takes one (root, Linux ≥ 5.12)."""

from __future__ import annotations

import struct

import pytest

from webserv import capture_ebpf as e
from webserv import capture_kernel as k
from webserv.capture_kwire import _RING_ENTRY, complete, decode
from webserv.capture_match import Wire


def test_jumps_resolve_to_their_labels_across_a_64_bit_load():
    a = e.Asm()
    a.jump(e.JEQ, e.R1, 7, "end")
    a.map_fd(e.R1, 5)  # two instruction slots
    a.mov(e.R0, 1)
    a.label("end")
    a.exit()
    code = a.code()
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    assert len(insns) == 5
    assert insns[0] == (e.JMP | e.JEQ | e.K, e.R1, 3, 7)  # over the load's 2 and the mov
    assert insns[1] == (e.LD | e.IMM | e.DW, (e.PSEUDO_MAP_FD << 4) | e.R1, 0, 5)
    assert insns[4] == (e.JMP | e.EXIT, 0, 0, 0)


def test_a_label_twice_is_refused():
    a = e.Asm()
    a.label("x")
    a.label("x")
    with pytest.raises(ValueError):
        a.code()


def entry(segments, **flags) -> bytes:
    raw = bytearray(k.VALUE_SIZE)
    struct.pack_into("<IIII", raw, 0, flags.get("x", 0), flags.get("y", 0),
                     flags.get("fin0", 0), flags.get("fin1", 0))  # fmt: skip
    for name, off in (("x_set", 16), ("y_set", 17), ("acked", 18), ("fset0", 19),
                      ("fset1", 20), ("facked0", 21), ("facked1", 22), ("rst0", 23),
                      ("rst1", 24), ("syns", 25), ("synacks", 26)):  # fmt: skip
        raw[off] = flags.get(name, 0)
    struct.pack_into("<I", raw, k.OFF_NSEG, len(segments))
    for i, (ns, seq, ack, length, fl, srv, role) in enumerate(segments):
        struct.pack_into("<QIIHBBB", raw, k.SLOTS + i * k.SLOT, ns, seq, ack, length, fl, srv,
                         k.ROLES.index(role))  # fmt: skip
    return bytes(raw)


HANDSHAKE_AND_CLOSE = [
    (1_000_000_000, 100, 0, 0, 0x02, 0, "syn"),
    (1_000_010_000, 500, 101, 0, 0x12, 1, "syn-ack"),
    (1_000_020_000, 101, 501, 0, 0x10, 0, "ack"),
    (2_000_000_000, 501, 150, 0, 0x11, 1, "fin"),
    (2_000_030_000, 150, 502, 0, 0x11, 0, "fin"),  # (out of order in its slot: sorted)
    (2_000_020_000, 150, 502, 0, 0x10, 0, "close-ack"),
    (2_000_040_000, 502, 151, 0, 0x10, 1, "close-ack"),
]
FLAGS = dict(x=100, y=500, fin0=150, fin1=501, x_set=1, y_set=1, acked=1, fset0=1, fset1=1,
             facked0=1, facked1=1, syns=1, synacks=1)  # fmt: skip


def test_an_entry_decodes_to_the_wire_the_user_space_capture_builds():
    raw = entry(HANDSHAKE_AND_CLOSE, **FLAGS)
    assert complete(raw)
    wire = decode(raw, False, now_real=1000.0, now_mono=0.0)  # epoch = monotonic + 1000
    reference = Wire(0.0)
    for ns, seq, ack, length, fl, srv, _ in sorted(HANDSHAKE_AND_CLOSE):
        reference.add(1000.0 + ns * 1e-9, bool(srv), fl, seq, ack, length)
    assert wire.to_json(1000.0) == reference.to_json(1000.0)
    got = wire.to_json(1000.0)
    assert got["complete"] and got["time_wait"] == "server" and got["server_isn"] == 500
    assert [s["t_ms"] for s in got["segments"]][:2] == [1000.0, 1000.01]


def test_an_unwritten_slot_and_the_incomplete_close_are_what_they_are():
    segments = HANDSHAKE_AND_CLOSE[:4] + [(0, 0, 0, 0, 0, 0, "syn")]  # taken, not written
    raw = entry(segments, **{**FLAGS, "fset0": 0, "facked0": 0, "facked1": 0})
    assert not complete(raw)
    got = decode(raw, False, 0.0, 0.0).to_json(0.0)
    assert len(got["segments"]) == 4
    assert got["missing"] == ["client fin", "ack of the server's fin"]
    assert decode(None, True, 0.0, 0.0).to_json(0.0)["capture_dropped"] is True


def test_a_reset_completes_a_close():
    raw = entry(HANDSHAKE_AND_CLOSE[:3], **{**FLAGS, "fset0": 0, "fset1": 0, "facked0": 0,
                                            "facked1": 0, "rst0": 1})  # fmt: skip
    assert complete(raw)


def test_the_program_passes_the_verifier_where_the_kernel_allows_it():
    try:
        tap = k.Tap([8080, 8443], 64, True, True)
    except OSError as exc:
        pytest.skip(f"no eBPF socket filter here ({exc})")
    try:
        assert tap.created() == 0 and tap.pushed_out() == 0
        tap.claim(3, 5)
        assert tap.claimed() == 5
    finally:
        tap.close()


def test_a_complete_close_comes_through_the_ring_and_an_open_one_stays_in_the_map():
    """The program on a real tap over real loopback connections: each closed one's entry
    is handed over through the ring, complete, with its own key, and deleted from the map;
    an open one is in the map (one look-up) with its handshake."""
    import socket
    import time

    from webserv.capture_ebpf import MapReader, RingReader
    from webserv.capture_keys import address_key

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        tap = k.Tap([port], 64, True, True)
    except OSError as exc:
        listener.close()
        pytest.skip(f"no eBPF socket filter here ({exc})")
    if tap.ring_fd is None:
        tap.close()
        listener.close()
        pytest.skip("no BPF ring buffer here")
    ring = RingReader(tap.ring_fd, k.RING_SIZE)
    reader = MapReader(tap.wires, k.KEY_SIZE, k.VALUE_SIZE)
    try:
        keys = []
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", port))
            server, _ = listener.accept()
            keys.append(address_key(("127.0.0.1", client.getsockname()[1]), ("127.0.0.1", port)))
            client.close()
            server.close()
        still = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        open_key = address_key(("127.0.0.1", still.getsockname()[1]), ("127.0.0.1", port))
        entries: list[tuple] = []
        for _ in range(200):
            entries += ring.read(_RING_ENTRY)
            if len(entries) >= 3:
                break
            time.sleep(0.01)  # (the last ACKs cross the loopback: not an assertion)
        got = {key[:12]: raw for _, raw, key in entries}
        assert sorted(got) == sorted(keys)
        assert all(complete(raw) for raw in got.values())
        assert all(reader.lookup(key.ljust(k.KEY_SIZE, b"\0")) is None for key in keys)
        assert tap.handed_over() == 3 and tap.created() == 4
        raw = reader.lookup(open_key.ljust(k.KEY_SIZE, b"\0"))
        assert raw is not None and not complete(raw)
        roles = [s["role"] for s in decode(raw, False, 0.0, 0.0).to_json(0.0)["segments"]]
        assert roles == ["syn", "syn-ack", "ack"]
        still.close()
        accepted.close()
    finally:
        ring.close()
        tap.close()
        listener.close()
