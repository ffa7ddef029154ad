"""lifecycle.Record.to_json: pinned against a reference copy of the implementation it replaced.

The reference below is Record.to_json and its helpers as they were before to_json was made
cheaper (a full decode of both TCP_INFO buffers, round() per timestamp), copied verbatim but
for `self` becoming `record` and the three SYN fingerprints added since (ref_syn_json). Every shape of record is built from crafted inputs (fake
connections and sockets, synthetic TCP_INFO structs of every length, crafted SYNs) and from
real loopback sockets, and the two outputs must be equal as dicts and as orjson bytes (which
also checks key order, int versus float, and -0.0).
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import struct
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from support import ipv6_loopback

from webserv import lifecycle_json, savedsyn, synprint, tcpinfo
from webserv.lifecycle import SAMPLE_AFTER, SAMPLE_EVERY, Record
from webserv.lifecycle_json import ENTRY, PEER_FIN_STATES

LINUX = sys.platform.startswith("linux")
needs_linux = pytest.mark.skipif(not LINUX, reason="TCP_INFO and TCP_SAVED_SYN are Linux-only")

# --- the reference: to_json and its helpers before the change -------------------------------


def ref_to_json(record: Record, live: Any = None) -> dict[str, Any]:
    """Everything about the connection, decoded; `live` is the open connection, if any."""
    syn = record.syn_info()
    accept = tcpinfo.decode_tcp_info(record.info_accept) if record.info_accept else None
    info_now = record.info_close
    if live is not None:
        info_now = tcpinfo.read_tcp_info(live) or info_now
    close = tcpinfo.decode_tcp_info(info_now) if info_now else None
    t0 = record.accepted
    requests = [ref_request_json(entry, t0) for entry in record.kept_requests()]
    return {
        "id": record.id,
        "open": live is not None,
        "family": "ipv6" if ":" in record.remote_addr else "ipv4",
        "client": {"addr": record.remote_addr, "port": record.remote_port},
        # the SYN was addressed to the server: its destination is our local address
        "server": {
            "addr": syn["dst"] if syn else None,
            "port": syn["dst_port"] if syn else record.listen_port,
        },
        "accepted_at": record.accepted,
        "closed_at": record.closed or None,
        "duration_ms": ref_ms(record.closed - record.accepted) if record.closed else None,
        "syn": ref_syn_json(syn),
        "syn_reason": None if syn else record.syn_reason(),  # added since (SYN cookies)
        "handshake": ref_handshake_json(accept),
        "tls": None,  # a plain connection's (the TLS block: tests/tls)
        "requests": requests,
        "request_count": record.request_count,
        "requests_sampled": None
        if record.request_count <= SAMPLE_AFTER
        else {"after": SAMPLE_AFTER, "every": SAMPLE_EVERY, "last": True},
        "close": None
        if not record.closed
        else {
            "closed_by": record.closed_by,
            "reason": record.close_reason,
            "client_fin_received": record.peer_fin,
            "server_sent_reset": record.reset_sent,
        },
        "tcp_info": close,
        "sequence": ref_sequence_json(syn, close, record.peer_fin, record.bytes_out),
        "wire": None,  # without lifecycle_capture (the wire: tests/unit/test_capture.py)
    }


def ref_data_bytes(
    received: int | None, acked: int | None, sent: int | None, retrans: int | None, fin: bool
) -> tuple[int | None, int | None]:
    data_in = None if received is None else received - (1 if fin and received else 0)
    data_out = acked
    if acked is not None and sent is not None and retrans is not None:
        data_out = min(acked, sent - retrans)
    return data_in, data_out


def ref_request_json(entry: bytes, t0: float) -> dict[str, Any]:
    begin, headers, body, response, done, status, minor, bytes_in, bytes_out, number = (
        ENTRY.unpack_from(entry)
    )
    method, _, target = entry[ENTRY.size :].partition(b" ")
    # a stage that took no timestamp of its own happened with the one before it
    headers = headers or begin
    body = body or headers
    response = response or body
    return {
        "n": number,
        "method": method.decode("latin-1"),
        "target": target.decode("latin-1"),
        "version": f"HTTP/1.{minor}",
        "status": status,
        "t_begin_ms": ref_ms(begin - t0),
        "t_headers_ms": ref_ms(headers - t0),
        "t_body_ms": ref_ms(body - t0),
        "t_response_ms": ref_ms(response - t0),
        "t_done_ms": ref_ms(done - t0),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


def ref_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def ref_syn_json(syn: dict[str, Any] | None) -> dict[str, Any] | None:
    if syn is None:
        return None
    out = dict(syn)
    out["options_text"] = savedsyn.options_text(syn)
    # added since the copy was taken: the SYN's fingerprints (tested in test_synprint.py)
    out["ja4t"] = synprint.ja4t(syn)
    out["signature"] = synprint.signature(syn)
    out["os_family"] = synprint.os_family(syn)
    return out


def ref_handshake_json(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "rtt_us": info["rtt"],
        "rttvar_us": info["rttvar"],
        "snd_mss": info["snd_mss"],
        "rcv_mss": info["rcv_mss"],
        "advmss": info["advmss"],
        "snd_wscale": info["snd_wscale"],
        "rcv_wscale": info["rcv_wscale"],
        "options": info["options_names"],
        "accept_queue_ms": info["last_ack_recv"],
        "state": info["state_name"],
    }


def ref_sequence_json(
    syn: dict[str, Any] | None, info: dict[str, Any] | None, fin: bool, sent: int
) -> dict[str, Any]:
    if info:
        fin = fin or info["state"] in PEER_FIN_STATES  # an open, half-closed connection
        fields = ("bytes_received", "bytes_acked", "bytes_sent", "bytes_retrans")
        data_in, acked = ref_data_bytes(*(info[f] for f in fields), fin)
    else:
        data_in = acked = None
    out: dict[str, Any] = {
        "client_isn": syn["isn"] if syn else None,
        "client_data_bytes": data_in,
        "server_isn_visible": False,
        "server_data_bytes_acked": acked,
        "server_data_bytes_sent": sent,  # by webserv's own count: what its FIN follows
    }
    if syn and data_in is not None:
        isn = syn["isn"]
        out["client_first_seq"] = (isn + 1) % 2**32
        out["client_next_seq"] = (isn + 1 + data_in) % 2**32
    return out


# --- building records -----------------------------------------------------------------------


class FakeSock:
    """getsockopt answers from fixed bytes (None: the option fails, as on a closed socket)."""

    def __init__(self, syn: bytes | None = None, info: bytes | None = None) -> None:
        self.answers = {savedsyn.TCP_SAVED_SYN: syn, tcpinfo.TCP_INFO: info}

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> bytes:
        raw = self.answers.get(optname)
        if raw is None:
            raise OSError("no such option here")
        return raw[:buflen] if buflen else raw


def fake_conn(addr: str = "192.0.2.10", port: int = 51234, **close: Any) -> SimpleNamespace:
    conn = SimpleNamespace(
        id=42, remote_addr=addr, remote_port=port,
        listener=SimpleNamespace(address=SimpleNamespace(port=8080)),
        closed_by="client", close_reason="eof", peer_eof=True, aborted=False,
    )  # fmt: skip
    conn.__dict__.update(close)
    return conn


def exchange(rng: random.Random, t0: float, i: int) -> SimpleNamespace:
    """A request's exchange with timestamps around t0: some stages without one (0.0), some
    deltas on exact half-millisecond-thousandths, negative ones, and big and odd numbers."""
    start = t0 + rng.choice((0.0, i * 0.0005, rng.uniform(-0.01, 2.0), 0.0000005 * i))
    stamps = [start]
    for _ in range(4):
        stamps.append(
            rng.choice((0.0, stamps[-1] or start, (stamps[-1] or start) + rng.uniform(0, 0.2)))
        )
    return SimpleNamespace(
        start=stamps[0], t_headers=stamps[1], t_body=stamps[2], t_response=stamps[3],
        t_done=stamps[4] or start + 0.0015,
        status=rng.choice((200, 204, 301, 404, 500, 101)), minor=rng.choice((0, 1)),
        request_length=rng.choice((0, 27, 2**40)), bytes_sent=rng.choice((0, 500, 2**33)),
        method=rng.choice(("GET", "POST", "M-SEARCH", "")),
        raw_target=rng.choice((b"/", b"/caf\xe9?q=1 2", b"*", b"", b"http://h/x")),
        tcp_start=None, tcp_end=None,  # lifecycle_request_tcpinfo off
    )  # fmt: skip


def synthetic_info(rng: random.Random, state: int | None = None) -> bytes:
    """A full struct tcp_info with random values in every field (bitfields included)."""
    values, names = [], [name for name, _ in tcpinfo._LAYOUT]
    for _, code in tcpinfo._LAYOUT:
        bits = 8 * struct.calcsize(code)
        values.append(rng.choice((0, 1, rng.getrandbits(bits), 2**bits - 1)))
    values[0] = state if state is not None else rng.choice((1, 4, 6, 7, 8, 9, 11, 12, 200))
    values[-1] = rng.choice((0, values[-1]))  # the AccECN word: 0 on almost every connection
    # a kernel never counts more bytes retransmitted than sent (orjson refuses ints < -2**63)
    sent, resent = (names.index(n) for n in ("bytes_sent", "bytes_retrans"))
    values[resent] = min(values[resent], values[sent])
    return struct.pack("=" + "".join(code for _, code in tcpinfo._LAYOUT), *values)


TCP_OPTS = (
    b"\x02\x04\x05\xb4"  # mss 1460
    + b"\x04\x02"  # sackOK
    + b"\x08\x0a\x00\x00\x30\x39\x00\x00\x00\x00"  # TS val 12345 ecr 0
    + b"\x01"  # nop
    + b"\x03\x03\x07"  # wscale 7
    + b"\x22\x0a\x01\x02\x03\x04\x05\x06\x07\x08"  # tfo cookie
)


def tcp_header(opts: bytes, isn: int = 0xFEDCBA98) -> bytes:
    opts += b"\x00" * (-len(opts) % 4)
    doff = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", 51234, 443, isn, 0, doff << 4, 0x02, 64240, 0, 0) + opts


def ipv4_syn(opts: bytes = TCP_OPTS, isn: int = 0xFEDCBA98) -> bytes:
    tcp = tcp_header(opts, isn)
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 57, 6, 0,
            socket.inet_pton(socket.AF_INET, "192.0.2.10"),
            socket.inet_pton(socket.AF_INET, "198.51.100.7"),
        )
        + tcp
    )  # fmt: skip


def ipv6_syn(opts: bytes = TCP_OPTS, isn: int = 0xFFFFFFFF) -> bytes:
    tcp = tcp_header(opts, isn)
    return (
        struct.pack(
            "!IHBB16s16s", 6 << 28, len(tcp), 6, 61,
            socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
            socket.inet_pton(socket.AF_INET6, "2001:db8:0:1::2"),
        )
        + tcp
    )  # fmt: skip


SYNS = {
    "none": None,
    "ipv4": ipv4_syn(),
    "ipv6": ipv6_syn(),
    "ipv4-no-options": ipv4_syn(b"", isn=0),
    "ipv4-cut-after-ports": ipv4_syn()[:26],  # no ISN: isn None
    "ipv4-ip-only": ipv4_syn()[:20],
    "garbage": b"\x12" * 60,  # decodes to None
}


def build(
    rng: random.Random,
    syn: bytes | None,
    info_accept: bytes | None,
    info_close: bytes | None,
    n_requests: int,
    closed: bool = True,
    flush: bool = True,
    addr: str = "192.0.2.10",
    **close: Any,
) -> Record:
    t0 = 1_700_000_000.0 + rng.random()
    conn = fake_conn(addr, **close)
    record = Record(conn, FakeSock(syn, info_accept), t0)
    for i in range(n_requests):
        record.request_done(exchange(rng, t0, i))
    if closed:
        sock = FakeSock(info=info_close) if rng.random() < 0.9 else None
        record.close(conn, sock, t0 + rng.choice((0.0000005, 0.25, rng.uniform(0, 100))))
        if flush:
            record.flush_last()
    return record


def check(record: Record, live: Any = None) -> dict[str, Any] | None:
    got = record.to_json(live)  # first: on a record that has decoded nothing yet
    try:
        want = ref_to_json(record, live)
    except TypeError:
        # the reference's one fault, fixed since: a SYN cut before its ISN, with close-time
        # byte counts, made its sequence numbers None + 1; now they are just not given
        assert record.syn_info() is not None and record.syn_info()["isn"] is None
        assert "client_first_seq" not in got["sequence"]
        assert got["sequence"]["client_isn"] is None
        return None
    assert got == want
    assert orjson.dumps(got) == orjson.dumps(want)
    # and again: whatever to_json keeps between calls must not change what it says
    assert orjson.dumps(record.to_json(live)) == orjson.dumps(want)
    return got


# --- crafted inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("syn", list(SYNS), ids=list(SYNS))
@pytest.mark.parametrize("n_requests", [0, 1, 3, 32, 33, 34, 47, 48, 49, 100])
def test_crafted_records(syn: str, n_requests: int) -> None:
    rng = random.Random(f"{syn}-{n_requests}")
    for _ in range(4):
        record = build(rng, SYNS[syn], synthetic_info(rng), synthetic_info(rng), n_requests)
        check(record)


@pytest.mark.parametrize("n_requests", [0, 3, 33, 40])
def test_pending_last_request_and_open_records(n_requests: int) -> None:
    rng = random.Random(n_requests)
    info = synthetic_info(rng)
    # closed, not yet flushed (the sampled-out last request is still pending)
    check(build(rng, SYNS["ipv4"], info, synthetic_info(rng), n_requests, flush=False))
    # open: without `live`, and with a live socket whose TCP_INFO is read afresh
    record = build(rng, SYNS["ipv4"], info, None, n_requests, closed=False)
    check(record)
    check(record, live=FakeSock(info=synthetic_info(rng)))
    check(record, live=FakeSock(info=None))  # the read fails: the record's own (none)
    # live after close: a fresh read wins over the close-time one, a failed one does not
    record = build(rng, SYNS["ipv6"], info, synthetic_info(rng), n_requests, addr="2001:db8::1")
    check(record, live=FakeSock(info=synthetic_info(rng)))
    check(record, live=FakeSock(info=None))


def test_every_tcp_info_length() -> None:
    """Older kernels' shorter structs (and none at all), at accept and at close."""
    rng = random.Random(7)
    for length in range(tcpinfo.TCP_INFO_SIZE + 1):
        short = synthetic_info(rng)[:length] or None
        check(build(rng, SYNS["ipv4"], short, synthetic_info(rng), 2))
        check(build(rng, SYNS["ipv4"], synthetic_info(rng), short, 2))
        check(build(rng, SYNS["none"], short, short, 1))
        check(build(rng, SYNS["ipv4"], None, short, 0, peer_eof=False, aborted=True))


@pytest.mark.parametrize("state", sorted({1, 4, 5, 7, 12} | PEER_FIN_STATES))
def test_fin_states_and_close_variants(state: int) -> None:
    rng = random.Random(state)
    for peer_eof in (False, True):
        for aborted in (False, True):
            close = synthetic_info(rng, state=state)
            record = build(
                rng, SYNS["ipv6"], None, close, 1, addr="2001:db8::1",
                peer_eof=peer_eof, aborted=aborted, closed_by=rng.choice(("server", "client")),
            )  # fmt: skip
            check(record)
            check(record, live=FakeSock(info=synthetic_info(rng, state=state)))
    # bytes_received 0 with a FIN; bytes counters all zero
    zeros = struct.pack("=" + "".join(c for _, c in tcpinfo._LAYOUT), *[0] * len(tcpinfo._LAYOUT))
    check(build(rng, SYNS["ipv4"], zeros, zeros, 0))
    check(build(rng, SYNS["ipv4"], zeros, zeros[:120], 0, peer_eof=False))


def test_ms_rounds_exactly_as_round() -> None:
    """The millisecond rounding, bit for bit as round(seconds * 1000, 3), sign of zero too."""
    rng = random.Random(3)
    samples = [0.0, -0.0, 1e-300, -1e-300, 0.0625, -0.0625, 4.5e12, -4.6e12, 1e300, -1e300]
    samples += [(k + 0.5) / 1e6 for k in range(-3000, 3000)]  # ties, as near as doubles get
    samples += [k / 2e6 for k in range(-3000, 3000)]
    samples += [rng.uniform(-2, 2) for _ in range(50000)]
    samples += [rng.uniform(-1e-6, 1e-6) for _ in range(5000)]
    t0 = 1_700_000_000.0
    samples += [(t0 + rng.random() * 100) - t0 for _ in range(20000)]  # timestamp differences
    samples += [0.0 - t0, math.inf, -math.inf]
    while len(samples) < 120000:  # any double at all
        x = struct.unpack("=d", rng.randbytes(8))[0]
        if not math.isnan(x):
            samples.append(x)
    for x in samples:
        want = ref_ms(x)
        assert struct.pack("=d", lifecycle_json.ms(x)) == struct.pack("=d", want), x
    assert math.isnan(lifecycle_json.ms(math.nan))


# --- real sockets ---------------------------------------------------------------------------


@contextlib.contextmanager
def loopback(host: str) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server-side accepted socket), the listener saving SYNs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        lst = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        assert savedsyn.enable_save_syn(lst)
        lst.bind((host, 0))
        lst.listen(8)
        cli = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        cli.settimeout(5)
        cli.connect(lst.getsockname()[:2])
        srv, _ = lst.accept()
        stack.enter_context(srv)
        srv.settimeout(5)
        yield cli, srv


class Frozen:
    """A socket's TCP_INFO read once, so both implementations see the same live bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = tcpinfo.read_tcp_info(sock)

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> bytes:
        if self.raw is None:
            raise OSError
        return self.raw


@needs_linux
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_real_loopback_connection(host: str) -> None:
    if ":" in host and not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    rng = random.Random(host)
    with loopback(host) as (cli, srv):
        peer = srv.getpeername()
        conn = fake_conn(peer[0], peer[1], closed_by="client", peer_eof=False)
        t0 = time.time()
        record = Record(conn, srv, t0)
        assert record.syn is not None and record.info_accept is not None
        for i in range(3):
            cli.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            srv.recv(1000)
            srv.sendall(b"x" * 500)
            cli.recv(1000)
            record.request_done(exchange(rng, t0, i))
        check(record, live=Frozen(srv))  # open, as the status page shows it
        cli.close()
        deadline = time.monotonic() + 2
        while tcpinfo.decode_tcp_info(tcpinfo.read_tcp_info(srv))["state"] != 8:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        record.close(conn, srv, time.time())
        record.flush_last()
    got = check(record)
    assert got is not None and got["syn"] is not None and got["handshake"]["rtt_us"] is not None
    assert got["tcp_info"]["state_name"] == "CLOSE_WAIT"
    assert got["family"] == ("ipv6" if ":" in host else "ipv4")
