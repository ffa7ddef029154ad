"""Who closed first, in every way a connection ends, as the kernel left it at close.

- client:  the client's FIN arrived first (eof_received); the record is taken at once, in
           CLOSE_WAIT, before the server's own FIN
- server:  keep-alive timeout, `Connection: close`, an error: the server sends its FIN
           first and lingers until the client's FIN (or LINGER_AFTER_CLOSE, 1 s), so the
           record holds the whole four-way close: both FINs are in the byte counters
- reset:   the client's RST (SO_LINGER {on, 0} then close): state CLOSE, no FIN counted
"""

from __future__ import annotations

import socket

import pytest
from lifecycle_support import (
    closed_record,
    connect,
    get,
    read_response,
    reset,
    send_acked,
    status_of,
)
from support import RunningServer, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format who '$remote_port $status $closed_by';
    access_log {tmp}/logs/access.log who;
    lifecycle_log {tmp}/logs/lifecycle.log;
    keepalive_timeout 1s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; access_log off; }}
    }}
}}
"""
FILES = {"a.txt": "hello\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("closed_by"), CONF, FILES).start()
    yield srv
    srv.stop()


def access_line(server, client_port: int) -> list[str]:
    """The access-log fields of the request from `client_port` (one request per connection)."""

    def find():
        for line in server.access_lines():
            fields = line.split()
            if fields[0] == str(client_port):
                return fields
        return None

    return wait_until(find)


def one_request(server, extra: str = "") -> tuple[socket.socket, int, bytes]:
    sock = connect(server.port)
    send_acked(sock, get("/a.txt", extra), 0)
    response = read_response(sock)
    assert status_of(response) == 200
    return sock, sock.getsockname()[1], response


def test_client_fin(server):
    sock, port, response = one_request(server)
    sock.close()  # FIN while the server waits for the next request
    record = closed_record(server.port, port)
    assert record["close"] == {
        "closed_by": "client",
        "reason": "client sent FIN",
        "client_fin_received": True,
        "server_sent_reset": False,
    }
    assert record["tcp_info"]["state_name"] == "CLOSE_WAIT"
    assert record["tcp_info"]["bytes_received"] == len(get("/a.txt")) + 1  # + the FIN
    # the request was logged before anybody closed: nothing to say yet
    assert access_line(server, port) == [str(port), "200", "-"]


def test_server_keepalive_timeout(server):
    sock, port, response = one_request(server)
    # the client says nothing and waits for the server to give up on it (keepalive 1s)
    sock.settimeout(30)
    assert sock.recv(1) == b""  # the server's FIN
    sock.close()  # our FIN ends the server's lingering wait
    record = closed_record(server.port, port)
    assert record["close"] == {
        "closed_by": "server",
        "reason": "keepalive_timeout",
        "client_fin_received": True,
        "server_sent_reset": False,
    }
    info = record["tcp_info"]
    # both FINs sent and ACKed: the kernel has handed the connection to a TIME_WAIT
    # mini-socket, and the socket the server still holds is CLOSE
    assert info["state_name"] == "CLOSE"
    # both FINs counted by the kernel, taken out of the payload numbers
    assert info["bytes_received"] == len(get("/a.txt")) + 1
    assert info["bytes_acked"] == len(response) + 1
    assert record["sequence"]["client_data_bytes"] == len(get("/a.txt"))
    assert record["sequence"]["server_data_bytes_acked"] == len(response)
    assert access_line(server, port) == [str(port), "200", "-"]


def test_server_close_without_client_fin(server):
    """The client never answers the server's FIN: the server stops waiting after its linger
    time and takes the record then (FIN_WAIT2: our FIN ACKed, none received)."""
    sock, port, response = one_request(server)
    sock.settimeout(30)
    assert sock.recv(1) == b""  # keepalive timeout: the server's FIN; we keep our side open
    record = closed_record(server.port, port)
    sock.close()
    assert record["close"] == {
        "closed_by": "server",
        "reason": "keepalive_timeout",
        "client_fin_received": False,
        "server_sent_reset": False,
    }
    info = record["tcp_info"]
    assert info["state_name"] == "FIN_WAIT2"
    assert info["bytes_received"] == len(get("/a.txt"))
    assert info["bytes_acked"] == len(response) + 1
    assert record["sequence"]["server_data_bytes_acked"] == len(response)


def test_client_reset(server):
    sock, port, response = one_request(server)
    reset(sock)
    record = closed_record(server.port, port)
    assert record["close"]["closed_by"] == "reset"
    assert "ConnectionResetError" in record["close"]["reason"]
    assert record["close"]["client_fin_received"] is False
    assert record["tcp_info"]["state_name"] == "CLOSE"
    assert record["tcp_info"]["bytes_received"] == len(get("/a.txt"))  # an RST is no byte
    assert access_line(server, port) == [str(port), "200", "-"]


def test_connection_close_header(server):
    sock, port, response = one_request(server, "Connection: close\r\n")
    assert b"\r\nConnection: close\r\n" in response
    assert sock.recv(1) == b""
    sock.close()
    record = closed_record(server.port, port)
    assert record["close"] == {
        "closed_by": "server",
        "reason": "connection_close",
        "client_fin_received": True,
        "server_sent_reset": False,
    }
    assert record["tcp_info"]["bytes_acked"] == len(response) + 1  # + the server's FIN
    # decided when the response was handed over, so the request's own log line knows it
    assert access_line(server, port) == [str(port), "200", "server"]


def test_error_close(server):
    sock = connect(server.port)
    port = sock.getsockname()[1]
    send_acked(sock, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 0)
    assert status_of(read_response(sock)) == 400
    assert sock.recv(1) == b""
    sock.close()
    record = closed_record(server.port, port)
    assert record["close"]["closed_by"] == "server"
    assert record["close"]["reason"] == "error_400"
    assert access_line(server, port) == [str(port), "400", "server"]
