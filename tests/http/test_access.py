"""allow / deny over real sockets: clients from 127.0.0.1, 127.0.0.2 (local on Linux: the
client socket is bound to it) and [::1]; first match wins; inheritance; a 403 decided before
any body byte is read (an upload to a denied location never reaches disk); the connection
kept after a bodiless refusal; the server serving others throughout."""

from __future__ import annotations

import socket

import pytest
from support import RawConn, RunningServer, ipv6_loopback, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
        deny 127.0.0.3;
        location /open/ {{ }}
        location /free/ {{ allow all; }}
        location /deny2/ {{ deny 127.0.0.2; }}
        location /only1/ {{ allow 127.0.0.1; deny all; }}
        location /net/ {{ deny 127.0.0.2/31; allow 127.0.0.0/8; deny all; }}
        location /order/ {{ allow 127.0.0.2; deny 127.0.0.0/8; }}
        location /own/ {{ allow 127.0.0.5; }}
        location /v6/ {{ deny ::1; }}
        location /v4only/ {{ deny 127.0.0.0/8; }}
        location /all/ {{ deny all; }}
        location /paged/ {{ deny all; error_page 403 /open/403.html; }}
        location /up/ {{
            deny 127.0.0.2;
            allow_methods GET HEAD POST PUT DELETE;
            alias {tmp}/store/;
            upload_store {tmp}/store;
        }}
    }}
}}
"""
DIRS = ["open", "free", "deny2", "only1", "net", "order", "own", "v6", "v4only", "all", "paged"]
FILES = {f"{d}/f.txt": f"{d}\n" for d in DIRS} | {"open/403.html": "custom 403\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    conf = CONF if ipv6_loopback() else CONF.replace("        listen [::1]:{port};\n", "")
    tmp = tmp_path_factory.mktemp("access")
    (tmp / "store").mkdir()
    srv = RunningServer(tmp, conf, FILES).start()
    srv.store = tmp / "store"
    yield srv
    srv.stop()


class From(RawConn):
    """A RawConn whose socket is bound to SOURCE before it connects."""

    def __init__(self, port: int, source: str, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        self.buf = b""


def get(conn: RawConn, path: str, method: str = "GET", extra: str = "") -> tuple[int, dict, bytes]:
    conn.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    return conn.response(head=method == "HEAD")


def status_from(server, source: str, path: str, method: str = "GET") -> int:
    """The status SOURCE gets for PATH; the same connection then still serves /open/."""
    with From(server.port, source) as conn:
        status, headers, _ = get(conn, path, method)
        assert headers.get("connection") != "close", (path, source, status)
        follow, _, body = get(conn, "/free/f.txt")
        assert (follow, body) == (200, b"free\n")
    return status


CASES = [
    # (path, source, status)
    ("/open/f.txt", "127.0.0.1", 200),
    ("/open/f.txt", "127.0.0.2", 200),
    ("/open/f.txt", "127.0.0.3", 403),  # the server's own deny, inherited
    ("/deny2/f.txt", "127.0.0.1", 200),
    ("/deny2/f.txt", "127.0.0.2", 403),
    ("/deny2/f.txt", "127.0.0.3", 200),  # its own list replaced the server's
    ("/only1/f.txt", "127.0.0.1", 200),
    ("/only1/f.txt", "127.0.0.2", 403),
    ("/net/f.txt", "127.0.0.2", 403),
    ("/net/f.txt", "127.0.0.3", 403),
    ("/net/f.txt", "127.0.0.4", 200),
    ("/net/f.txt", "127.0.0.1", 200),
    ("/order/f.txt", "127.0.0.2", 200),  # first match wins
    ("/order/f.txt", "127.0.0.1", 403),
    ("/own/f.txt", "127.0.0.3", 200),  # no rule matched: through
    ("/all/f.txt", "127.0.0.1", 403),
    ("/v4only/f.txt", "127.0.0.9", 403),
    # refused before the content handler: a missing file or a method is not looked at
    ("/all/missing", "127.0.0.1", 403),
    ("/all/f.txt", "127.0.0.1", 403),
]


@pytest.mark.parametrize(("path", "source", "status"), CASES)
def test_rules_by_client_address(server, path, source, status):
    assert status_from(server, source, path) == status


@pytest.mark.parametrize("method", ["HEAD", "DELETE", "OPTIONS"])
def test_denied_whatever_the_method(server, method):
    assert status_from(server, "127.0.0.1", "/all/f.txt", method) == 403
    assert status_from(server, "127.0.0.1", "/only1/f.txt", method) != 403


def test_the_refusal_is_nginx_shaped_and_logged(server):
    with From(server.port, "127.0.0.2") as conn:
        status, headers, body = get(conn, "/deny2/f.txt")
    assert status == 403 and b"403 Forbidden" in body
    assert headers["content-type"] == "text/html" and "www-authenticate" not in headers
    wait_until(
        lambda: any(
            "[info]" in line and "access forbidden by rule, client: 127.0.0.2" in line
            for line in server.error_log.read_text().splitlines()
        )
    )


def test_error_page_for_403(server):
    with From(server.port, "127.0.0.1") as conn:
        status, _, body = get(conn, "/paged/f.txt")
    assert (status, body) == (403, b"custom 403\n")


@pytest.mark.skipif(not ipv6_loopback(), reason="no [::1] on this host")
@pytest.mark.parametrize(
    ("path", "status"),
    [("/v6/f.txt", 403), ("/v4only/f.txt", 200), ("/all/f.txt", 403), ("/deny2/f.txt", 200)],
)
def test_ipv6_client(server, path, status):
    with RawConn(server.port, host="::1") as conn:
        got, headers, _ = get(conn, path)
        assert got == status and headers.get("connection") != "close"
        assert get(conn, "/open/f.txt")[0] == 200


def stored(server) -> list[str]:
    return sorted(p.name for p in server.store.iterdir())


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("framing", ["length", "chunked", "expect"])
def test_an_upload_to_a_denied_location_never_reaches_disk(server, method, framing):
    before = stored(server)
    body = b"x" * 300_000
    if framing == "chunked":
        fields, payload = (
            "Transfer-Encoding: chunked\r\n",
            b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body),
        )
    else:
        fields, payload = f"Content-Length: {len(body)}\r\n", body
    if framing == "expect":
        fields += "Expect: 100-continue\r\n"
    with From(server.port, "127.0.0.2") as conn:
        conn.send(f"{method} /up/denied.bin HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        if framing != "expect":
            try:
                conn.send(payload[:65536])  # the start of the body: never read
            except OSError:
                pass
        status, headers, _ = conn.response()
        assert status == 403 and not status == 100
        # the body was not read: the connection cannot be reused, and ends
        assert headers.get("connection") == "close" and conn.closed_by_peer()
    assert stored(server) == before
    # the same upload from an allowed client is stored: the location does take uploads
    with From(server.port, "127.0.0.1") as conn:
        conn.send(
            f"{method} /up/allowed-{framing}.bin HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode()
        )
        if framing == "expect":
            assert conn.response()[0] == 100
        conn.send(payload)
        assert conn.response()[0] in (200, 201, 204)
    assert stored(server) != before
    assert status_from(server, "127.0.0.1", "/open/f.txt") == 200


def test_an_empty_body_refused_keeps_the_connection(server):
    with From(server.port, "127.0.0.2") as conn:
        conn.send(b"POST /up/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        status, headers, _ = conn.response()
        assert status == 403 and headers.get("connection") != "close"
        assert get(conn, "/open/f.txt")[0] == 200


def test_pipelined_requests_each_decided(server):
    with From(server.port, "127.0.0.2") as conn:
        conn.send(
            b"GET /deny2/f.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /open/f.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /deny2/f.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert [conn.response()[0] for _ in range(3)] == [403, 200, 403]
        assert conn.closed_by_peer()
