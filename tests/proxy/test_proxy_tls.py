"""`listen ... ssl proxy_protocol`: the PROXY header comes before the TLS ClientHello (as
nginx and HAProxy's `send-proxy` with `ssl` order them); HTTPS then works as on any TLS
listener, with the visitor as $remote_addr. A ClientHello without the header, or a header
that never comes, is refused as a PROXY failure, never counted as a TLS one."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
import trustme
from proxy_support import (
    MARK,
    connect,
    error_lines,
    lifecycle_record,
    v1_header,
    v2_header,
    wait_error_line,
)
from support import RawConn, RunningServer, read_until_close, server_failures, wait_until

CONF = """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    log_format pp '$scheme $remote_addr $remote_port $proxy_protocol_addr $ssl_protocol '
                  '"$request" $status';
    access_log {tmp}/logs/access.log pp;
    lifecycle_log {tmp}/lifecycle.log;
    client_header_timeout 2s;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    server {{
        listen 127.0.0.1:{port} ssl proxy_protocol;
        ssl_certificate CERT;
        ssl_certificate_key KEY;
        root {root};
    }}
    server {{
        listen 127.0.0.1:{port2};
        location = /metrics {{
            metrics on;
        }}
    }}
}}
"""
VISITOR = "198.51.100.23"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp / "a.crt"))
    cert.private_key_pem.write_to_path(str(tmp / "a.key"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    text = CONF.replace("CERT", str(tmp / "a.crt")).replace("KEY", str(tmp / "a.key"))
    srv = RunningServer(tmp, text, {"index.html": "secure\n"}, ports=2)
    srv.start()
    srv.client_ctx = ssl.create_default_context(cafile=str(tmp / "ca.pem"))
    yield srv
    srv.stop()
    log = srv.error_log.read_text(errors="replace")
    for bad in ("Traceback", "Exception in callback"):
        assert bad not in log, log[-3000:]
    assert not server_failures(log), server_failures(log)[:5]


def _https(srv, header: bytes, target: str = "/") -> tuple[bytes, int]:
    raw = connect(srv.port)
    local_port = raw.getsockname()[1]
    raw.sendall(header)
    with srv.client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            data += chunk
    return data, local_port


def _failures(srv) -> float:
    with RawConn(srv.ports[1]) as conn:
        conn.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = conn.response()[2].decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("webserv_tls_handshake_failures_total{")
    )


def _access(srv, marker: str) -> str:
    return wait_until(lambda: [line for line in srv.access_lines() if marker in line])[-1]


def test_header_then_tls_then_http(tls_server):
    since = time.time()
    reply, local_port = _https(tls_server, v1_header(VISITOR, "192.0.2.1", 50000, 443), "/?v1")
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"secure\n")
    assert _access(tls_server, "/?v1").split()[:4] == ["https", VISITOR, "50000", VISITOR]
    record = lifecycle_record(tls_server.tmp / "lifecycle.log", local_port, since)
    assert record["tls"]["version"] and record["tls"]["failure"] is None
    assert record["proxy"]["client"] == {"addr": VISITOR, "port": 50000}
    assert record["client"]["addr"] == "127.0.0.1"


def test_v2_header_with_tls_tlvs_then_tls(tls_server):
    since = time.time()
    ssl_tlv = b"\x01" + b"\0\0\0\0" + b"\x21\x00\x07TLSv1.3"
    header = v2_header(VISITOR, "192.0.2.1", 50001, 443, [(0x20, ssl_tlv), (0x01, b"http/1.1")])
    reply, local_port = _https(tls_server, header, "/?v2")
    assert reply.startswith(b"HTTP/1.1 200 ")
    proxy = lifecycle_record(tls_server.tmp / "lifecycle.log", local_port, since)["proxy"]
    assert proxy["tlvs"] == {
        "ssl": {"client": 1, "verify": 0, "version": "TLSv1.3"},
        "alpn": "http/1.1",
    }


def test_client_hello_without_header_is_a_proxy_failure_not_a_tls_one(tls_server):
    failures = _failures(tls_server)
    before = len(error_lines(tls_server.error_log, MARK))
    raw = connect(tls_server.port)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with tls_server.client_ctx.wrap_socket(raw, server_hostname="localhost"):
            pass
    raw.close()
    line = wait_error_line(tls_server.error_log, MARK, before + 1)[-1]
    assert "[info]" in line and 'broken header: "\\x16\\x03' in line
    assert "SSL handshake failed" not in tls_server.error_log.read_text()
    assert _failures(tls_server) == failures
    reply, _ = _https(tls_server, v1_header(VISITOR, "192.0.2.1", 1, 443))
    assert reply.startswith(b"HTTP/1.1 200 ")


def test_header_then_plain_http_gets_nginx_400(tls_server):
    with connect(tls_server.port) as sock:
        sock.sendall(v1_header(VISITOR, "192.0.2.1", 2, 443) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_close(sock)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"The plain HTTP request was sent to HTTPS port" in reply


def test_header_that_never_comes_times_out_quietly_for_tls(tls_server):
    failures = _failures(tls_server)
    with connect(tls_server.port) as sock:
        sock.sendall(b"PROXY TCP4 ")
        assert read_until_close(sock) == b""
    assert wait_error_line(tls_server.error_log, "client timed out while reading PROXY protocol")
    assert _failures(tls_server) == failures
    with connect(tls_server.port) as sock:  # and one that leaves before its header
        sock.sendall(b"PROXY")
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock) == b""
    assert _failures(tls_server) == failures
    assert "SSL handshake failed" not in tls_server.error_log.read_text()
