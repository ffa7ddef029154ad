"""HTTPS on a real webserv: SNI, ALPN, versions, plain HTTP on the TLS port, HTTP over TLS
(keep-alive, pipelining, ranges, uploads, CGI), log variables, the lifecycle `tls` block,
and handshake failures counted by reason while the server goes on serving."""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import sys
import time

import pytest
from support import RunningServer, _accepts, read_until_close, server_failures, wait_until
from tls_support import TlsRaw, metric, tls_request, tls_socket

BIG = 48 * 1024 * 1024  # the slow reader's file

CONF = """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    log_format tls '$scheme $https $ssl_protocol $ssl_cipher "$ssl_server_name" '
                   '$ssl_session_reused "$request" $status';
    access_log {tmp}/logs/access.log tls;
    lifecycle_log {tmp}/lifecycle.log;
    client_header_timeout 2s;
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.1:{port2};
        server_name localhost a.test;
        ssl_certificate A_CERT;
        ssl_certificate_key A_KEY;
        root {root};
        location /uploads/ {{
            allow_methods GET HEAD PUT;
            alias {tmp}/uploads/;
            upload_store {tmp}/uploads;
            client_max_body_size 20m;
        }}
        location /cgi-bin/ {{
            cgi .py PYTHON;
        }}
        location = /metrics {{
            metrics on;
        }}
        location = /redirect {{
            return 301 https://$host$request_uri;
        }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name b.test;
        ssl_certificate B_CERT;
        ssl_certificate_key B_KEY;
        root {root}/b;
    }}
    server {{
        listen 127.0.0.1:{port3} ssl;
        ssl_protocols TLSv1.2;
        ssl_certificate A_CERT;
        ssl_certificate_key A_KEY;
        root {root};
    }}
}}
"""

ENV_SCRIPT = """import os
print("Content-Type: text/plain")
print()
print("HTTPS=" + os.environ.get("HTTPS", "-"))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    a = certs.issue("a", "localhost", "a.test", "127.0.0.1")
    b = certs.issue("b", "b.test")
    text = CONF
    for name, value in {
        "A_CERT": a.cert, "A_KEY": a.key, "B_CERT": b.cert, "B_KEY": b.key,
        "PYTHON": sys.executable,
    }.items():  # fmt: skip
        text = text.replace(name, str(value))
    files = {
        "index.html": "<h1>A</h1>\n",
        "digits.txt": "0123456789" * 100,
        "b/index.html": "<h1>B</h1>\n",
        "cgi-bin/env.py": ENV_SCRIPT,
        "big.bin": b"",
    }
    srv = RunningServer(tmp_path_factory.mktemp("tls"), text, files, ports=3)
    (srv.tmp / "uploads").mkdir()
    with open(srv.root / "big.bin", "wb") as f:
        f.truncate(BIG)  # sparse: zeros
    srv.start()
    yield srv
    srv.stop()
    log = (srv.tmp / "error.log").read_text(errors="replace")
    for bad in ("Traceback", "Exception in callback", "never retrieved"):
        assert bad not in log, log[-3000:]
    assert not server_failures(log), server_failures(log)[:5]


def metrics(server, certs) -> str:
    return tls_request(server.port, certs.client(), "/metrics")[2].decode()


def failures(server, certs, reason: str) -> float:
    return metric(
        metrics(server, certs), "webserv_tls_handshake_failures_total", f'reason="{reason}"'
    )


def records(server) -> list[dict]:
    path = server.tmp / "lifecycle.log"
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # whole lines only: the last may be half-written
    return [json.loads(line) for line in lines if line]


def record_of(server, port: int) -> dict:
    return wait_until(
        lambda: next((r for r in reversed(records(server)) if r["client"]["port"] == port), None)
    )


def still_serving(server, certs) -> None:
    status, _, body = tls_request(server.port, certs.client(), "/")
    assert (status, body) == (200, b"<h1>A</h1>\n")


# --- the handshake -------------------------------------------------------------------------


def test_sni_picks_the_server_and_its_certificate(server, certs):
    ctx = certs.client()  # verifies the certificate against the name asked for
    assert tls_request(server.port, ctx, "/", sni="b.test", host="b.test")[2] == b"<h1>B</h1>\n"
    assert tls_request(server.port, ctx, "/", sni="a.test", host="a.test")[2] == b"<h1>A</h1>\n"
    with tls_socket(server.port, ctx, sni="b.test") as sock:  # B's certificate, not A's
        names = [v for k, v in sock.getpeercert()["subjectAltName"] if k == "DNS"]
        assert names == ["b.test"]
    loose = certs.client()
    loose.check_hostname = False
    with tls_socket(server.port, loose, sni="unknown.test") as sock:  # the default's
        names = [v for k, v in sock.getpeercert()["subjectAltName"] if k == "DNS"]
        assert "localhost" in names
    still_serving(server, certs)


def test_alpn_offers_http11(server, certs):
    ctx = certs.client()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_socket(server.port, ctx) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        assert sock.version() == "TLSv1.3"


def test_protocols_as_configured(server, certs):
    with tls_socket(server.ports[2], certs.client()) as sock:
        assert sock.version() == "TLSv1.2"
    before = failures(server, certs, "version")
    only13 = certs.client(minimum_version=ssl.TLSVersion.TLSv1_3)
    with pytest.raises(ssl.SSLError):  # the TLSv1.2-only server refuses it
        tls_socket(server.ports[2], only13).close()
    wait_until(lambda: failures(server, certs, "version") >= before + 1)
    # a client limited to TLSv1.1 is refused by the default TLSv1.2 TLSv1.3 (OpenSSL 3's
    # own client may give up before sending its hello: refused either way)
    old = certs.client(maximum_version=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that the client offers TLS 1.1 at all
    with pytest.raises(ssl.SSLError):
        tls_socket(server.port, old).close()
    still_serving(server, certs)


# --- plain HTTP on the TLS port -------------------------------------------------------------

PLAIN_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"


def test_plain_http_gets_nginx_400_and_a_close(server, certs):
    before = failures(server, certs, "plain_http")
    with server.connect() as sock:
        sock.sendall(PLAIN_REQUEST)
        reply = read_until_close(sock)  # and the server closes
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close" in head
    assert b"<title>400 The plain HTTP request was sent to HTTPS port</title>" in body
    assert b"<center>The plain HTTP request was sent to HTTPS port</center>" in body
    wait_until(lambda: failures(server, certs, "plain_http") >= before + 1)
    still_serving(server, certs)


def test_plain_http_answer_is_nginx_s(server, certs, tmp_path):
    nginx = "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        pytest.skip("nginx is not installed")
    import subprocess

    from support import free_port

    a = certs.issue("a", "localhost", "a.test", "127.0.0.1")
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("<h1>A</h1>\n")
    conf = tmp_path / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""{user}
daemon off; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/p;
    fastcgi_temp_path {tmp_path}/f; uwsgi_temp_path {tmp_path}/u; scgi_temp_path {tmp_path}/s;
    server {{
        listen 127.0.0.1:{port} ssl; root {tmp_path}/www;
        ssl_certificate {a.cert}; ssl_certificate_key {a.key};
    }}
}}
""")
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _accepts(port))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(PLAIN_REQUEST)
            theirs = read_until_close(sock)
    finally:
        proc.terminate()
        proc.wait(15)
    with server.connect() as sock:
        sock.sendall(PLAIN_REQUEST)
        ours = read_until_close(sock)

    def shape(reply: bytes) -> tuple:
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = {line.split(b":")[0].lower() for line in lines[1:]} - {b"server", b"date"}
        body = body.replace(b"nginx", b"SERVER").replace(b"webserv", b"SERVER")
        return lines[0], fields, body.split(b"<hr>")[0]

    assert shape(ours) == shape(theirs)


def test_redirect_to_https(server):
    with socket.create_connection(("127.0.0.1", server.ports[1]), timeout=10) as sock:
        sock.sendall(b"GET /redirect?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = read_until_close(sock)
    assert reply.startswith(b"HTTP/1.1 301 ")
    assert b"\r\nLocation: https://localhost/redirect?x=1\r\n" in reply


# --- HTTP over TLS as over plain TCP --------------------------------------------------------


def test_keepalive_and_pipelining(server, certs):
    with TlsRaw(server.port, certs.client()) as conn:
        for _ in range(2):
            conn.send(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, headers, body = conn.response()
            assert (status, body) == (200, b"<h1>A</h1>\n")
            assert headers["connection"] == "keep-alive"
        conn.send(
            b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"GET /digits.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        answers = [conn.response() for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 404]
    assert answers[1][2] == b"0123456789" * 100


def test_range(server, certs):
    status, headers, body = tls_request(
        server.port, certs.client(), "/digits.txt", headers={"Range": "bytes=5-14"}
    )
    assert (status, body) == (206, b"5678901234")
    assert headers["content-range"] == "bytes 5-14/1000"


def test_upload_lands_whole(server, certs):
    data = os.urandom(3 * 1024 * 1024)
    status, _, _ = tls_request(
        server.port, certs.client(), "/uploads/up.bin", method="PUT", body=data
    )
    assert status in (200, 201, 204)
    assert (server.tmp / "uploads" / "up.bin").read_bytes() == data
    status, _, body = tls_request(server.port, certs.client(), "/uploads/up.bin")
    assert (status, body) == (200, data)


def test_cgi_sees_https_on(server, certs):
    status, _, body = tls_request(server.port, certs.client(), "/cgi-bin/env.py")
    assert (status, body.strip()) == (200, b"HTTPS=on")
    with socket.create_connection(("127.0.0.1", server.ports[1]), timeout=10) as sock:
        sock.sendall(
            b"GET /cgi-bin/env.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        assert b"\r\nHTTPS=-\n" in read_until_close(sock)


def test_log_variables(server, certs):
    tls_request(server.port, certs.client(), "/digits.txt?log", sni="a.test", host="a.test")
    with socket.create_connection(("127.0.0.1", server.ports[1]), timeout=10) as sock:
        sock.sendall(b"GET /digits.txt?plainlog HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        read_until_close(sock)
    lines = wait_until(
        lambda: (
            [line for line in server.access_lines() if "?log " in line or "?plainlog " in line]
            if len([line for line in server.access_lines() if "log " in line]) >= 2
            else None
        )
    )
    tls_line = next(line for line in lines if "?log " in line)
    words = tls_line.split()
    assert words[:3] == ["https", "on", "TLSv1.3"]
    assert words[3].startswith("TLS_")  # the OpenSSL name of a TLS 1.3 suite
    assert words[4] == '"a.test"' and words[5] == "."
    plain_line = next(line for line in lines if "?plainlog " in line)
    assert plain_line.split()[:1] == ["http"]


# --- the lifecycle record and the metrics ----------------------------------------------------


def test_lifecycle_tls_block_and_resumption(server, certs):
    ctx = certs.client()
    with TlsRaw(server.port, ctx) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        conn.response()
        session = conn.sock.session
        first_port = conn.sock.getsockname()[1]
        assert not conn.sock.session_reused
    assert session is not None
    with TlsRaw(server.port, ctx, session=session) as conn:
        assert conn.sock.session_reused
        second_port = conn.sock.getsockname()[1]
        conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        conn.response()
    first, second = record_of(server, first_port)["tls"], record_of(server, second_port)["tls"]
    assert first["version"] == "TLSv1.3" and first["cipher"].startswith("TLS_")
    assert (first["sni"], first["alpn"], first["failure"]) == ("localhost", None, None)
    assert (first["resumed"], second["resumed"]) == (False, True)
    assert first["handshake_ms"] > 0 and first["handshake_rtts"] > 0
    assert first["client_hello_ms"] <= first["done_ms"]
    # the TLS exchange comes between the TCP handshake and the first request
    request = record_of(server, first_port)["requests"][0]
    assert first["done_ms"] <= request["t_begin_ms"]
    metrics_text = metrics(server, certs)
    assert metric(metrics_text, "webserv_tls_handshake_duration_seconds_count") >= 2


def test_failures_by_reason_and_the_server_goes_on(server, certs):
    before = {r: failures(server, certs, r) for r in ("protocol", "timeout", "alert")}
    # garbage that starts like a TLS record
    with server.connect() as sock:
        sock.sendall(b"\x16\x03\x01\x00\x20" + b"\xff" * 32)
        read_until_close(sock)
    still_serving(server, certs)
    # a client that does not trust the certificate says so with an alert
    stranger = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_socket(server.port, stranger).close()
    still_serving(server, certs)
    # silent after connecting, and silent after half a ClientHello: client_header_timeout
    silent = server.connect()
    half = server.connect()
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    still_serving(server, certs)
    for sock in (silent, half):
        sock.settimeout(15)
        assert read_until_close(sock) == b""  # closed by the server
        sock.close()
    wait_until(lambda: failures(server, certs, "protocol") >= before["protocol"] + 1)
    wait_until(lambda: failures(server, certs, "alert") >= before["alert"] + 1)
    wait_until(lambda: failures(server, certs, "timeout") >= before["timeout"] + 2)
    still_serving(server, certs)
    timed_out = wait_until(
        lambda: [r for r in records(server) if (r["tls"] or {}).get("failure") == "timeout"]
    )
    assert timed_out[-1]["close"]["reason"] == "tls_timeout"


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_slow_reader_of_a_large_file_keeps_memory_flat(server, certs):
    pid = server.worker_pid()
    with TlsRaw(server.port, certs.client()) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        got = len(conn.sock.recv(65536))
        start = _rss_kib(pid)
        peak = start
        for _ in range(20):  # a slow reader: a little, then a pause
            got += len(conn.sock.recv(65536))
            time.sleep(0.05)
            peak = max(peak, _rss_kib(pid))
        while chunk := conn.sock.recv(1 << 20):
            got += len(chunk)
    assert got > BIG  # the whole body came (with its header section)
    assert peak - start < 16 * 1024, (start, peak)  # KiB: far below the file's 48 MiB


def _client_hello(ctx: ssl.SSLContext) -> bytes:
    """The bytes of a real ClientHello, as a client would send them first."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_abandoned_handshakes_leak_nothing(server, certs):
    """Clients that go away mid-handshake, every way: closed at once, after half a
    ClientHello, after a whole one (the server's flight unread), reset after it. The worker's
    descriptors come back to what they were and the server serves on."""
    pid = server.worker_pid()
    still_serving(server, certs)
    before = _open_fds(pid)
    hello = _client_hello(certs.client())
    reset = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST
    for i in range(1000):
        sock = server.connect()
        way = i % 4
        if way == 1:
            sock.sendall(hello[: len(hello) // 2])
        elif way >= 2:
            sock.sendall(hello)
        if way == 3:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
        sock.close()
        if i % 250 == 249:
            still_serving(server, certs)  # served while the abandoned ones are cleaned up
    assert wait_until(lambda: _open_fds(pid) <= before, timeout=30), (before, _open_fds(pid))
    still_serving(server, certs)
    errors = (server.tmp / "error.log").read_text()
    assert "Traceback" not in errors
