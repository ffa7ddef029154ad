"""Connections: keep-alive, HTTP/1.0, pipelining, idle timeouts, limits, malformed input."""

from __future__ import annotations

import socket

import pytest
from support import RawConn, RunningServer, read_until_close, request, wait_until

CONF = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        client_header_timeout 2s;
        location /ka0/ {{ keepalive_timeout 0; }}
        location /kah/ {{ keepalive_timeout 75s 60s; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        root {root};
        keepalive_timeout 1s;
    }}
}}
"""
FILES = {f"p{i}.txt": f"page {i}\n" for i in range(10)}
FILES.update(
    {
        "index.html": "home\n",
        "ka0/x.txt": "ka0\n",
        "kah/x.txt": "kah\n",
        "big.bin": bytes(range(256)) * 400,
    }
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("conn"), CONF, FILES, ports=2).start()
    yield srv
    srv.stop()


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_keepalive_http11(server):
    with RawConn(server.port) as conn:
        for i in range(3):
            conn.send(get(f"/p{i}.txt"))
            status, headers, body = conn.response()
            assert (status, body) == (200, f"page {i}\n".encode())
            assert headers["connection"] == "keep-alive"
            assert "keep-alive" not in headers  # no Keep-Alive header unless configured
        assert not conn.closed_by_peer(timeout=0.2)


def test_keepalive_header_when_configured(server):
    status, headers, _ = request(server.port, "/kah/x.txt", headers={"Connection": "keep-alive"})
    assert (status, headers["connection"], headers["keep-alive"]) == (
        200,
        "keep-alive",
        "timeout=60",
    )


def test_http10_closes_by_default(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /p1.txt HTTP/1.0\r\n\r\n")  # no Host needed in HTTP/1.0
        reply = read_until_close(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nConnection: close" in head
    assert b"\r\nContent-Length: 7" in head
    assert body == b"page 1\n"


def test_http10_keepalive(server):
    with RawConn(server.port) as conn:
        for i in (1, 2):
            conn.send(f"GET /p{i}.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            status, headers, body = conn.response()
            assert headers[":status-line"] == "HTTP/1.0 200 OK"
            assert (body, headers["connection"]) == (f"page {i}\n".encode(), "keep-alive")
        conn.send(b"GET /p3.txt HTTP/1.0\r\n\r\n")
        status, headers, body = conn.response()
        assert (status, body, headers["connection"]) == (200, b"page 3\n", "close")
        assert conn.closed_by_peer()


def test_connection_close_honoured(server):
    with RawConn(server.port) as conn:
        conn.send(get("/p1.txt", "Connection: close\r\n"))
        status, headers, body = conn.response()
        assert (status, body, headers["connection"]) == (200, b"page 1\n", "close")
        assert conn.closed_by_peer()


def test_keepalive_timeout_zero_closes(server):
    with RawConn(server.port) as conn:
        conn.send(get("/ka0/x.txt"))
        status, headers, body = conn.response()
        assert (status, body, headers["connection"]) == (200, b"ka0\n", "close")
        assert conn.closed_by_peer()


def test_idle_keepalive_connection_closed_after_timeout(server):
    with RawConn(server.ports[1]) as conn:
        conn.send(get("/p1.txt"))
        assert conn.response()[0] == 200
        assert conn.closed_by_peer(timeout=15)  # keepalive_timeout 1s; waits, asserts no duration
        assert conn.buf == b""
    assert server.alive()


def test_connection_without_request_closed_silently(server):
    with RawConn(server.port) as conn:
        assert conn.closed_by_peer(timeout=15)  # client_header_timeout 2s, nothing to answer
        assert conn.buf == b""


def test_pipelining_in_order(server):
    paths = [
        "/p0.txt",
        "/p1.txt",
        "/missing",
        "/p2.txt",
        "/p3.txt",
        "/p4.txt",
        "/p5.txt",
        "/p6.txt",
        "/p7.txt",
        "/p8.txt",
    ]
    batch = b"".join(
        (b"HEAD " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n") if i == 4 else get(p)
        for i, p in enumerate(paths)
    )
    with RawConn(server.port) as conn:
        conn.send(batch)  # one send(): the server sees all ten at once
        for i, path in enumerate(paths):
            status, headers, body = conn.response(head=i == 4)
            if path == "/missing":
                assert status == 404 and b"404 Not Found" in body
            elif i == 4:
                assert (status, headers["content-length"], body) == (200, "7", b"")
            else:
                assert (status, body) == (200, FILES[path[1:]].encode())
            assert headers["connection"] == "keep-alive"
        conn.send(get("/p9.txt"))
        assert conn.response()[::2] == (200, b"page 9\n")


def test_pipelining_many_big_responses(server):
    count = 40
    with RawConn(server.port) as conn:
        conn.send(get("/big.bin") * count + get("/p1.txt"))
        for _ in range(count):
            assert conn.response()[::2] == (200, FILES["big.bin"])
        assert conn.response()[::2] == (200, b"page 1\n")


def test_pipelining_stops_at_connection_close(server):
    with RawConn(server.port) as conn:
        conn.send(get("/p1.txt") + get("/p2.txt", "Connection: close\r\n") + get("/p3.txt"))
        assert conn.response()[::2] == (200, b"page 1\n")
        status, headers, body = conn.response()
        assert (status, body, headers["connection"]) == (200, b"page 2\n", "close")
        assert conn.closed_by_peer()
        assert conn.buf == b""  # /p3.txt is never answered


def test_half_closed_client_still_answered(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(get("/p1.txt") + get("/p2.txt"))
        sock.shutdown(socket.SHUT_WR)
        reply = read_until_close(sock)
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert reply.endswith(b"page 2\n")


def assert_error_and_closed(server, data: bytes, status: int):
    with RawConn(server.port) as conn:
        conn.send(data)
        got, headers, body = conn.response()
        assert got == status
        assert headers["connection"] == "close"
        assert headers["content-length"] == str(len(body))
        assert conn.closed_by_peer()
        assert conn.buf == b""
    assert server.alive()


def test_request_line_too_long_414(server):
    assert_error_and_closed(server, get("/" + "a" * 8200), 414)


def test_request_line_longer_than_whole_section_414(server):
    assert_error_and_closed(server, get("/" + "a" * 40000), 414)


def test_request_line_just_under_limit(server):
    # 8k for the request line: "GET " + target + " HTTP/1.1" (nginx counts the line)
    status, _, _ = request(server.port, "/" + "a" * 8000)
    assert status == 404


def test_header_field_too_long_431(server):
    assert_error_and_closed(server, get("/", "X-Long: " + "b" * 8200 + "\r\n"), 431)


def test_header_just_under_limit(server):
    status, _, body = request(server.port, "/p1.txt", headers={"X-Long": "b" * 8000})
    assert (status, body) == (200, b"page 1\n")


def test_header_section_too_large_431(server):
    fields = "".join(f"X-H{i}: {'c' * 4000}\r\n" for i in range(10))  # 40k in 4k fields
    assert_error_and_closed(server, get("/", fields), 431)


def test_header_section_sent_in_pieces_431(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for i in range(10):
            conn.send(f"X-H{i}: {'d' * 4000}\r\n".encode())
        status, headers, _ = conn.response()
        assert (status, headers["connection"]) == (431, "close")
        assert conn.closed_by_peer()
    assert server.alive()


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on a plain port
    ],
    ids=["garbage", "extra-token", "bad-version-name", "header-without-colon", "empty-name", "tls"],
)
def test_malformed_request_400(server, data):
    assert_error_and_closed(server, data, 400)


@pytest.mark.parametrize("version", [b"2.0", b"3.0"])
def test_other_major_version_505(server, version):
    assert_error_and_closed(server, b"GET / HTTP/" + version + b"\r\nHost: x\r\n\r\n", 505)


def test_higher_http1_minor_answered_as_11(server):
    # RFC 9110 §2.5 / RFC 9112 §2.3: HTTP/1.x is compatible with 1.1; nginx answers it too
    with RawConn(server.port) as conn:
        conn.send(b"GET /p1.txt HTTP/1.2\r\nHost: x\r\n\r\n")
        status, headers, body = conn.response()
        assert headers[":status-line"] == "HTTP/1.1 200 OK"
        assert body == b"page 1\n"


def test_http11_without_host_400(server):
    assert_error_and_closed(server, b"GET / HTTP/1.1\r\n\r\n", 400)


def test_two_host_headers_400(server):
    assert_error_and_closed(server, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)


def test_error_in_pipeline_answers_earlier_requests_first(server):
    with RawConn(server.port) as conn:
        conn.send(get("/p1.txt") + get("/p2.txt") + b"GET / HTTP/1.1\r\n\r\n" + get("/p3.txt"))
        assert conn.response()[::2] == (200, b"page 1\n")
        assert conn.response()[::2] == (200, b"page 2\n")
        status, headers, _ = conn.response()
        assert (status, headers["connection"]) == (400, "close")
        assert conn.closed_by_peer()
        assert conn.buf == b""


def test_slow_client_408_while_others_are_served(server):
    slow = RawConn(server.port)
    try:
        slow.send(b"GET /p1.txt HTTP/1.1\r\nHost: x\r\nX-Half: ")  # and then nothing
        for i in range(5):
            with RawConn(server.port) as other:
                other.send(get(f"/p{i}.txt"))
                assert other.response()[::2] == (200, f"page {i}\n".encode())
        # ordering, not duration: the slow client is still waiting after the others were
        # answered (client_header_timeout is 2s; five local requests take milliseconds)
        slow.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.sock.recv(1, socket.MSG_PEEK)
        slow.sock.setblocking(True)
        slow.sock.settimeout(15)
        status, headers, body = slow.response()
        assert status == 408
        assert b"<title>408 Request Timeout</title>" in body
        assert headers["connection"] == "close"
        assert slow.closed_by_peer()
    finally:
        slow.sock.close()
    assert server.alive()


def test_many_idle_connections_do_not_block_others(server):
    idle = [RawConn(server.port) for _ in range(50)]
    try:
        for conn in idle[:25]:
            conn.send(b"GET /p1.txt HTTP/1.1\r\n")
        assert request(server.port, "/p2.txt")[::2] == (200, b"page 2\n")
    finally:
        for conn in idle:
            conn.sock.close()
    wait_until(server.alive)
