"""HAProxy (Debian's `haproxy`) in front of two webserv processes: `send-proxy-v2` with a
unique-id TLV round-robin to both, `send-proxy` (v1) to one. The visitor connects from
127.0.0.2, HAProxy reaches webserv from 127.0.0.1: the access logs and lifecycle logs must
carry the visitor's address and port, the lifecycle record the balancer's hop beside it.
A forged header sent straight to webserv from an untrusted address is refused.
Skipped where haproxy is not installed."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from proxy_support import (
    MARK,
    connect,
    error_lines,
    lifecycle_records,
    v1_header,
    wait_error_line,
)
from support import RunningServer, free_port, read_until_close, wait_until

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if shutil.os.access("/usr/sbin/haproxy", shutil.os.X_OK) else None
)
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

WEBSERV = """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    log_format pp '$remote_addr $remote_port $proxy_protocol_addr "$request" $status';
    access_log {tmp}/logs/access.log pp;
    lifecycle_log {tmp}/lifecycle.log;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        root {root};
    }}
}}
"""

HAPROXY_CONF = """
global
    maxconn 100
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v2
    bind 127.0.0.1:{v2}
    unique-id-format req-%rc-%pid-%ID
    default_backend both
backend both
    balance roundrobin
    server a 127.0.0.1:{a} send-proxy-v2 proxy-v2-options unique-id
    server b 127.0.0.1:{b} send-proxy-v2 proxy-v2-options unique-id
frontend v1
    bind 127.0.0.1:{v1}
    default_backend one
backend one
    server a 127.0.0.1:{a} send-proxy
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("haproxy")
    a = RunningServer(tmp / "a", WEBSERV, {"index.html": "A\n"}).start()
    b = RunningServer(tmp / "b", WEBSERV, {"index.html": "B\n"}).start()
    ports = {"v2": free_port(), "v1": free_port(), "a": a.port, "b": b.port}
    conf = tmp / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(**ports))
    out = open(tmp / "haproxy.out", "wb")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(conf)], stdout=out, stderr=out)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((tmp / "haproxy.out").read_text())
        try:
            connect(ports["v1"]).close()
            connect(ports["v2"]).close()
        except OSError:
            return False
        return True

    try:
        wait_until(up)
        yield a, b, ports
    finally:
        proc.terminate()
        proc.wait(10)
        out.close()
        for srv in (a, b):
            srv.stop()
            assert "Traceback" not in srv.error_log.read_text()


def _visit(port: int, target: str) -> tuple[bytes, int]:
    with connect(port, source="127.0.0.2") as sock:
        visitor_port = sock.getsockname()[1]
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return read_until_close(sock), visitor_port


def _record_of(srv: RunningServer, visitor_port: int) -> dict:
    """The record of the visit from 127.0.0.2:VISITOR_PORT (by address too: a connection from
    127.0.0.1 — the fixture's probes through the balancer — can have the same port number)."""

    def find():
        for record in lifecycle_records(srv.tmp / "lifecycle.log"):
            proxy = record.get("proxy")
            client = proxy and proxy["client"]
            if client and client["port"] == visitor_port and client["addr"] == "127.0.0.2":
                return record
        return None

    return wait_until(find)


def test_send_proxy_v2_round_robin_to_two_webservs(farm):
    a, b, ports = farm
    visits = [_visit(ports["v2"], f"/?v2-{i}") for i in range(6)]
    # round robin: both are used (HAProxy's own probes may shift which one starts)
    assert {reply.rsplit(b"\r\n\r\n", 1)[1] for reply, _ in visits} == {b"A\n", b"B\n"}
    for i, (reply, visitor_port) in enumerate(visits):
        srv = a if reply.endswith(b"A\n") else b
        (line,) = wait_until(
            lambda srv=srv, i=i: [x for x in srv.access_lines() if f"/?v2-{i} " in x]
        )
        assert line.split()[:3] == ["127.0.0.2", str(visitor_port), "127.0.0.2"]
        record = _record_of(srv, visitor_port)
        proxy = record["proxy"]
        assert (proxy["version"], proxy["command"], proxy["family"]) == (2, "PROXY", "INET")
        assert proxy["client"] == {"addr": "127.0.0.2", "port": visitor_port}
        assert proxy["server"] == {"addr": "127.0.0.1", "port": ports["v2"]}
        assert proxy["real_ip"] is True
        assert bytes.fromhex(proxy["tlvs"]["unique_id"]).startswith(b"req-")
        # the connection webserv accepted is HAProxy's, and its SYN and TCP_INFO say so
        assert record["client"]["addr"] == "127.0.0.1" == proxy["balancer"]["addr"]
        assert record["client"]["port"] != visitor_port
        assert record["syn"] is not None and record["handshake"] is not None


def test_send_proxy_v1(farm):
    a, _, ports = farm
    reply, visitor_port = _visit(ports["v1"], "/?v1")
    assert reply.endswith(b"A\n")
    (line,) = wait_until(lambda: [x for x in a.access_lines() if "/?v1 " in x])
    assert line.split()[:3] == ["127.0.0.2", str(visitor_port), "127.0.0.2"]
    proxy = _record_of(a, visitor_port)["proxy"]
    assert (proxy["version"], proxy["family"]) == (1, "TCP4")


def test_forged_header_from_an_untrusted_address_is_refused(farm):
    a, _, ports = farm
    before = len(error_lines(a.error_log, "untrusted"))
    with connect(a.port, source="127.0.0.2") as sock:
        sock.sendall(v1_header("8.8.8.8", "127.0.0.1", 1234, 80) + b"GET /?forged HTTP/1.1\r\n\r\n")
        assert read_until_close(sock) == b""
    assert wait_error_line(a.error_log, "untrusted address 127.0.0.2", before + 1)
    time.sleep(1.2)  # (the access log flushes within a second: nothing may appear)
    assert not any("forged" in line for line in a.access_lines())
    assert _visit(ports["v1"], "/")[0].endswith(b"A\n")  # the balancer's still served


def test_malformed_headers_straight_to_webserv_close_without_traceback(farm):
    a, _, _ = farm
    before = len(error_lines(a.error_log, MARK))
    bad = [
        b"PROXY TCP4 127.0.0.2 127.0.0.1 1",  # truncated, then EOF
        b"\r\n\r\n\x00\r\nQUIX\n!\x11\x00\x0c" + b"\0" * 12,  # wrong signature
        b"\r\n\r\n\x00\r\nQUIT\n!\x11\xff\xff" + b"\0" * 12,  # oversized length
        b"PROXY UNKNOWN " + b"x" * 200 + b"\r\n",  # v1 over 107 bytes
    ]
    for data in bad:
        with connect(a.port) as sock:
            sock.sendall(data)
            sock.shutdown(1)
            assert read_until_close(sock) == b""
    wait_error_line(a.error_log, MARK, before + 3)  # the truncated one just left
    assert "Traceback" not in a.error_log.read_text()
