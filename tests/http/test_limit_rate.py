"""limit_rate / limit_rate_after: a response body never runs ahead of nginx's allowance,
RATE × (seconds since the request + 1) + limit_rate_after bytes, for files (sendfile) and
bodies from memory alike; the bytes arrive whole; other clients are served meanwhile; a
client that leaves mid-download costs nothing. No timing threshold: the allowance is an
upper bound that only a server running ahead can break, and an unlimited location breaks it
by far (the check can fail)."""

from __future__ import annotations

import socket
import time

from support import RunningServer, request

CONF = """
error_log {tmp}/error.log info;
http {{
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /rate/ {{ limit_rate 100k; }}
        location /after/ {{ limit_rate 50k; limit_rate_after 200k; }}
        location /free/ {{ }}
        location = /mem {{ limit_rate 1k; return 200 "{text}"; }}
    }}
}}
"""
TEXT = "0123456789" * 300  # 3000 bytes, answered from memory
DATA = bytes(range(256)) * 1200  # 300 KiB
BIG = bytes(range(256)) * 16384  # 4 MiB


def download(port, path):
    """The whole response, and (seconds since before connecting, bytes so far) per read."""
    begun = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n".encode())
    data, samples = b"", []
    while chunk := sock.recv(65536):
        data += chunk
        samples.append((time.monotonic() - begun, len(data)))
    sock.close()
    return data, samples


def ahead(samples, rate, after=0):
    """The reads that held more than the allowance (the header counts, as nginx counts it)."""
    return [(t, n) for t, n in samples if n > rate * (t + 1) + after]


def test_bodies_never_run_ahead_of_the_allowance(tmp_path):
    files = {"rate/f.bin": DATA, "after/f.bin": DATA, "free/f.bin": BIG}
    server = RunningServer(tmp_path / "s", CONF.replace("{text}", TEXT), files).start()
    try:
        data, samples = download(server.port, "/rate/f.bin")
        assert data.endswith(b"\r\n\r\n" + DATA) and b" 200 OK" in data[:20]
        assert ahead(samples, 100 * 1024) == []
        assert len(samples) > 1  # it came in pieces, not in one go
        data, samples = download(server.port, "/after/f.bin")
        assert data.endswith(DATA)
        assert ahead(samples, 50 * 1024, 200 * 1024) == []
        data, samples = download(server.port, "/mem")
        assert data.endswith(TEXT.encode())
        assert ahead(samples, 1024) == []
        # the same check on an unlimited location fails: 4 MiB arrive far ahead of 100k/s
        data, samples = download(server.port, "/free/f.bin")
        assert data.endswith(BIG)
        assert ahead(samples, 100 * 1024) != []
    finally:
        server.stop()


def test_a_paced_download_holds_nothing_and_can_be_left(tmp_path):
    files = {"rate/f.bin": DATA * 10, "free/x.txt": "x\n"}
    server = RunningServer(tmp_path / "s", CONF.replace("{text}", TEXT), files).start()
    try:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        slow.sendall(b"GET /rate/f.bin HTTP/1.1\r\nHost: l\r\n\r\n")
        assert slow.recv(65536).startswith(b"HTTP/1.1 200")
        # the one worker answers others while it paces the download
        for _ in range(5):
            assert request(server.port, "/free/x.txt")[0] == 200
        slow.close()  # the client leaves mid-download
        for _ in range(5):
            assert request(server.port, "/free/x.txt")[0] == 200
        assert "Traceback" not in server.output()
    finally:
        server.stop()
