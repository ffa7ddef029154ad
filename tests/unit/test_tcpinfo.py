"""webserv.tcpinfo: TCP_INFO layout/decoding and saved-SYN parsing, against real sockets."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import sys
import time
from collections.abc import Iterator

import pytest
from support import ipv6_loopback

from webserv import savedsyn, tcpinfo
from webserv.savedsyn import decode_syn, enable_save_syn, options_text, read_saved_syn
from webserv.tcpinfo import (
    HOT_FIELDS,
    TCP_INFO_FIELDS,
    decode_tcp_info,
    hot_fields,
    read_tcp_info,
)

LINUX = sys.platform.startswith("linux")
needs_linux = pytest.mark.skipif(
    not LINUX, reason="TCP_INFO layout, TCP_SAVE_SYN and TCP_SAVED_SYN are Linux-only"
)

# An independent transcription of struct tcp_info (include/uapi/linux/tcp.h) used to
# cross-check the module: (name, struct code), bitfield words marked with "*".
KERNEL_LAYOUT = (
    "B state B ca_state B retransmits B probes B backoff B options B *wscale B *rate "
    "I rto I ato I snd_mss I rcv_mss I unacked I sacked I lost I retrans I fackets "
    "I last_data_sent I last_ack_sent I last_data_recv I last_ack_recv I pmtu "
    "I rcv_ssthresh I rtt I rttvar I snd_ssthresh I snd_cwnd I advmss I reordering "
    "I rcv_rtt I rcv_space I total_retrans Q pacing_rate Q max_pacing_rate Q bytes_acked "
    "Q bytes_received I segs_out I segs_in I notsent_bytes I min_rtt I data_segs_in "
    "I data_segs_out Q delivery_rate Q busy_time Q rwnd_limited Q sndbuf_limited "
    "I delivered I delivered_ce Q bytes_sent Q bytes_retrans I dsack_dups I reord_seen "
    "I rcv_ooopack I snd_wnd I rcv_wnd I rehash H total_rto H total_rto_recoveries "
    "I total_rto_time I received_ce I delivered_e1_bytes I delivered_e0_bytes "
    "I delivered_ce_bytes I received_e1_bytes I received_e0_bytes I received_ce_bytes "
    "I *ecn"
).split()
BITFIELD_OWNER = {
    "snd_wscale": "*wscale", "rcv_wscale": "*wscale",
    "delivery_rate_app_limited": "*rate", "fastopen_client_fail": "*rate",
    "ecn_mode": "*ecn", "accecn_opt_seen": "*ecn", "accecn_fail_mode": "*ecn", "options2": "*ecn",
}  # fmt: skip


def field_spans() -> dict[str, tuple[int, int]]:
    spans, off = {}, 0
    for code, name in zip(KERNEL_LAYOUT[::2], KERNEL_LAYOUT[1::2], strict=True):
        size = struct.calcsize(code)
        spans[name] = (off, off + size)
        off += size
    return {f: spans[BITFIELD_OWNER.get(f, f)] for f in TCP_INFO_FIELDS}


SPANS = field_spans()


@contextlib.contextmanager
def tcp_conn(
    host: str = "127.0.0.1", save_syn: bool = False, client_rcvbuf: int | None = None
) -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """(listener, client, server-side accepted socket) over loopback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        lst = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        if save_syn:
            assert enable_save_syn(lst)
        lst.bind((host, 0))
        lst.listen(8)
        cli = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        if client_rcvbuf is not None:  # before connect, so it shapes the SYN's wscale
            cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_rcvbuf)
        cli.settimeout(5)
        cli.connect(lst.getsockname()[:2])
        srv, _ = lst.accept()
        stack.enter_context(srv)
        srv.settimeout(5)
        yield lst, cli, srv


def wait_for(pred, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


# --- TCP_INFO layout -------------------------------------------------------------------------


def test_layout_matches_kernel_header() -> None:
    assert tcpinfo.TCP_INFO_SIZE == 280
    assert len(TCP_INFO_FIELDS) == len(set(TCP_INFO_FIELDS))
    expected = [n for n in KERNEL_LAYOUT[1::2] if not n.startswith("*")]
    assert [f for f in TCP_INFO_FIELDS if f not in BITFIELD_OWNER] == expected
    # Offsets quoted from the header / known ABI sizes (104: 3.x, 248: 6.7, 280: 6.18).
    assert SPANS["rtt"] == (68, 72) and SPANS["rcv_space"] == (96, 100)
    assert SPANS["total_retrans"] == (100, 104) and SPANS["bytes_acked"] == (120, 128)
    assert SPANS["snd_wnd"] == (228, 232) and SPANS["total_rto_time"] == (244, 248)
    assert SPANS["received_ce"] == (248, 252) and SPANS["options2"] == (276, 280)


@pytest.mark.skipif(sys.byteorder != "little", reason="bitfield bytes built for little-endian")
def test_decode_synthetic_struct_every_field() -> None:
    codes = "=" + "".join(KERNEL_LAYOUT[::2])
    names = KERNEL_LAYOUT[1::2]
    values = {n: 1000 + i for i, n in enumerate(names)}
    values.update(state=8, ca_state=4, retransmits=3, probes=2, backoff=1, options=0b1100_0101)
    # snd_wscale=0xA (low nibble), rcv_wscale=7; app_limited=1, fastopen_client_fail=2;
    # ecn_mode=2, accecn_opt_seen=1, accecn_fail_mode=0xC, options2=0x123456.
    values.update({"*wscale": 0x7A, "*rate": 0b101, "*ecn": (0x123456 << 8) | (0xC << 4) | 6})
    values.update(total_rto=65535, total_rto_recoveries=7, pacing_rate=2**64 - 1)
    raw = struct.pack(codes, *(values[n] for n in names))
    assert len(raw) == 280

    d = decode_tcp_info(raw)
    assert list(d)[: len(TCP_INFO_FIELDS)] == list(TCP_INFO_FIELDS)
    assert set(d) == {*TCP_INFO_FIELDS, "state_name", "options_names"}
    for name in names:
        if not name.startswith("*"):
            assert d[name] == values[name], name
    assert (d["snd_wscale"], d["rcv_wscale"]) == (0xA, 7)
    assert (d["delivery_rate_app_limited"], d["fastopen_client_fail"]) == (1, 2)
    assert (d["ecn_mode"], d["accecn_opt_seen"], d["accecn_fail_mode"]) == (2, 1, 0xC)
    assert d["options2"] == 0x123456
    assert d["state_name"] == "CLOSE_WAIT"
    assert d["options_names"] == ["timestamps", "wscale", "usec_ts", "tfo_child"]
    assert hot_fields(raw) == tuple(d[n] for n in HOT_FIELDS)
    # the one-unpack reader of what a close needs agrees with the full decode, field by field
    assert tcpinfo.close_fields(raw) == tuple(d[n] for n in tcpinfo.CLOSE_FIELDS)
    # a 3.x kernel's 104 bytes carry state and total_retrans only
    assert tcpinfo.close_fields(raw[:104]) == (
        d["state"],
        d["total_retrans"],
        None,
        None,
        None,
        None,
    )


def test_none_and_empty_decode_to_all_none() -> None:
    for raw in (None, b"", bytearray()):
        d = decode_tcp_info(raw)
        assert set(d) == {*TCP_INFO_FIELDS, "state_name", "options_names"}
        assert all(v is None for v in d.values())
        assert hot_fields(raw) == (None,) * len(HOT_FIELDS)


# --- TCP_INFO on real sockets ----------------------------------------------------------------


@needs_linux
def test_real_tcp_info_counts_bytes_and_segments() -> None:
    n = 12_345
    with tcp_conn() as (lst, cli, srv):
        raw = read_tcp_info(srv)
        assert raw is not None and len(raw) >= 104  # 280 on 6.18
        d = decode_tcp_info(raw)
        assert d["state_name"] == "ESTABLISHED" and d["state"] == 1
        assert d["snd_mss"] > 0 and d["rcv_mss"] > 0
        assert "timestamps" in d["options_names"] and "sack" in d["options_names"]

        cli.sendall(b"x" * n)
        got = 0
        while got < n:
            got += len(srv.recv(65536))
        s = decode_tcp_info(read_tcp_info(srv))
        # recv() returning all n bytes means the kernel already counted them: exact.
        assert s["bytes_received"] == n
        assert s["bytes_acked"] == 0  # server has sent nothing...
        assert s["data_segs_in"] >= 1 and s["segs_in"] >= 3  # SYN, ACK, data
        # ...but it ACKs (maybe delayed); its SYN-ACK is not in the child's segs_out at all.
        assert wait_for(lambda: decode_tcp_info(read_tcp_info(srv))["segs_out"] >= 1)

        # Measured on Linux 6.18: the *connecting* side's bytes_acked counts its own SYN
        # (the SYN-ACK acking ISN+1 goes through the normal snd_una accounting), so it ends
        # at n + 1. The accepting side's counters start at 0: the handshake sets its snd_una
        # and rcv_nxt directly, so neither SYN counts there. A FIN adds +1 later, to the
        # receiver's bytes_received and (once ACKed) to the sender's bytes_acked.
        assert wait_for(lambda: decode_tcp_info(read_tcp_info(cli))["bytes_acked"] == n + 1)
        c = decode_tcp_info(read_tcp_info(cli))
        assert c["bytes_sent"] == n and c["bytes_received"] == 0
        assert c["data_segs_out"] >= 1 and c["segs_out"] >= c["data_segs_out"] + 2
        assert c["total_retrans"] == 0 and c["lost"] == 0
        assert c["rtt"] > 0 and c["min_rtt"] > 0 and c["snd_cwnd"] >= 1

        cli.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: decode_tcp_info(read_tcp_info(srv))["state_name"] == "CLOSE_WAIT")
        assert decode_tcp_info(read_tcp_info(srv))["bytes_received"] == n + 1

        assert decode_tcp_info(read_tcp_info(lst))["state_name"] == "LISTEN"


@needs_linux
def test_wscale_nibbles_match_both_ends() -> None:
    # A small client receive buffer makes its window shift differ from the server's.
    with tcp_conn(save_syn=True, client_rcvbuf=4096) as (_, cli, srv):
        c = decode_tcp_info(read_tcp_info(cli))
        s = decode_tcp_info(read_tcp_info(srv))
        assert c["rcv_wscale"] != s["rcv_wscale"]
        assert (s["snd_wscale"], s["rcv_wscale"]) == (c["rcv_wscale"], c["snd_wscale"])
        syn = decode_syn(read_saved_syn(srv))
        assert syn is not None and syn["options"]["wscale"] == c["rcv_wscale"]


@needs_linux
def test_truncated_structs_decode_only_covered_fields() -> None:
    with tcp_conn() as (_, cli, _srv):
        raw = read_tcp_info(cli)
    assert raw is not None and len(raw) == tcpinfo.TCP_INFO_SIZE
    full = decode_tcp_info(raw)
    for length in (1, 5, 6, 7, 8, 11, 12, 103, 104, 111, 112, 120, 135, 136, 160, 232, 246, 279):
        d = decode_tcp_info(raw[:length])
        for f in TCP_INFO_FIELDS:
            want = full[f] if SPANS[f][1] <= length else None
            assert d[f] == want, (length, f)
        assert hot_fields(raw[:length]) == tuple(d[n] for n in HOT_FIELDS)
    old = decode_tcp_info(raw[:104])  # 3.x-era struct
    assert old["total_retrans"] == full["total_retrans"] and old["pacing_rate"] is None
    assert decode_tcp_info(raw[:7])["rcv_wscale"] == full["rcv_wscale"]
    assert decode_tcp_info(raw[:7])["delivery_rate_app_limited"] is None
    # A future kernel's longer struct: known fields still decode, the tail is ignored.
    assert decode_tcp_info(raw + bytes(40)) == full
    assert decode_tcp_info(memoryview(raw)) == full


def test_read_functions_return_none_when_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = socket.socket()
    closed.close()
    assert read_tcp_info(closed) is None and read_saved_syn(closed) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert read_tcp_info(udp) is None
        assert enable_save_syn(udp) is False
    monkeypatch.setattr(tcpinfo, "TCP_INFO", None)  # as on a non-Linux host
    for name in ("TCP_SAVE_SYN", "TCP_SAVED_SYN"):
        monkeypatch.setattr(savedsyn, name, None)
    with socket.socket() as s:
        assert read_tcp_info(s) is None and read_saved_syn(s) is None
        assert enable_save_syn(s) is False


@needs_linux
def test_read_tcp_info_on_uvloop_pseudosocket() -> None:
    uvloop = pytest.importorskip("uvloop")
    import asyncio

    seen: dict[str, object] = {}

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen["type"] = type(sock).__name__
            seen["info"] = decode_tcp_info(read_tcp_info(sock))
            seen["syn"] = decode_syn(read_saved_syn(sock))
            writer.close()

        lst = socket.socket()
        enable_save_syn(lst)
        lst.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(handle, sock=lst)
        async with server:
            reader, writer = await asyncio.open_connection(*lst.getsockname())
            await reader.read()
            writer.close()

    uvloop.run(main())
    assert seen["type"] == "PseudoSocket"
    assert seen["info"]["state_name"] in ("ESTABLISHED", "CLOSE_WAIT")  # type: ignore[index]
    assert seen["syn"] is not None and seen["syn"]["flags"] == ["SYN"]  # type: ignore[index]


# --- Saved SYN on real sockets ---------------------------------------------------------------


def check_saved_syn(host: str, version: int) -> None:
    with tcp_conn(host, save_syn=True) as (lst, cli, srv):
        raw = read_saved_syn(srv)
        syn = decode_syn(raw)
        assert syn is not None, raw
        assert syn["ip_version"] == version
        assert syn["dst_port"] == lst.getsockname()[1]
        assert syn["src_port"] == cli.getsockname()[1]
        assert syn["src"] == cli.getsockname()[0] and syn["dst"] == srv.getsockname()[0]
        assert isinstance(syn["isn"], int) and 0 <= syn["isn"] < 2**32
        assert syn["ttl"] > 0 and syn["window"] > 0
        assert syn["flags"][0] == "SYN" and "ACK" not in syn["flags"]
        opts = syn["options"]
        # Loopback MTU 65536 minus IP (20 / 40) and TCP (20) headers.
        assert opts["mss"] == (65495 if version == 4 else 65476)
        assert opts["sack_perm"] and opts["timestamps"] and opts["tsecr"] == 0
        assert opts["option_kinds"] == ["mss", "sackOK", "TS", "nop", "wscale"]
        assert opts["kinds"] == [2, 4, 8, 1, 3] and not opts["malformed"]
        # the rest of the headers, as Linux sends a SYN: DF (IPv4), no IP options, no data
        assert (syn["ack"], syn["urgent_ptr"], syn["payload_len"]) == (0, 0, 0)
        assert syn["ip_options_len"] == 0 and not syn["ip_mbz"] and syn["ip_ecn"] == 0
        if version == 4:
            assert syn["df"] and isinstance(syn["ip_id"], int) and syn["flow_label"] is None
        else:
            assert not syn["df"] and syn["ip_id"] is None and isinstance(syn["flow_label"], int)
        assert options_text(syn).startswith(f"mss {opts['mss']},sackOK,TS val {opts['tsval']}")
        # The kernel frees the saved headers on the first read: later reads get b"".
        assert read_saved_syn(srv) is None
        assert read_saved_syn(cli) is None and read_saved_syn(lst) is None


@needs_linux
def test_saved_syn_ipv4() -> None:
    check_saved_syn("127.0.0.1", 4)


@needs_linux
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_saved_syn_ipv6() -> None:
    check_saved_syn("::1", 6)


@needs_linux
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 on this host")
def test_saved_syn_on_dual_stack_listener_is_ipv4() -> None:
    # The accepted socket reports "::ffff:127.0.0.1", but the SYN on the wire was IPv4.
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as lst:
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        assert enable_save_syn(lst)
        lst.bind(("::", 0))
        lst.listen()
        with socket.create_connection(("127.0.0.1", lst.getsockname()[1]), timeout=5) as cli:
            cli_port = cli.getsockname()[1]
            srv, peer = lst.accept()
            with srv:
                syn = decode_syn(read_saved_syn(srv))
    assert peer[0] == "::ffff:127.0.0.1"
    assert syn is not None and syn["ip_version"] == 4
    assert (syn["src"], syn["src_port"]) == ("127.0.0.1", cli_port)


@needs_linux
def test_no_saved_syn_without_enable() -> None:
    with tcp_conn() as (_, _cli, srv):
        assert read_saved_syn(srv) is None


# --- decode_syn on hand-built packets --------------------------------------------------------

TCP_OPTS = (
    b"\x02\x04\x05\xb4"  # mss 1460
    + b"\x04\x02"  # sackOK
    + b"\x08\x0a\x00\x00\x30\x39\x00\x00\x00\x00"  # TS val 12345 ecr 0
    + b"\x01"  # nop
    + b"\x03\x03\x07"  # wscale 7
    + b"\x22\x0a\x01\x02\x03\x04\x05\x06\x07\x08"  # tfo cookie 0102030405060708
)  # 30 bytes -> pad to 32 with two EOLs


def tcp_header(flags: int, opts: bytes, ae: bool = False) -> bytes:
    opts += b"\x00" * (-len(opts) % 4)
    doff = (20 + len(opts)) // 4
    return (
        struct.pack("!HHIIBBHHH", 51234, 443, 0xFEDCBA98, 0, doff << 4 | ae, flags, 64240, 0, 0)
        + opts
    )


def ipv4_header(payload_len: int, ttl: int = 57) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 1, 0x4000, ttl, 6, 0,
        socket.inet_pton(socket.AF_INET, "192.0.2.10"),
        socket.inet_pton(socket.AF_INET, "198.51.100.7"),
    )  # fmt: skip


def ipv6_header(payload: bytes, next_header: int = 6, hops: int = 61) -> bytes:
    return struct.pack(
        "!IHBB16s16s", 6 << 28, len(payload), next_header, hops,
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
        socket.inet_pton(socket.AF_INET6, "2001:db8:0:1::2"),
    ) + payload  # fmt: skip


def test_decode_crafted_ipv4_syn() -> None:
    tcp = tcp_header(0x02 | 0x40 | 0x80, TCP_OPTS, ae=True)  # AccECN-style SYN
    syn = decode_syn(ipv4_header(len(tcp)) + tcp)
    assert syn == {
        "ip_version": 4, "ttl": 57, "src": "192.0.2.10", "dst": "198.51.100.7",
        "src_port": 51234, "dst_port": 443, "isn": 0xFEDCBA98, "window": 64240,
        "flags": ["SYN", "ECE", "CWR", "AE"],
        "options": {
            "mss": 1460, "wscale": 7, "sack_perm": True, "timestamps": True,
            "tsval": 12345, "tsecr": 0, "fastopen": True,
            "fastopen_cookie": "0102030405060708",
            "option_kinds": ["mss", "sackOK", "TS", "nop", "wscale", "tfo", "eol"],
            "kinds": [2, 4, 8, 1, 3, 34, 0, 0], "malformed": False,
        },
        "ip_id": 1, "df": True, "ip_mbz": False, "ip_options_len": 0, "flow_label": None,
        "ip_ecn": 0, "ack": 0, "urgent_ptr": 0, "payload_len": 0,
    }  # fmt: skip
    assert options_text(syn) == (
        "mss 1460,sackOK,TS val 12345 ecr 0,nop,wscale 7,tfo cookie 0102030405060708,eol"
    )
    assert options_text(syn["options"]) == options_text(syn)


def test_decode_crafted_ipv6_syn_with_extension_headers() -> None:
    opts = b"\x02\x04\x05\xa0\x01\x01\x04\x02\xfe\x04\xf9\x89"  # mss, nop, nop, sackOK, exp-tfo
    tcp = tcp_header(0x02, opts)
    hop_by_hop = bytes([60, 0]) + b"\x01\x04" + bytes(4)  # next: dest opts; PadN
    dest_opts = bytes([6, 1]) + b"\x01\x0c" + bytes(12)  # next: TCP; 16 bytes
    syn = decode_syn(ipv6_header(hop_by_hop + dest_opts + tcp, next_header=0))
    assert syn is not None
    assert (syn["ip_version"], syn["ttl"]) == (6, 61)
    assert (syn["src"], syn["dst"]) == ("2001:db8::1", "2001:db8:0:1::2")
    assert (syn["src_port"], syn["dst_port"], syn["isn"]) == (51234, 443, 0xFEDCBA98)
    assert syn["flags"] == ["SYN"]
    o = syn["options"]
    assert (o["mss"], o["wscale"], o["sack_perm"], o["timestamps"]) == (1440, None, True, False)
    assert o["kinds"] == [2, 1, 1, 4, 254] and not o["malformed"]
    assert (syn["ip_id"], syn["df"], syn["flow_label"], syn["ip_ecn"]) == (None, False, 0, 0)
    assert syn["payload_len"] == 0  # the extension headers are not data
    assert o["fastopen"] and o["fastopen_cookie"] is None
    assert options_text(syn) == "mss 1440,nop,nop,sackOK,exp-tfo cookiereq"

    plain = decode_syn(ipv6_header(tcp_header(0x02, b"")))
    assert plain is not None and plain["options"]["option_kinds"] == []
    assert options_text(plain) == ""


def test_options_text_odd_options() -> None:
    # bad-length mss, RFC 6994 experiment with an unknown id, an unassigned kind, then EOL.
    opts = b"\x02\x03\x05" + b"\xfe\x04\x12\x34" + b"\x63\x02" + b"\x00"
    tcp = tcp_header(0x02, opts)
    syn = decode_syn(bytearray(ipv4_header(len(tcp)) + tcp))
    assert syn is not None and syn["options"]["mss"] is None
    assert options_text(syn) == "mss,exp-1234,unknown-99,eol"
    assert syn["options"]["kinds"] == [2, 254, 99, 0, 0, 0] and not syn["options"]["malformed"]
    assert options_text(None) == ""


def test_decode_syn_partial_and_garbage_never_raises() -> None:
    tcp = tcp_header(0x02, TCP_OPTS)
    good = [ipv4_header(len(tcp)) + tcp, ipv6_header(tcp)]
    assert decode_syn(None) is None and decode_syn(b"") is None
    assert decode_syn(b"\x45" + bytes(10)) is None  # IPv4 header cut short
    assert decode_syn(b"\x12" * 60) is None  # version 1

    ip_only = decode_syn(good[0][:20])
    assert ip_only is not None and ip_only["src_port"] is None and ip_only["flags"] == []
    ports_only = decode_syn(good[0][:26])
    assert ports_only is not None and ports_only["dst_port"] == 443 and ports_only["isn"] is None

    rng = random.Random(1234)
    samples: list[bytes] = [pkt[:n] for pkt in good for n in range(len(pkt) + 1)]
    for _ in range(3000):
        samples.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120))))
        pkt = bytearray(rng.choice(good))
        for _ in range(rng.randrange(1, 6)):  # flip bytes in a valid packet
            pkt[rng.randrange(len(pkt))] = rng.randrange(256)
        samples.append(bytes(pkt))
    for sample in samples:
        syn = decode_syn(sample)
        options_text(syn)
        if syn is not None:
            assert syn["ip_version"] in (4, 6)

    # Lying option lengths stop option parsing without losing what came before.
    for bad, mss in ((b"\x02\x05\x05\xb4", None), (b"\x02\x00\x05\xb4", None),
                     (b"\x02\x04\x05\xb4\x03\x09\x07\x00", 1460)):  # fmt: skip
        t = tcp_header(0x02, bad)
        d = decode_syn(ipv4_header(len(t)) + t)
        assert d is not None and d["src_port"] == 51234 and d["options"]["mss"] == mss
        assert d["options"]["malformed"]
