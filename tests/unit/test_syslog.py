"""syslog targets: nginx's parameters and errors, the RFC 3164 header nginx writes, and
sending over real UDP and unix datagram sockets — including a receiver that goes away and
comes back (the message in between is dropped, the next one arrives)."""

from __future__ import annotations

import re
import socket

import pytest

from webserv import syslog

HEADER = re.compile(
    r"<(\d{1,3})>([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\S+ )?(\w{1,32}): "
)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("syslog:", 'unknown syslog parameter ""'),
        ("syslog:facility=user", "no syslog server specified"),
        ("syslog:server=127.0.0.1,server=127.0.0.1", 'duplicate syslog "server"'),
        ("syslog:server=127.0.0.1,facility=nope", 'unknown syslog facility "nope"'),
        ("syslog:server=127.0.0.1,severity=loud", 'unknown syslog severity "loud"'),
        (
            "syslog:server=127.0.0.1,tag=a-b",
            'syslog "tag" only allows alphanumeric characters and underscore',
        ),
        ("syslog:server=127.0.0.1,tag=" + "a" * 33, "syslog tag length exceeds 32"),
        (
            "syslog:server=127.0.0.1,tag=",
            'syslog "tag" only allows alphanumeric characters and underscore',
        ),
        ("syslog:server=127.0.0.1,colour=blue", 'unknown syslog parameter "colour=blue"'),
        ("syslog:server=127.0.0.1:x", 'invalid port in syslog server "127.0.0.1:x"'),
        ("syslog:server=127.0.0.1:0", 'invalid syslog server "127.0.0.1:0"'),
        ("syslog:server=[::1", 'invalid syslog server "[::1"'),
        ("syslog:server=unix:", 'invalid syslog server "unix:"'),
    ],
)
def test_refused_as_nginx_words_it(spec, reason):
    with pytest.raises(syslog.SyslogError) as info:
        syslog.parse(spec)
    assert str(info.value) == reason


def test_header_priority_time_host_tag():
    t = syslog.parse("syslog:server=127.0.0.1:9,facility=user,severity=alert,tag=SEETHIS")
    m = HEADER.fullmatch(t.header())
    assert m is not None and int(m.group(1)) == 1 * 8 + 1
    assert m.group(7) == socket.gethostname().lower() + " " and m.group(8) == "SEETHIS"
    assert HEADER.fullmatch(t.header(severity=3)).group(1) == "11"  # an error log level's
    default = syslog.parse("syslog:server=127.0.0.1")
    assert (default.facility, default.severity, default.tag) == (23, 6, "webserv")
    assert default.address == ("127.0.0.1", 514)
    bare = syslog.parse("syslog:nohostname,server=127.0.0.1")
    m = HEADER.fullmatch(bare.header())
    assert m is not None and m.group(7) is None
    assert syslog.level_severity("error") == 3 and syslog.level_severity("warn") == 4


def receiver(family=socket.AF_INET, path=None):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(path or ("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def test_sends_over_udp_and_recovers_when_the_receiver_comes_back():
    rx = receiver()
    port = rx.getsockname()[1]
    t = syslog.parse(f"syslog:server=127.0.0.1:{port},tag=t1")
    assert t.send("one")
    data = rx.recv(65536).decode()
    assert HEADER.match(data) and data.endswith("t1: one")
    rx.close()
    # nobody listens: the kernel's ICMP refusal comes back on the connected socket
    t.send("lost")
    results = [t.send("lost") for _ in range(3)]
    assert False in results  # a refusal was seen, the socket made anew, nothing raised
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the receiver is back
    rx.bind(("127.0.0.1", port))
    rx.settimeout(5)
    assert t.send("back")
    assert rx.recv(65536).decode().endswith("t1: back")
    rx.close()
    t.close()


def test_sends_over_a_unix_socket_and_cuts_long_messages(tmp_path):
    path = str(tmp_path / "log.sock")
    rx = receiver(socket.AF_UNIX, path)
    t = syslog.parse(f"syslog:server=unix:{path}")
    assert t.send("x" * 10000)
    data = rx.recv(65536)
    assert len(data) == syslog.MAX_MESSAGE and data.endswith(b"x")
    rx.close()
    t.close()
