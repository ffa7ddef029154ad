"""The TPACKET_V3 ring of lifecycle_capture: `parse_block` on crafted blocks (headers laid out
as linux/if_packet.h says), `Ring.read` handing blocks back to the kernel, and — root only,
a real AF_PACKET socket — the ring set up by the kernel, its refusal (a second ring on the
same socket: EBUSY) and the fallback of Capture.start to recvmsg with one warning line."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from test_capture import CLIENT, SERVER, ipv4_tcp, ipv6_tcp

from webserv import capture, capture_keys, capture_ring
from webserv.capture_match import ACK, FIN, SYN

FIRST = 48  # offset_to_first_pkt: the block descriptor's size
NET = 96  # tp_net for SOCK_DGRAM: TPACKET_ALIGN(tpacket3_hdr + sockaddr_ll) + 16


def block(packets: list[tuple[int, int, bytes]], size: int = 4096, status: int = 1) -> bytes:
    """A block as the kernel hands it over: (sec, nsec, IP packet) each, frames aligned to 8,
    the last frame's tp_next_offset 0."""
    frames = []
    for i, (sec, nsec, data) in enumerate(packets):
        length = -(-(NET + len(data)) // 8) * 8
        nxt = 0 if i == len(packets) - 1 else length
        head = struct.pack("=IIIIIIHH", nxt, sec, nsec, len(data), len(data), 1, NET, NET)
        frames.append((head + bytes(NET - len(head)) + data).ljust(length, b"\0"))
    body = b"".join(frames)
    desc = struct.pack("=IIIIII", 3, 0, status, len(packets), FIRST, FIRST + len(body))
    out = desc.ljust(FIRST, b"\0") + body
    assert len(out) <= size
    return out.ljust(size, b"\0")


def collect(buf, start=0, size=4096, ports=frozenset({8080})):
    out = []
    n = capture_ring.parse_block(buf, start, size, ports, lambda *seg: out.append(seg))
    assert n == len(out)
    return out


def test_parse_block_both_directions_and_families():
    syn = ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, seq=7)
    synack = ipv4_tcp(SERVER, CLIENT, 8080, 40000, SYN | ACK, seq=9, ack=8)
    fin6 = ipv6_tcp("::1", "::2", 40001, 8080, FIN | ACK, seq=5, ack=6, payload=b"xy")
    segs = collect(block([(100, 250_000_000, syn), (100, 500_000_000, synack), (101, 0, fin6)]))
    key4 = capture.decode(syn, {8080})[0]
    assert segs[0] == (key4, 100.25, False, SYN, 7, 0, 0)
    assert segs[1] == (key4, 100.5, True, SYN | ACK, 9, 8, 0)  # the same key, from the server
    key6, srv, flags, seq, ack, length = capture.decode(fin6, {8080})
    assert segs[2] == (key6, 101.0, False, FIN | ACK, 5, 6, 2)  # a FIN with 2 bytes of data


def test_parse_block_skips_what_is_not_ours():
    packets = [
        (1, 0, ipv4_tcp(CLIENT, SERVER, 40000, 9999, SYN)),  # another port
        (1, 0, ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, proto=17)),  # UDP
        (1, 0, b"\x45" + b"\0" * 30),  # cut short
        (2, 0, ipv4_tcp(CLIENT, SERVER, 40000, 8080, ACK, seq=3, ack=4)),
    ]
    assert [seg[1:] for seg in collect(block(packets))] == [(2.0, False, ACK, 3, 4, 0)]
    assert collect(block([])) == []


def test_parse_block_refuses_headers_outside_the_block():
    good = block([(1, 0, ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN))])
    bad = bytearray(good)
    struct.pack_into("=I", bad, 12, 5)  # num_pkts 5, but the only frame says "last"
    assert len(collect(bytes(bad))) == 1  # a last frame (next_offset 0) ends the walk
    struct.pack_into("=I", bad, FIRST, 4020)  # the next frame would start past the end
    with pytest.raises(ValueError):
        collect(bytes(bad))
    bad = bytearray(good)
    struct.pack_into("=I", bad, FIRST + 12, 5000)  # a snaplen past the block
    with pytest.raises(ValueError):
        collect(bytes(bad))


def test_ring_reads_handed_over_blocks_in_order_and_hands_them_back():
    one = block([(1, 0, ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, seq=1))], 1024)
    two = block([(2, 0, ipv4_tcp(CLIENT, SERVER, 40001, 8080, SYN, seq=2))], 1024)
    broken = bytearray(block([(3, 0, ipv4_tcp(CLIENT, SERVER, 40002, 8080, SYN))], 1024))
    struct.pack_into("=I", broken, FIRST, 4000)
    struct.pack_into("=I", broken, 12, 2)
    kernel = block([(4, 0, ipv4_tcp(CLIENT, SERVER, 40003, 8080, SYN))], 1024, status=0)
    buf = bytearray(one + two + bytes(broken) + kernel)
    ring = capture_ring.Ring(buf, 1024, 4)
    got = []
    # the broken block: its first segment is given, its count is not (a block that lies)
    assert ring.read({8080}, lambda *seg: got.append(seg), 10) == 2
    assert [seg[4] for seg in got] == [1, 2, 1000]
    assert ring.bad_blocks == 1 and ring.next == 3  # the kernel's block is left alone
    assert [struct.unpack_from("=I", buf, i * 1024 + 8)[0] for i in range(4)] == [0, 0, 0, 0]
    assert ring.read({8080}, lambda *seg: got.append(seg), 10) == 0  # nothing new
    struct.pack_into("=I", buf, 3 * 1024 + 8, 1)  # the kernel hands over the fourth
    struct.pack_into("=I", buf, 0 * 1024 + 8, 1)  # and, wrapping around, the first again
    assert ring.read({8080}, lambda *seg: got.append(seg), 10) == 2 and ring.next == 1
    assert [seg[1] for seg in got[-2:]] == [4.0, 1.0]


# --- the kernel's ring (root only) ---------------------------------------------------------


def _needs_capture():
    try:
        capture.open_socket([9]).close()
    except OSError as exc:
        pytest.skip(f"no AF_PACKET socket here ({exc})")


class _Server:
    lifecycle = lifecycle_capture = True


def _worker(port: int, loop):
    class Group:
        servers = (_Server(),)

    class Listener:
        groups = {("127.0.0.1", port): Group()}

        class address:
            host = "127.0.0.1"

    Listener.address.port = port

    class Config:
        listeners = (Listener(),)

    class Worker:
        config, stats, ordinal = Config(), None, 0

    Worker.loop = loop
    return Worker()


def _handshake_seen(sock_port: int, cap, loop) -> list[str]:
    """Connect to the listening socket, let the loop read, return the roles captured."""
    with socket.create_connection(("127.0.0.1", sock_port)) as client:
        key = capture_keys.address_key(client.getsockname(), ("127.0.0.1", sock_port))
        for _ in range(50):
            loop.run_until_complete(asyncio.sleep(0.01))
            wire = cap.table.pending.get(key)
            if wire is not None and wire.handshake_acked:
                break
    return [seg[6] for seg in wire.segments] if wire else []


@pytest.mark.parametrize("ring", [True, False])
def test_capture_start_with_the_ring_or_without(monkeypatch, ring):
    _needs_capture()
    lines = []

    class ErrorLog:
        def warn(self, msg, conn=None):
            lines.append(msg)

    monkeypatch.setattr(capture, "error_log", ErrorLog())
    if not ring:  # the kernel refuses the ring: recvmsg, and one line says so

        def refuse(sock):
            raise OSError(22, "Invalid argument")

        monkeypatch.setattr(capture_ring, "setup", refuse)
    loop = asyncio.new_event_loop()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        cap = capture.Capture.start(_worker(port, loop))
        try:
            assert cap is not None and (cap.ring is not None) == ring
            assert cap.state_json()["ring"] == ring
            assert _handshake_seen(port, cap, loop) == ["syn", "syn-ack", "ack"]
        finally:
            cap.close()
            loop.close()
    if ring:
        assert lines == []
    else:
        assert len(lines) == 1 and "PACKET_RX_RING" in lines[0] and "recvmsg" in lines[0]


def test_the_kernel_refuses_a_second_ring():
    _needs_capture()
    sock, ring, why = capture.open_capture([9])
    try:
        assert ring is not None and why is None
        with pytest.raises(OSError):
            capture_ring.setup(sock)  # EBUSY: the socket has its ring
    finally:
        ring.close()
        sock.close()


def test_parse_block_frames_of_every_shape_in_one_block():
    """The iter_unpack walk of 136-byte IPv4 frames hands over to the per-frame walk at the
    first other frame (IPv6, IP options, data) and the segments come out the same, in order."""

    def with_options(packet: bytes) -> bytes:  # IHL 6: four bytes of NOP options
        total = struct.unpack_from("!H", packet, 2)[0] + 4
        head = bytes([0x46]) + packet[1:2] + struct.pack("!H", total) + packet[4:20]
        return head + b"\x01" * 4 + packet[20:]

    packets = [
        ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, seq=1),
        ipv4_tcp(SERVER, CLIENT, 8080, 40000, SYN | ACK, seq=2, ack=2),
        ipv6_tcp("::1", "::2", 40001, 8080, SYN, seq=3),
        ipv4_tcp(CLIENT, SERVER, 40000, 8080, ACK, seq=4, ack=3),
        with_options(ipv4_tcp(CLIENT, SERVER, 40002, 8080, SYN, seq=5)),
        ipv4_tcp(CLIENT, SERVER, 40000, 8080, FIN | ACK, seq=6, ack=3, payload=b"z" * 30),
        ipv4_tcp(SERVER, CLIENT, 8080, 40000, ACK, seq=7, ack=7),
    ]
    segs = collect(block([(i, 0, p) for i, p in enumerate(packets)]))
    expect = [
        (capture.decode(p, {8080})[0], float(i), *capture.decode(p, {8080})[1:])
        for i, p in enumerate(packets)
    ]
    assert segs == expect
    assert [s[4] for s in segs] == [1, 2, 3, 4, 5, 6, 7] and segs[5][6] == 30
    only_v4 = block([(1, 0, p) for p in packets[:2]])
    assert capture_ring._fast4(only_v4, FIRST, 2, {8080}, lambda *seg: None) == (2, 2)


def test_the_kernels_frames_are_the_fast_paths():
    """A handshake on loopback, as the kernel lays it out in the ring: every frame is one
    of _fast4's (tp_net, the snap length the filter returns, the kernel's alignment)."""
    _needs_capture()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        sock, ring, _ = capture.open_capture([port], loopback=True)
        try:
            with socket.create_connection(("127.0.0.1", port)):
                for _ in range(100):  # the block is handed over RETIRE_MS after its first
                    if struct.unpack_from("=I", ring.buf, 8)[0] & capture_ring.TP_STATUS_USER:
                        break
                    time.sleep(0.01)
            _, count, first = struct.unpack_from("=III", ring.buf, 8)
            assert count >= 3  # SYN, SYN-ACK, ACK
            got = []
            done, n = capture_ring._fast4(ring.buf, first, count, {port}, lambda *s: got.append(s))
            assert done == count and [s[3] for s in got[:3]] == [SYN, SYN | ACK, ACK]
        finally:
            ring.close()
            sock.close()
