"""`listen ... proxy_protocol` on a real webserv, over raw sockets: v1 and v2 headers sent by
hand, whole, split byte by byte, with pipelined requests behind them; the trusted balancer's
client as $remote_addr (access log, CGI), an untrusted one refused, a listener without
set_real_ip_from keeping the peer; and every class of bad header: closed without an answer,
logged once at info, no traceback, the server serving the next one.

The client binds 127.0.0.1 (the "balancer"); the visitor in the headers is 203.0.113.7."""

from __future__ import annotations

import socket
import sys
import time

import pytest
from proxy_support import (
    GET,
    GET_CLOSE,
    MARK,
    connect,
    error_lines,
    lifecycle_record,
    v1_header,
    v2_header,
    wait_error_line,
)
from support import RawConn, RunningServer, read_until_close, wait_until

from webserv.proxy_protocol import V1_MAX, V2_MAX_LENGTH, V2_SIGNATURE

CONF = """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    log_format pp '$remote_addr $remote_port $proxy_protocol_addr $proxy_protocol_port '
                  '$proxy_protocol_server_addr $proxy_protocol_server_port $server_port '
                  '"$request" $status $connection';
    access_log {tmp}/logs/access.log pp;
    lifecycle_log {tmp}/lifecycle.log;
    client_header_timeout 2s;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        set_real_ip_from 127.0.0.0/8;
        set_real_ip_from ::1;
        real_ip_header proxy_protocol;
        root {root};
        location /cgi-bin/ {{
            cgi .py PYTHON;
        }}
    }}
    server {{
        listen 127.0.0.1:{port2} proxy_protocol;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header proxy_protocol;
        root {root};
    }}
    server {{
        listen 127.0.0.1:{port3} proxy_protocol;
        root {root};
    }}
    server {{
        listen 127.0.0.1:{port4};
        root {root};
        location = /status {{
            status on;
        }}
    }}
}}
"""

ENV_SCRIPT = """import os
print("Content-Type: text/plain")
print()
print(os.environ["REMOTE_ADDR"], os.environ["REMOTE_PORT"])
"""
VISITOR, VISITOR_PORT, DST, DST_PORT = "203.0.113.7", 40000, "198.51.100.1", 443


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    text = CONF.replace("PYTHON", sys.executable)
    files = {"index.html": "hello\n", "cgi-bin/env.py": ENV_SCRIPT}
    srv = RunningServer(tmp_path_factory.mktemp("proxy"), text, files, ports=4)
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.stderr_path.read_text()
    assert "Traceback" not in srv.error_log.read_text()


def _line_of(server: RunningServer, conn_id_marker: str) -> str:
    def find():
        return [line for line in server.access_lines() if conn_id_marker in line]

    return wait_until(find)[-1]


def _served(server: RunningServer, port: int | None = None) -> bool:
    """A fresh connection with a valid header is still answered."""
    with connect(port or server.port) as sock:
        sock.sendall(v1_header(VISITOR, DST, 1, 2) + GET_CLOSE)
        return read_until_close(sock).startswith(b"HTTP/1.1 200 ")


# --- valid headers --------------------------------------------------------------------------


def test_v1_client_becomes_remote_addr_on_a_kept_alive_connection(server):
    since = time.time()
    with RawConn(server.port) as conn:
        local_port = conn.sock.getsockname()[1]
        conn.send(v1_header(VISITOR, DST, VISITOR_PORT, DST_PORT) + GET)
        assert conn.response()[0] == 200
        conn.send(b"GET /index.html?second HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, body = conn.response()
        assert (status, body) == (200, b"hello\n")
    line = _line_of(server, "GET /index.html?second")
    assert line.split()[:7] == [
        VISITOR, str(VISITOR_PORT), VISITOR, str(VISITOR_PORT), DST, str(DST_PORT),
        str(server.port),
    ]  # fmt: skip
    record = lifecycle_record(server.tmp / "lifecycle.log", local_port, since)
    # both hops, labelled: the TCP connection webserv accepted is the balancer's
    assert record["client"] == {"addr": "127.0.0.1", "port": local_port}
    assert record["syn"] is not None and record["handshake"] is not None
    proxy = record["proxy"]
    assert proxy["version"] == 1 and proxy["command"] == "PROXY" and proxy["family"] == "TCP4"
    assert proxy["client"] == {"addr": VISITOR, "port": VISITOR_PORT}
    assert proxy["server"] == {"addr": DST, "port": DST_PORT}
    assert proxy["balancer"] == {"addr": "127.0.0.1", "port": local_port}
    assert proxy["real_ip"] is True
    assert record["request_count"] == 2


def test_v2_with_tlvs_in_the_lifecycle_record(server):
    since = time.time()
    tlvs = [(0x01, b"h2"), (0x02, b"shop.example"), (0x05, b"\x00\x01req-42")]
    with connect(server.port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(v2_header("2001:db8::7", "2001:db8::1", 5555, 80, tlvs) + GET_CLOSE)
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 ")
    line = _line_of(server, "2001:db8::7 5555 2001:db8::7 5555 2001:db8::1 80")
    assert '"GET / HTTP/1.1" 200' in line
    proxy = lifecycle_record(server.tmp / "lifecycle.log", local_port, since)["proxy"]
    assert (proxy["version"], proxy["family"]) == (2, "INET6")
    assert proxy["client"] == {"addr": "2001:db8::7", "port": 5555}
    assert proxy["tlvs"] == {
        "alpn": "h2",
        "authority": "shop.example",
        "unique_id": b"\x00\x01req-42".hex(),
    }


def test_v2_local_keeps_the_peer(server):
    with connect(server.port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(v2_header(local=True) + b"GET /?local HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 ")
    line = _line_of(server, "GET /?local")
    assert line.split()[:4] == ["127.0.0.1", str(local_port), "-", "-"]


def test_header_split_over_many_segments(server):
    header = v2_header(VISITOR, DST, 40001, DST_PORT, [(0x01, b"http/1.1")])
    with connect(server.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(header)):
            sock.send(header[i : i + 1])
            time.sleep(0.005)  # (not measured: only so that the bytes leave one by one)
        sock.sendall(b"GET /?split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 ")
    assert _line_of(server, "GET /?split").split()[:2] == [VISITOR, "40001"]


def test_v1_split_at_every_boundary(server):
    header = v1_header(VISITOR, DST, 40002, DST_PORT)
    for cut in (1, 5, 6, len(header) - 2, len(header) - 1, len(header)):
        with connect(server.port) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(header[:cut])
            time.sleep(0.05)
            sock.sendall(header[cut:] + f"GET /?cut{cut} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sock.shutdown(socket.SHUT_WR)
            assert read_until_close(sock).startswith(b"HTTP/1.1 200 "), cut
        assert _line_of(server, f"GET /?cut{cut} ").split()[:2] == [VISITOR, "40002"]


def test_header_and_pipelined_requests_in_one_segment(server):
    requests = b"".join(f"GET /?p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3))
    with RawConn(server.port) as conn:
        conn.send(v1_header(VISITOR, DST, 40003, DST_PORT) + requests + GET_CLOSE)
        statuses = [conn.response()[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 200]
        assert conn.closed_by_peer()
    for i in range(3):
        assert _line_of(server, f"GET /?p{i} ").split()[:2] == [VISITOR, "40003"]


def test_cgi_sees_the_visitor(server):
    with connect(server.port) as sock:
        sock.sendall(
            v1_header(VISITOR, DST, 40004, DST_PORT)
            + b"GET /cgi-bin/env.py HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reply = read_until_close(sock)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert f"\r\n{VISITOR} 40004\n".encode() in reply


def test_without_set_real_ip_from_the_peer_stays_remote_addr(server):
    since = time.time()
    # nginx's behaviour: the header is read and kept ($proxy_protocol_*), the address is not
    with connect(server.ports[2]) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(
            v1_header(VISITOR, DST, 40005, DST_PORT) + b"GET /?nort HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 ")
    fields = _line_of(server, "GET /?nort").split()
    assert fields[:4] == ["127.0.0.1", str(local_port), VISITOR, "40005"]
    proxy = lifecycle_record(server.tmp / "lifecycle.log", local_port, since)["proxy"]
    assert proxy["client"] == {"addr": VISITOR, "port": 40005} and proxy["real_ip"] is False


def test_status_page_shows_both_hops(server):
    with RawConn(server.port) as conn:
        local_port = conn.sock.getsockname()[1]
        conn.send(v1_header(VISITOR, DST, 40006, DST_PORT) + GET)
        assert conn.response()[0] == 200
        status, _, body = _status(server)
        assert status == 200
    import json

    data = json.loads(body)
    (record,) = [r for r in data["open"] if r["client"]["port"] == local_port]
    assert record["proxy"]["client"] == {"addr": VISITOR, "port": 40006}
    assert record["client"]["addr"] == "127.0.0.1"


def _status(server):
    with RawConn(server.ports[3]) as conn:
        conn.send(b"GET /status HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
        return conn.response()


# --- refused ------------------------------------------------------------------------------


def _refused(server, port: int, data: bytes, shut: bool = True) -> tuple[bytes, int]:
    """Send DATA on a fresh connection; what came back before the close, and its port."""
    with connect(port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(data)
        if shut:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # already reset by the server
        return read_until_close(sock), local_port


BROKEN = "broken header: "
BAD = {
    "no header": GET_CLOSE,
    "wrong v1 signature": b"PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET,
    "v1 bad address": b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n" + GET,
    "v1 bad port": b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n" + GET,
    "v1 bare LF": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + GET,
    "v1 over 107 bytes": b"PROXY UNKNOWN " + b"x" * (V1_MAX + 10) + b"\r\n" + GET,
    "v1 no CRLF at all": b"PROXY TCP4 " + b"1" * 500,
    "wrong v2 signature": V2_SIGNATURE[:-1] + b"X" + b"\x21\x11\x00\x0c" + b"\0" * 12 + GET,
    "v2 version 3": V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\0" * 12 + GET,
    "v2 oversized length": V2_SIGNATURE + b"\x21\x11\xff\xff" + b"\0" * 12 + GET,
    "v2 length past the bound": V2_SIGNATURE + b"\x21\x11" + (V2_MAX_LENGTH + 1).to_bytes(2, "big"),
    "v2 address block too short": V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\0" * 4 + GET,
    "v2 broken TLV": V2_SIGNATURE + b"\x21\x11\x00\x10" + b"\0" * 12 + b"\x01\x00\x09a" + GET,
    "TLS ClientHello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 32,
    "binary garbage": bytes(range(256)),
}
# what the error log says (nginx's wording): the v1 and unknown ones quote the bytes
SAYS = {
    "v2 version 3": "unknown PROXY protocol version: 3 while",
    "v2 oversized length": "header is too large while",
    "v2 length past the bound": "header is too large while",
    "v2 address block too short": "header is too short while",
    "v2 broken TLV": "broken TLV while",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_header_closes_without_an_answer(server, name):
    since = time.time()
    before = len(error_lines(server.error_log, MARK))
    reply, local_port = _refused(server, server.port, BAD[name])
    assert reply == b""
    lines = wait_error_line(server.error_log, MARK, before + 1)
    assert len(lines) == before + 1  # once
    assert "[info]" in lines[-1] and SAYS.get(name, BROKEN) in lines[-1]
    assert "client: 127.0.0.1, server: 127.0.0." in lines[-1]
    record = lifecycle_record(server.tmp / "lifecycle.log", local_port, since)
    assert record.get("proxy") is None and record["request_count"] == 0
    assert (
        record["close"]["closed_by"] == "server" and record["close"]["reason"] == "proxy_protocol"
    )
    assert _served(server)
    assert "Traceback" not in server.error_log.read_text()


def test_broken_header_is_quoted_escaped_and_bounded(server):
    before = len(error_lines(server.error_log, MARK))
    _refused(server, server.port, b'PROXY "\x01\xff' + b"y" * 300)
    line = wait_error_line(server.error_log, MARK, before + 1)[-1]
    assert 'broken header: "PROXY \\"\\x01\\xff' in line
    assert "y" * 300 not in line and "..." in line


def test_truncated_header_then_eof_closes_quietly(server):
    before = len(error_lines(server.error_log, MARK))
    reply, _ = _refused(server, server.port, v1_header(VISITOR, DST, 1, 2)[:20])
    assert reply == b""
    assert _served(server)
    assert len(error_lines(server.error_log, MARK)) == before  # the client left: nothing to say


def test_truncated_header_times_out_at_client_header_timeout(server):
    with connect(server.port) as sock:
        sock.sendall(v2_header(VISITOR, DST, 1, 2)[:20])
        assert _served(server)  # others are served meanwhile
        assert read_until_close(sock) == b""  # closed by the server (client_header_timeout 2s)
    assert wait_error_line(server.error_log, "client timed out while reading PROXY protocol")


def test_silent_client_times_out(server):
    with connect(server.port) as sock:
        assert read_until_close(sock) == b""


def test_untrusted_peer_is_refused(server):
    since = time.time()
    before = len(error_lines(server.error_log, "untrusted"))
    reply, local_port = _refused(server, server.ports[1], v1_header(VISITOR, DST, 1, 2) + GET)
    assert reply == b""
    line = wait_error_line(server.error_log, "untrusted", before + 1)[-1]
    assert "[info]" in line and "PROXY protocol header from untrusted address 127.0.0.1" in line
    record = lifecycle_record(server.tmp / "lifecycle.log", local_port, since)
    assert record["request_count"] == 0 and record["close"]["reason"] == "proxy_protocol"
    assert not any(
        VISITOR in line and f" {server.ports[1]} " in line for line in server.access_lines()
    )
    assert _served(server)


def test_many_bad_connections_leak_nothing(server):
    pid = server.worker_pid()
    import os

    def fds() -> int:
        return len(os.listdir(f"/proc/{pid}/fd"))

    assert _served(server)
    start = fds()
    socks = []
    for i in range(200):
        sock = connect(server.port)
        sock.sendall(BAD["binary garbage"] if i % 2 else v1_header(VISITOR, DST, 1, 2)[:10])
        socks.append(sock)
    for sock in socks:
        sock.close()
    assert _served(server)
    wait_until(lambda: fds() <= start, timeout=15)
