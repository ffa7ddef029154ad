"""Why a connection has no saved SYN: savedsyn.no_syn_reason from its raw inputs, what
missing_syn reads from a socket, Record.syn_reason joining the two, their count in Stats
(and through the scoreboard's flat row), and the kernel's TcpExt counters on /metrics.

The real SYN cookie is made by the kernel in tests/lifecycle/test_syncookies.py (a network
namespace with net.ipv4.tcp_syncookies=2); here only what needs no namespace: a loopback
listener with and without TCP_SAVE_SYN.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from test_record_json import SYNS, fake_conn

from webserv import netstat, savedsyn, tcpinfo
from webserv.lifecycle import Record
from webserv.metrics import registry_for
from webserv.netstat import read_tcpext
from webserv.savedsyn import NO_SAVED_SYN_OPTION, SAVED_SYN_FAILED, no_syn_reason
from webserv.stats import FLAT_SIZE, Stats

needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_SAVE_SYN is Linux-only"
)

# --- the decision, from raw inputs -----------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "ipv6", "rtt", "mss", "usec", "want"),
    [
        # what cookies look like (seen on Linux 6.18 with tcp_syncookies=2 over loopback):
        (1, False, 3000, 1448, False, "syncookie"),  # timestamps: RTT from the echoed TS
        (1, False, 0, 1460, False, "syncookie"),  # no timestamps: no RTT sample at all
        (2, False, 5000, 1448, False, "syncookie"),  # TCP_SAVE_SYN=2 (with the MAC header)
        (1, False, None, None, False, "syncookie"),  # no TCP_INFO: nothing rules it out
        (1, True, 1000, 8940 - 12, False, "syncookie"),  # IPv6's table goes to 9000 - 60
        (1, True, 1000, 8940, False, "syncookie"),
        (1, False, 1000, 536, False, "syncookie"),
        # the same, but TCP_INFO rules a cookie out: a SYN that came through the SYN queue
        (1, False, 30, 1448, False, "not_saved"),  # an RTT in microseconds: SYN-ACK timed
        (1, False, 3001, 1448, False, "not_saved"),
        (1, False, 3000, 1461, False, "not_saved"),  # no cookie carries an MSS above 1460
        (1, False, 3000, 32768, False, "not_saved"),  # loopback's, through the SYN queue
        (1, True, 1000, 8941, False, "not_saved"),
        (1, False, 1234, 1448, True, "syncookie"),  # microsecond timestamps: any RTT
        (None, False, 3000, 1448, False, "not_saved"),  # no evidence: no claim
        # the listener never asked, the read failed, the platform has no such option
        (0, False, 3000, 1448, False, "save_syn_off"),
        (0, False, 30, 32768, False, "save_syn_off"),
        (SAVED_SYN_FAILED, False, 3000, 1448, False, "unreadable"),
        (NO_SAVED_SYN_OPTION, False, 3000, 1448, False, "unsupported"),
    ],
)
def test_no_syn_reason(
    evidence: int | None, ipv6: bool, rtt: int | None, mss: int | None, usec: bool, want: str
) -> None:
    assert no_syn_reason(evidence, ipv6, rtt, mss, usec) == want
    assert want in savedsyn.SYN_REASONS


def test_cookie_mss_bounds_are_the_kernels_tables() -> None:
    # net/ipv4/syncookies.c and net/ipv6/syncookies.c, msstab[]: the largest entry
    assert savedsyn.COOKIE_MSS_MAX == {
        4: max(536, 1300, 1440, 1460),
        6: max(1220, 1420, 1440, 8940),
    }


# --- missing_syn: what the socket says -------------------------------------------------------


class Sock:
    """getsockopt answers: TCP_SAVED_SYN's bytes (or an errno), TCP_SAVE_SYN's int."""

    def __init__(self, saved: bytes | int = b"", save_syn: int | None = 1) -> None:
        self.saved, self.save_syn = saved, save_syn
        self.calls: list[int] = []

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        self.calls.append(optname)
        assert level == socket.IPPROTO_TCP
        if optname == savedsyn.TCP_SAVED_SYN:
            if isinstance(self.saved, int):
                raise OSError(self.saved, "failed")
            return self.saved
        if optname == savedsyn.TCP_SAVE_SYN:
            if self.save_syn is None:
                raise OSError(errno.ENOPROTOOPT, "no such option")
            assert buflen is None  # an int option
            return self.save_syn
        raise AssertionError(optname)


@needs_linux
def test_missing_syn_reads_the_accepted_sockets_own_save_syn() -> None:
    assert savedsyn.missing_syn(Sock(b"", 1)) == 1
    assert savedsyn.missing_syn(Sock(b"", 0)) == 0
    assert savedsyn.missing_syn(Sock(b"", 2)) == 2
    # a failing TCP_SAVED_SYN (EINVAL: a SYN longer than the buffer) is not an empty one
    assert savedsyn.missing_syn(Sock(errno.EINVAL, 1)) == SAVED_SYN_FAILED
    assert savedsyn.missing_syn(Sock(b"", None)) == SAVED_SYN_FAILED


def test_missing_syn_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savedsyn, "TCP_SAVED_SYN", None)
    sock = Sock()
    assert savedsyn.missing_syn(sock) == NO_SAVED_SYN_OPTION
    assert sock.calls == []


# --- Record.syn_reason: only asked when there is no SYN -------------------------------------

NAMES = [name for name, _ in tcpinfo._LAYOUT]
FORMAT = "=" + "".join(code for _, code in tcpinfo._LAYOUT)


def info(**fields: int) -> bytes:
    values = [0] * len(NAMES)
    values[0] = 1  # ESTABLISHED
    for name, value in fields.items():
        values[NAMES.index(name)] = value
    return struct.pack(FORMAT, *values)


COOKIE_INFO = info(rtt=3000, snd_mss=1448, options=7)  # TS, SACK, wscale: decoded from the TS
QUEUED_INFO = info(rtt=30, snd_mss=32768, options=7)  # loopback through the SYN queue


class RecordSock(Sock):
    """A Sock that also answers TCP_INFO."""

    def __init__(self, saved: bytes | int = b"", save_syn: int | None = 1, tcp: bytes = b""):
        super().__init__(saved, save_syn)
        self.tcp = tcp

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        if optname == tcpinfo.TCP_INFO:
            return self.tcp
        return super().getsockopt(level, optname, buflen)


def record(sock: RecordSock, addr: str = "192.0.2.10") -> Record:
    return Record(fake_conn(addr), sock, 1_700_000_000.0)


@needs_linux
@pytest.mark.parametrize(
    ("saved", "save_syn", "tcp", "addr", "want"),
    [
        (b"", 1, COOKIE_INFO, "192.0.2.10", "syncookie"),
        (b"", 1, QUEUED_INFO, "192.0.2.10", "not_saved"),
        (b"", 0, COOKIE_INFO, "192.0.2.10", "save_syn_off"),
        (errno.EINVAL, 1, COOKIE_INFO, "192.0.2.10", "unreadable"),
        (b"", 1, info(rtt=2000, snd_mss=8928, options=7), "2001:db8::1", "syncookie"),
        (b"", 1, info(rtt=2000, snd_mss=8928, options=7), "192.0.2.10", "not_saved"),
        (b"", 1, info(rtt=2345, snd_mss=1448, options=7 | 64), "192.0.2.10", "syncookie"),
        (b"", 1, b"", "192.0.2.10", "syncookie"),  # no TCP_INFO: nothing rules it out
        (SYNS["ipv4"], 1, QUEUED_INFO, "192.0.2.10", None),  # the SYN is there
        (SYNS["ipv4"], 0, COOKIE_INFO, "192.0.2.10", None),
        (b"\x00" * 20, 1, QUEUED_INFO, "192.0.2.10", "undecodable"),
    ],
)
def test_record_syn_reason(
    saved: bytes | int, save_syn: int, tcp: bytes, addr: str, want: str | None
) -> None:
    sock = RecordSock(saved, save_syn, tcp)
    rec = record(sock, addr)
    assert rec.syn_reason() == want
    got = rec.to_json()
    assert got["syn_reason"] == want
    assert (got["syn"] is None) == (want is not None)


@needs_linux
def test_a_record_with_its_syn_asks_nothing_more() -> None:
    """The normal case pays no extra getsockopt: one TCP_SAVED_SYN, one TCP_INFO."""
    sock = RecordSock(SYNS["ipv4"], 1, QUEUED_INFO)
    rec = record(sock)
    assert sock.calls == [savedsyn.TCP_SAVED_SYN]  # (TCP_INFO is RecordSock's own answer)
    with pytest.raises(AttributeError):
        rec.syn_missing  # noqa: B018 - the slot is never set
    sock = RecordSock(b"", 1, COOKIE_INFO)
    record(sock)
    assert sock.calls == [savedsyn.TCP_SAVED_SYN, savedsyn.TCP_SAVED_SYN, savedsyn.TCP_SAVE_SYN]


@needs_linux
@pytest.mark.parametrize("save", [0, 1])
def test_real_listener_with_and_without_save_syn(save: int) -> None:
    """A real loopback connection: with TCP_SAVE_SYN its SYN is there; without it the
    accepted socket's TCP_SAVE_SYN is 0 (inherited from the listener): save_syn_off."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        if save:
            assert savedsyn.enable_save_syn(listener)
        with socket.create_connection(listener.getsockname()) as client:
            server, _ = listener.accept()
            with server:
                conn = fake_conn("127.0.0.1", client.getsockname()[1])
                rec = Record(conn, server, 1_700_000_000.0)
                if save:
                    assert rec.syn is not None and rec.syn_reason() is None
                    assert rec.to_json()["syn"]["src_port"] == client.getsockname()[1]
                else:
                    assert rec.syn is None and rec.syn_missing == 0
                    assert rec.syn_reason() == "save_syn_off"


# --- the counts --------------------------------------------------------------------------


@needs_linux
def test_stats_count_records_without_syn_by_reason() -> None:
    batch = [
        (record(RecordSock(b"", 1, COOKIE_INFO)), None),
        (record(RecordSock(b"", 1, COOKIE_INFO)), None),
        (record(RecordSock(SYNS["ipv4"], 1, QUEUED_INFO)), None),
        (record(RecordSock(b"", 0, QUEUED_INFO)), None),
        (record(RecordSock(b"", 1, QUEUED_INFO)), None),
    ]
    s = Stats()
    s.open_now = len(batch)
    s.records_closed(batch)
    assert s.without_syn == {
        "syncookie": 2, "not_saved": 1, "save_syn_off": 1,
        "unreadable": 0, "unsupported": 0, "undecodable": 0,
    }  # fmt: skip
    assert s.by_os["unknown"] == 4
    assert s.to_json()["connections_without_syn"]["syncookie"] == 2
    # a batch with every SYN there counts nothing here
    s.records_closed([(record(RecordSock(SYNS["ipv4"], 1, QUEUED_INFO)), None)])
    assert sum(s.without_syn.values()) == 4

    # across processes: the scoreboard's flat row carries them
    row = s.flat()
    assert len(row) == FLAT_SIZE
    total = Stats()
    total.add_flat(row)
    total.add_flat(row)
    assert total.without_syn["syncookie"] == 4
    assert total.by_os == {k: 2 * v for k, v in s.by_os.items()}

    text = generate_latest(registry_for(total, [], None)).decode()
    assert 'webserv_connections_without_syn_total{reason="syncookie"} 4.0' in text
    assert 'webserv_connections_without_syn_total{reason="save_syn_off"} 2.0' in text


TCPEXT = """\
TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts ListenOverflows ListenDrops
TcpExt: 7 5 1 0 3 4
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
"""


def test_read_tcpext(tmp_path: Path) -> None:
    path = tmp_path / "netstat"
    path.write_text(TCPEXT)
    got = read_tcpext(str(path))
    assert got["SyncookiesSent"] == 7 and got["ListenDrops"] == 4 and "InNoRoutes" not in got
    assert read_tcpext(str(tmp_path / "absent")) == {}
    path.write_text("IpExt: A\nIpExt: 1\n")
    assert read_tcpext(str(path)) == {}


def test_kernel_counters_on_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "netstat"
    path.write_text(TCPEXT)
    monkeypatch.setattr(netstat, "NETSTAT", str(path))
    text = generate_latest(registry_for(Stats(), [], None)).decode()
    for line in (
        "webserv_kernel_syncookies_sent_total 7.0",
        "webserv_kernel_syncookies_recv_total 5.0",
        "webserv_kernel_syncookies_failed_total 1.0",
        "webserv_kernel_listen_overflows_total 3.0",
        "webserv_kernel_listen_drops_total 4.0",
    ):
        assert line in text.splitlines()
    # no such file (not Linux, no /proc): no kernel counters, the rest as before
    monkeypatch.setattr(netstat, "NETSTAT", str(tmp_path / "absent"))
    text = generate_latest(registry_for(Stats(), [], None)).decode()
    assert "webserv_kernel_" not in text
    assert "webserv_connections_without_syn_total" in text
