"""`listen ... proxy_protocol` + realip side by side with nginx (skipped without it): the
same headers sent to both, compared: the status and the body of a `return` that prints
$remote_addr, $remote_port and the $proxy_protocol_* variables — or that both close without
an answer. Where webserv differs on purpose (README's table), the difference is pinned."""

from __future__ import annotations

import socket
import time

import pytest
from conformance.nginx import NGINX, RunningNginx
from proxy_support import GET_CLOSE, v1_header, v2_header
from support import RunningServer, free_port, read_until_close, wait_until

from webserv.proxy_protocol import V2_SIGNATURE

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

BLOCK = """
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / {
            return 200 "$remote_addr $remote_port|$proxy_protocol_addr $proxy_protocol_port|$proxy_protocol_server_addr $proxy_protocol_server_port\\n";
        }
"""  # noqa: E501
WEBSERV = (
    """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
"""
    + BLOCK.replace("{", "{{").replace("}", "}}")
    + """
    }}
}}
"""
)
R = GET_CLOSE
CASES = {
    "v1 TCP4": v1_header("203.0.113.7", "198.51.100.1", 40000, 443) + R,
    "v1 TCP6": v1_header("2001:db8::7", "2001:db8::1", 40001, 80) + R,
    "v1 UNKNOWN": b"PROXY UNKNOWN\r\n" + R,
    "v2 INET + TLVs": v2_header("203.0.113.8", "198.51.100.1", 40002, 443, [(1, b"h2")]) + R,
    "v2 INET6": v2_header("2001:db8::8", "2001:db8::1", 40003, 443) + R,
    "v2 LOCAL": v2_header(local=True) + R,
    "no header": R,
    "wrong v1 signature": b"PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + R,
    "v1 bare LF": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + R,
    "v1 port 99999": b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n" + R,
    "wrong v2 signature": V2_SIGNATURE[:-1] + b"X\x21\x11\x00\x0c" + b"\0" * 12 + R,
    "v2 version 3": V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\0" * 12 + R,
    "v2 oversized length": V2_SIGNATURE + b"\x21\x11\xff\xff" + b"\0" * 12 + R,
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy-nginx")
    pp = free_port()
    (tmp / "root").mkdir()
    ngx = RunningNginx(
        tmp / "nginx", tmp / "root", f"listen 127.0.0.1:{pp} proxy_protocol;\n" + BLOCK
    )
    ngx.start()
    wait_until(lambda: _accepts(pp))
    web = RunningServer(tmp / "webserv", WEBSERV).start()
    yield web.port, pp
    web.stop()
    ngx.stop()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _answer(port: int, chunks: list[bytes]) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local_port = sock.getsockname()[1]
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.1)  # (only so that the pieces are separate reads)
            sock.sendall(chunk)
        reply = read_until_close(sock)
    if not reply:
        return "closed"
    status = reply.split(b" ", 2)[1].decode()
    body = reply.split(b"\r\n\r\n", 1)[1].decode().replace(str(local_port), "PORT")
    return f"{status} {body}"


@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_as_nginx(pair, name):
    web, ngx = pair
    assert _answer(web, [CASES[name]]) == _answer(ngx, [CASES[name]])


def test_split_header_nginx_refuses_webserv_assembles(pair):
    web, ngx = pair
    header = v1_header("203.0.113.9", "198.51.100.1", 40009, 443)
    chunks = [header[:10], header[10:] + R]
    assert _answer(ngx, chunks) == "closed"
    assert _answer(web, chunks) == "200 203.0.113.9 40009|203.0.113.9 40009|198.51.100.1 443\n"


def test_lax_nginx_strict_webserv(pair):
    # nginx passes an unparsable v1 address through; webserv refuses it as broken
    web, ngx = pair
    data = b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n" + R
    assert _answer(ngx, [data]).startswith("200 127.0.0.1 PORT|1.2.3.999 1|")
    assert _answer(web, [data]) == "closed"
