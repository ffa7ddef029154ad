"""The pure pieces of lifecycle_capture: decoding IP + TCP headers into segments, the BPF
program run by the kernel on crafted packets (root only: an AF_PACKET socket), the 4-tuple
table's matching, bounds and expiry, and the record's `wire` JSON."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from webserv import capture, capture_keys, capture_match
from webserv.capture_match import ACK, FIN, RST, SYN, Wire, WireTable

CLIENT, SERVER = "127.0.0.1", "127.0.0.2"
PSH = 0x08


def ipv4_tcp(src, dst, sport, dport, flags, seq=1000, ack=0, payload=b"", proto=6, frag=0):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag, 64, proto, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))  # fmt: skip
    return ip + tcp


def ipv6_tcp(src, dst, sport, dport, flags, seq=1000, ack=0, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64,
                     socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))  # fmt: skip
    return ip + tcp


# --- decoding -------------------------------------------------------------------------------


def test_decode_ipv4_both_directions():
    c2s = capture.decode(ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, seq=7), {8080})
    key = socket.inet_aton(CLIENT) + socket.inet_aton(SERVER) + struct.pack("!HH", 40000, 8080)
    assert c2s == (key, False, SYN, 7, 0, 0)
    s2c = capture.decode(ipv4_tcp(SERVER, CLIENT, 8080, 40000, SYN | ACK, seq=9, ack=8), {8080})
    assert s2c == (key, True, SYN | ACK, 9, 8, 0)  # the same key, the client's orientation
    data = capture.decode(ipv4_tcp(CLIENT, SERVER, 40000, 8080, FIN | ACK, payload=b"abc"), {8080})
    assert data[5] == 3


def test_decode_ipv6_and_rejects():
    seg = capture.decode(ipv6_tcp("::1", "::2", 40000, 8080, RST, seq=5), {8080})
    assert seg is not None and seg[1:] == (False, RST, 5, 0, 0)
    assert len(seg[0]) == 36
    back = capture.decode(ipv6_tcp("::2", "::1", 8080, 40000, ACK, seq=6, ack=7), {8080})
    assert back[0] == seg[0] and back[1] is True
    assert capture.decode(ipv4_tcp(CLIENT, SERVER, 1, 2, SYN), {8080}) is None  # not our port
    assert capture.decode(ipv4_tcp(CLIENT, SERVER, 1, 8080, SYN, proto=17), {8080}) is None
    assert capture.decode(b"\x45" + b"\0" * 10, {8080}) is None  # cut short


def test_keys_from_the_saved_syn_and_from_addresses_agree():
    syn = ipv4_tcp(CLIENT, SERVER, 40000, 8080, SYN, seq=77)
    key, isn = capture_keys.syn_key(syn)
    assert isn == 77 and key == capture.decode(syn, {8080})[0]
    assert capture_keys.address_key((CLIENT, 40000), (SERVER, 8080)) == key
    # an IPv4 client of an IPv6 socket is IPv4 on the wire
    assert capture_keys.address_key(("::ffff:127.0.0.1", 40000), ("::ffff:127.0.0.2", 8080)) == key
    syn6 = ipv6_tcp("::1", "::1", 40000, 8080, SYN, seq=78)
    assert capture_keys.syn_key(syn6) == (capture.decode(syn6, {8080})[0], 78)
    assert capture_keys.address_key(("::1", 40000), ("::1", 8080)) == capture_keys.syn_key(syn6)[0]


# --- the BPF program, run by the kernel -----------------------------------------------------


def _can_capture() -> bool:
    try:
        capture.open_socket([9]).close()
    except OSError:
        return False
    return True


@pytest.fixture
def kernel_filter():
    if not _can_capture():
        pytest.skip("no AF_PACKET socket here (needs Linux and CAP_NET_RAW)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nothing listens on (the kernel answers RST)
    sock = capture.open_socket([port])
    yield sock, port
    sock.close()


def _send_raw(packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        for packet in packets:
            raw.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))


def _captured(sock, port, wait: float = 0.5) -> list[tuple]:
    out, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            data, anc, _, addr = sock.recvmsg(capture.SNAP, 64)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        assert addr[2] != capture.PACKET_OUTGOING or addr[3] != capture.ARPHRD_LOOPBACK
        assert anc and anc[0][1] == capture.SCM_TIMESTAMPNS  # a kernel timestamp each
        seg = capture.decode(data, {port})
        assert seg is not None, f"the filter passed a segment it should not: {data!r}"
        out.append(seg)
    return out


def test_bpf_passes_handshake_and_close_segments_only(kernel_filter):
    sock, port = kernel_filter
    c, s = "127.0.0.1", "127.0.0.1"
    wanted = [
        ipv4_tcp(c, s, 41000, port, SYN, seq=101),
        ipv4_tcp(c, s, 41000, port, ACK, seq=102, ack=5),  # a pure ACK
        ipv4_tcp(c, s, 41000, port, FIN | ACK, seq=103, ack=5),
        ipv4_tcp(c, s, 41000, port, FIN | ACK | PSH, seq=104, ack=5, payload=b"last"),
        ipv4_tcp(c, s, 41000, port, RST, seq=105),
        ipv4_tcp(s, c, port, 41000, SYN | ACK, seq=106, ack=102),  # from the port
    ]
    unwanted = [
        ipv4_tcp(c, s, 41000, port, ACK | PSH, seq=201, ack=5, payload=b"GET / HTTP/1.1\r\n"),
        ipv4_tcp(c, s, 41000, port, ACK, seq=202, ack=5, payload=b"x"),  # data, no PSH
        ipv4_tcp(c, s, 41000, port + 1 if port < 65535 else 1, SYN, seq=203),  # another port
        ipv4_tcp(c, s, 41000, port, SYN, seq=204, proto=17),  # UDP
        ipv4_tcp(c, s, 41000, port, SYN, seq=205, frag=5),  # a later fragment
    ]
    _send_raw(wanted + unwanted)
    seen = {seg[3] for seg in _captured(sock, port) if not seg[2] & RST or seg[3] == 105}
    # the kernel answers the SYN (nothing listens) with a RST from the port: seq 0, kept too
    assert {101, 102, 103, 104, 105, 106} <= seen
    assert not seen & {201, 202, 203, 204, 205}
    # each once: the outgoing copy of a loopback packet is not delivered
    segs = [seg for seg in _captured(sock, port, 0.05)]
    assert segs == []


def test_bpf_program_shape():
    program = capture.bpf_program([80, 8080])
    assert len(program) % 8 == 0 and len(program) // 8 < 100
    code, jt, jf, k = struct.unpack_from("HBBI", program, len(program) - 8)
    assert code == capture.RET and k == 0  # the last instruction drops
    many = capture.bpf_program(list(range(1000, 1200)))  # past MAX_FILTER_PORTS: no port test
    assert len(many) < len(program) + 8 * 10


# --- the table ------------------------------------------------------------------------------


def _key(n: int) -> bytes:
    return socket.inet_aton(CLIENT) + socket.inet_aton(SERVER) + struct.pack("!HH", n, 8080)


def _full_close(table: WireTable, key: bytes, client_first: bool = True, t: float = 1.0) -> None:
    x, y = 1000, 5000
    table.add(key, t, False, SYN, x, 0, 0)
    table.add(key, t + 0.1, True, SYN | ACK, y, x + 1, 0)
    table.add(key, t + 0.2, False, ACK, x + 1, y + 1, 0)
    table.add(key, t + 0.25, True, ACK, y + 1, x + 1, 0)  # an ACK of data: not kept
    if client_first:
        table.add(key, t + 0.3, False, FIN | ACK, x + 11, y + 101, 0)
        table.add(key, t + 0.4, True, ACK, y + 101, x + 12, 0)
        table.add(key, t + 0.5, True, FIN | ACK, y + 101, x + 12, 0)
        table.add(key, t + 0.6, False, ACK, x + 12, y + 102, 0)
    else:
        table.add(key, t + 0.3, True, FIN | ACK, y + 1, x + 11, 100)  # a FIN with data
        table.add(key, t + 0.4, False, FIN | ACK, x + 11, y + 102, 0)  # acks it too
        table.add(key, t + 0.5, True, ACK, y + 102, x + 12, 0)


@pytest.mark.parametrize("client_first", [True, False])
def test_wire_complete_close(client_first):
    table = WireTable()
    key = _key(1)
    _full_close(table, key, client_first)
    wire = table.attach(key, 1000)  # segments that came before the accept are its own
    assert wire.complete(), wire.missing()
    data = wire.to_json(1.0)
    assert data["server_isn"] == 5000 and data["client_isn"] == 1000
    assert data["time_wait"] == ("client" if client_first else "server")
    assert data["first_fin"] == ("client" if client_first else "server")
    roles = [s["role"] for s in data["segments"]]
    assert roles[:3] == ["syn", "syn-ack", "ack"]
    assert len(roles) == (7 if client_first else 6)  # the ACK of data was not kept
    if not client_first:
        assert data["segments"][3]["len"] == 100 and data["segments"][4]["ack"] == 5000 + 102
    assert data["segments"][1]["ack"] == 1001 and data["segments"][0]["ack"] is None
    assert data["segments"][1]["t_ms"] == 100.0


def test_wire_incomplete_and_reset():
    wire = Wire(0.0)
    wire.add(0.0, False, SYN, 1, 0, 0)
    assert not wire.complete()
    assert wire.missing() == ["syn-ack", "ack", "client fin", "server fin"]
    wire.add(0.1, True, SYN | ACK, 9, 2, 0)
    wire.add(0.2, True, SYN | ACK, 9, 2, 0)  # retransmitted
    wire.add(0.3, False, ACK, 2, 10, 0)
    wire.add(0.4, False, RST, 2, 0, 0)
    assert wire.complete()
    data = wire.to_json(0.0)
    assert data["syn_ack_retransmits"] == 1 and data["rst_from"] == ["client"]
    assert data["time_wait"] is None
    wire.lost = True  # the kernel dropped segments meanwhile
    assert not wire.complete()


def test_pending_table_is_bounded():
    table = WireTable(max_pending=10)
    for n in range(100):
        table.add(_key(n), 1.0, False, SYN, n, 0, 0)
    assert len(table.pending) == 10
    assert table.dropped["pending_full"] == 90
    assert set(table.pending) == {_key(n) for n in range(90, 100)}  # the oldest went first
    for n in range(100):  # lone ACKs make no entry
        table.add(_key(1000 + n), 1.0, False, ACK, n, 1, 0)
    assert len(table.pending) == 10


def test_one_wire_is_bounded():
    table = WireTable()
    for n in range(100):
        table.add(_key(1), 1.0, False, RST, n, 0, 0)
    assert len(table.pending[_key(1)].segments) == capture_match.MAX_SEGMENTS
    assert table.dropped["wire_full"] == 100 - capture_match.MAX_SEGMENTS


def test_expiry_and_port_reuse():
    table = WireTable()
    table.add(_key(1), 1.0, False, SYN, 1, 0, 0)
    table.expire(1.0 + capture_match.TIME_WAIT + 1)
    assert not table.pending
    # an attached wire, closed completely: its key is freed when its record retires
    _full_close(table, _key(2))
    wire = table.attach(_key(2), 1000)

    class Rec:
        pass

    record = Rec()
    record.wire = wire
    assert table.settle([(record, None)], 10.0) == [(record, None)]  # complete: retired now
    assert _key(2) not in table.own
    table.add(_key(2), 11.0, False, SYN, 424242, 0, 0)  # the port reused: a new connection
    assert _key(2) not in table.own and table.pending[_key(2)].x == 424242
    assert len(wire.segments) == 7  # the old record did not take it
    table.expire(10.0 + capture_match.TIME_WAIT + 1)
    assert not table.own


def test_settle_holds_an_incomplete_close():
    table = WireTable()
    key = _key(3)
    table.add(key, 1.0, False, SYN, 1, 0, 0)
    table.add(key, 1.1, True, SYN | ACK, 9, 2, 0)
    table.add(key, 1.2, False, ACK, 2, 10, 0)
    wire = table.attach(key, 1)

    class Rec:
        pass

    record = Rec()
    record.wire = wire
    assert table.settle([(record, "log")], 5.0) == []  # waits for the close
    assert table.settle([], 5.05) == []  # still waiting
    table.add(key, 5.1, False, RST, 2, 0, 0)
    assert table.settle([], 5.2) == [(record, "log")]
    # and one that never completes goes after SETTLE
    other = table.attach(_key(4), None)
    record2 = Rec()
    record2.wire = other
    assert table.settle([(record2, None)], 6.0) == []
    assert table.settle([], 6.0 + capture_match.SETTLE) == [(record2, None)]


def test_attach_ignores_a_stale_pending_syn():
    table = WireTable()
    table.add(_key(5), 1.0, False, SYN, 111, 0, 0)
    wire = table.attach(_key(5), 222)  # the record's SYN has another ISN
    assert wire.x is None and not wire.segments


def test_mark_lost():
    table = WireTable()
    _full_close(table, _key(6))
    done = table.attach(_key(6), 1000)
    table.add(_key(7), 1.0, False, SYN, 1, 0, 0)
    assert table.mark_lost() == 1
    assert not table.pending[_key(7)].complete() and table.pending[_key(7)].lost
    assert done.complete() and not done.lost


def test_start_without_privilege_warns_once(monkeypatch):
    lines = []

    def refuse(ports, loopback=False):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(capture, "open_capture", refuse)

    class ErrorLog:
        def warn(self, msg, conn=None):
            lines.append(msg)

    monkeypatch.setattr(capture, "error_log", ErrorLog())

    class Server:
        lifecycle = lifecycle_capture = True

    class Group:
        servers = (Server(),)

    class Listener:
        groups = {("", 8080): Group()}

        class address:
            host, port = "", 8080

    class Config:
        listeners = (Listener(),)

    class Worker:
        config, loop, stats = Config(), None, None

        def __init__(self, ordinal):
            self.ordinal = ordinal

    assert capture.Capture.start(Worker(0)) is None
    assert capture.Capture.start(Worker(1)) is None  # the other workers say nothing
    assert len(lines) == 1 and "CAP_NET_RAW" in lines[0] and "capture off" in lines[0]


def test_complete_is_no_missing_segment_and_no_loss():
    import itertools

    for x, y, acked, rst0, rst1, lost, fins in itertools.product(
        (None, 1), (None, 2), (False, True), (False, True), (False, True), (False, True),
        itertools.product((None, "sent", "acked"), repeat=2),
    ):  # fmt: skip
        wire = Wire(0.0)
        wire.x, wire.y, wire.handshake_acked, wire.rst, wire.lost = x, y, acked, [rst0, rst1], lost
        wire.fin_seq = [None if f is None else 9 for f in fins]
        wire.fin_acked = [f == "acked" for f in fins]
        assert wire.complete() == (not lost and not wire.missing()), (x, y, acked, fins)
