"""`listen HOST:FIRST-LAST` (nginx's port ranges): one address for each port of the range,
each answering as the one server; errors with file:line as nginx words them."""

from __future__ import annotations

import socket

import pytest
from support import RawConn, RunningServer

from webserv.config import ConfigError, load


def free_range(count: int) -> int:
    """The first of COUNT consecutive free loopback ports (checked by binding them)."""
    for first in range(20000, 60000, 97):
        socks = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free range")


def test_every_port_of_the_range_answers(tmp_path):
    first = free_range(3)
    conf = (
        "http {{ access_log off; server {{ listen 127.0.0.1:"
        + f"{first}-{first + 2}"
        + '; location / {{ return 200 "$server_port"; }} }} }}\n'
    )
    srv = RunningServer(tmp_path, conf)
    srv.ports = [first, first + 1, first + 2]  # (what start() waits for)
    srv.port = first
    srv.start()
    try:
        for port in range(first, first + 3):
            with RawConn(port) as conn:
                conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert conn.response()[::2] == (200, str(port).encode())
        with pytest.raises(OSError):  # and no more than the range
            socket.create_connection(("127.0.0.1", first + 3), timeout=2).close()
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (
            "127.0.0.1:8002-8000",
            'invalid port range in "127.0.0.1:8002-8000" in "listen" directive',
        ),
        ("127.0.0.1:8000-", 'invalid port in "127.0.0.1:8000-" in "listen" directive'),
        ("127.0.0.1:0-5", 'invalid port in "127.0.0.1:0-5" in "listen" directive'),
        ("127.0.0.1:8000-70000", 'invalid port in "127.0.0.1:8000-70000" in "listen" directive'),
    ],
)
def test_bad_ranges_are_refused(tmp_path, address, reason):
    conf = tmp_path / "webserv.conf"
    conf.write_text("http {\n    server {\n        listen " + address + ";\n    }\n}\n")
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (3, reason)


def test_a_range_overlapping_another_listen_is_a_duplicate(tmp_path):
    conf = tmp_path / "webserv.conf"
    conf.write_text(
        "http {\n    server {\n        listen 127.0.0.1:8001;\n"
        "        listen 127.0.0.1:8000-8002;\n    }\n}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert info.value.line == 4 and "duplicate listen" in info.value.message
