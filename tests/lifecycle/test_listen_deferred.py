"""`listen ... deferred` (TCP_DEFER_ACCEPT, as nginx): a connection is handed to webserv only
once its first bytes have arrived.

Until then the kernel keeps the connection in its SYN_RECV state (the client's side is
established: its connect() has returned), so `ss` shows it there, and webserv has no record
of it; once the request arrives it is accepted and answered as any other, with its saved SYN
and handshake. Without `deferred` the same idle connection is accepted at once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest
from lifecycle_support import read_response, status_json, status_of
from support import wait_until

CONF = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} deferred;
        listen 127.0.0.1:{port2};
        root {root};
        location /status {{ status on; }}
    }}
}}
"""

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_DEFER_ACCEPT") or shutil.which("ss") is None,
    reason="needs Linux's TCP_DEFER_ACCEPT and ss (iproute2)",
)


def server_side_states(port: int, client_port: int) -> list[str]:
    """The TCP states of the server's side of the connection from `client_port`."""
    out = subprocess.run(
        ["ss", "-H", "-tan", f"( sport = :{port} and dport = :{client_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def open_ports(server) -> set[int]:
    return {c["client"]["port"] for c in status_json(server.ports[1])["open"]}


def test_an_idle_connection_waits_in_the_kernel_until_it_sends(webserv):
    server = webserv(CONF, files={"a.txt": "deferred\n"}, ports=2)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        port = sock.getsockname()[1]
        # established for the client, not accepted by the server: the kernel holds it
        assert wait_until(lambda: server_side_states(server.port, port) == ["SYN-RECV"])
        assert port not in open_ports(server)
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(sock)
        assert status_of(response) == 200 and response.endswith(b"deferred\n")
        assert server_side_states(server.port, port) == ["ESTAB"]
        record = next(
            c for c in status_json(server.ports[1])["open"] if c["client"]["port"] == port
        )
        # accepted late, still with its own SYN and handshake
        assert record["syn"]["src_port"] == port and record["handshake"]["rtt_us"] > 0
        assert record["request_count"] == 1


def test_without_deferred_the_same_connection_is_accepted_at_once(webserv):
    server = webserv(CONF, files={"a.txt": "x\n"}, ports=2)
    with socket.create_connection(("127.0.0.1", server.ports[1])) as sock:
        port = sock.getsockname()[1]
        assert wait_until(lambda: port in open_ports(server))
        assert server_side_states(server.ports[1], port) == ["ESTAB"]


def test_deferred_is_checked_at_load(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("http { server { listen 127.0.0.1:8080 deferred later; } }\n")
    result = subprocess.run(
        [sys.executable, "-m", "webserv", "-t", "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert 'invalid parameter "later"' in result.stderr and f"{conf}:1" in result.stderr
