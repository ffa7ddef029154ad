"""Request bodies: streamed to stdin, chunked bodies un-chunked, size limits, demo forms."""

from __future__ import annotations

import hashlib
import json
import os
import socket

from cgi_support import get, read_until, still_serves
from support import RawConn


def chunked(data: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        out += b"%x\r\n%b\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


def test_content_length_body(server):
    body = os.urandom(300_000)
    headers = f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    status, _, reply = get(server.port, "/cgi-bin/echo.py", "POST", headers, body)
    assert status == 200
    got = json.loads(reply)
    assert got["CONTENT_LENGTH"] == str(len(body))
    assert got["CONTENT_TYPE"] == "application/octet-stream"
    assert got["read"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()


def test_content_length_body_streamed_as_it_arrives(server):
    """The script reads the first bytes and answers before the client sent the rest."""
    first, rest = b"12345", os.urandom(50_000)
    head = (
        "POST /cgi-bin/echo.py?early=5 HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {len(first) + len(rest)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + first)
        buf = read_until(sock, b"got 5\n")  # the rest of the body is not even sent yet
        assert buf.startswith(b"HTTP/1.1 200 ")
        sock.sendall(rest)
        while b"0\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
    assert b"Transfer-Encoding: chunked" in buf
    got = json.loads(buf.split(b"got 5\n", 1)[1].split(b"\r\n")[2])
    assert got["read"] == len(first) + len(rest)
    assert got["sha256"] == hashlib.sha256(first + rest).hexdigest()


def test_chunked_body_arrives_unchunked_with_content_length(server):
    body = os.urandom(200_000)
    headers = "Transfer-Encoding: chunked\r\nContent-Type: application/x-test\r\n"
    status, _, reply = get(server.port, "/cgi-bin/echo.py", "POST", headers, chunked(body, 7000))
    assert status == 200
    got = json.loads(reply)
    assert got["CONTENT_LENGTH"] == str(len(body))
    assert got["read"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    assert got["HTTP_TRANSFER_ENCODING"] is None  # the script reads a plain body
    assert got["CONTENT_TYPE"] == "application/x-test"


def test_empty_chunked_body(server):
    status, _, reply = get(
        server.port, "/cgi-bin/echo.py", "POST", "Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"
    )
    assert status == 200
    got = json.loads(reply)
    assert (got["CONTENT_LENGTH"], got["read"]) == ("0", 0)


def test_keepalive_after_post(server):
    with RawConn(server.port, timeout=30) as conn:
        for i in range(3):
            body = b"x" * (i * 1000)
            conn.send(
                b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%b"
                % (len(body), body)
            )
            status, fields, reply = conn.response()
            assert status == 200 and json.loads(reply)["read"] == len(body)
            assert fields["connection"] == "keep-alive"


def test_client_max_body_size_content_length_413(server):
    body = b"x" * 101
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            b"POST /small/echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n" + body
        )
        status, fields, _ = conn.response()
        assert status == 413 and fields["connection"] == "close"
        assert conn.closed_by_peer()
    still_serves(server)


def test_client_max_body_size_chunked_413(server):
    with RawConn(server.port, timeout=30) as conn:
        conn.send(
            b"POST /small/echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"y" * 300, 60)
        )
        status, fields, _ = conn.response()
        assert status == 413 and fields["connection"] == "close"
        assert conn.closed_by_peer()
    status, _, reply = get(
        server.port,
        "/small/echo.py",
        "POST",
        "Transfer-Encoding: chunked\r\n",
        chunked(b"z" * 90, 30),
    )
    assert status == 200 and json.loads(reply)["read"] == 90  # under the limit: fine
    still_serves(server)


def test_method_not_allowed_405(server):
    status, fields, _ = get(server.port, "/getonly/echo.py", "POST", "Content-Length: 0\r\n")
    assert status == 405 and fields["allow"] == "GET, HEAD"
    still_serves(server)


def test_form_get_and_post(server):
    status, _, body = get(server.port, "/cgi-bin/form.py?name=Ada&colour=green")
    assert status == 200
    assert b"Hello, Ada!" in body and b"<th>colour</th><td>green</td>" in body
    assert b'<form method="post" action="/cgi-bin/form.py">' in body
    form = b"name=Bob+%26+Co&comment=hi%3Cthere%3E"
    headers = f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n"
    status, _, body = get(server.port, "/cgi-bin/form.py", "POST", headers, form)
    assert status == 200
    assert b"Hello, Bob &amp; Co!" in body
    assert b"<th>comment</th><td>hi&lt;there&gt;</td>" in body


def test_upload_echo_multipart(server):
    boundary = "----webservtest"
    files = [
        ("title", None, b"My title"),
        ("files", "a.bin", os.urandom(5000)),
        ("files", "b.txt", b"hello\r\n--not-a-boundary\r\n"),
    ]
    body = b""
    for name, filename, data in files:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = (
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n"
    )
    status, _, reply = get(
        server.port, "/cgi-bin/upload_echo.py?format=json", "POST", headers, body
    )
    assert status == 200
    parts = json.loads(reply)["parts"]
    assert [(p["name"], p["filename"], p["size"]) for p in parts] == [
        (name, filename, len(data)) for name, filename, data in files
    ]
    assert parts[1]["sha256"] == hashlib.sha256(files[1][2]).hexdigest()
    status, _, page = get(server.port, "/cgi-bin/upload_echo.py")
    assert status == 200 and b'enctype="multipart/form-data"' in page


def test_script_that_ignores_its_body(server):
    """The script answers without reading stdin: the answer still arrives whole."""
    body = os.urandom(600_000)  # more than a pipe holds
    target = "/cgi-bin/respond.py?Content-Type:%20text/plain%0A%0Aignored"
    status, _, reply = get(server.port, target, "POST", f"Content-Length: {len(body)}\r\n", body)
    assert (status, reply) == (200, b"ignored")
    still_serves(server)


def test_large_body_through_and_back(server):
    """900 KB in and the same 900 KB out, with a length and chunked (spooled) alike."""
    body = os.urandom(900_000)
    status, _, reply = get(
        server.port, "/cgi-bin/cat.py", "POST", f"Content-Length: {len(body)}\r\n", body
    )
    assert status == 200 and hashlib.sha256(reply).digest() == hashlib.sha256(body).digest()
    status, _, reply = get(
        server.port,
        "/cgi-bin/cat.py",
        "POST",
        "Transfer-Encoding: chunked\r\n",
        chunked(body, 65536),
    )
    assert status == 200 and hashlib.sha256(reply).digest() == hashlib.sha256(body).digest()


def test_expect_100_continue(server):
    body = b"name=Eve"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /cgi-bin/echo.py HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        buf = read_until(sock, b"\r\n\r\n")
        assert buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # asked for before sending
        sock.sendall(body)
        buf = read_until(sock, b"0\r\n\r\n", buf)
    assert b'"read": 8' in buf
