"""add_trailer: trailer fields after the last chunk of a chunked answer (a CGI script that
gives no length), for add_header's statuses or `always`; never on an answer with a length,
and the connection goes on after a chunked answer with trailers."""

from __future__ import annotations

import os

import pytest
from support import RunningServer

CONF = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            cgi .sh;
            add_trailer X-Trailer "fixed";
            add_trailer X-Uri "$uri" always;
            add_trailer X-Empty "";
        }}
        location /plain/ {{ add_trailer X-Trailer "never"; }}
    }}
}}
"""
SCRIPTS = {
    "ok.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'; echo streamed\n",
    "gone.sh": "#!/bin/sh\nprintf 'Status: 410 Gone\\r\\nContent-Type: text/plain\\r\\n\\r\\n'; echo g\n",
    "plain/f.txt": "file\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("trailer"), CONF, SCRIPTS)
    for name in ("ok.sh", "gone.sh"):
        os.chmod(srv.root / name, 0o755)
    srv.start()
    yield srv
    srv.stop()


def exchange(server, *targets: str) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for i, target in enumerate(targets):
            close = "Connection: close\r\n" if i == len(targets) - 1 else ""
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{close}\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_trailers_after_the_last_chunk_and_the_connection_goes_on(server):
    data = exchange(server, "/ok.sh", "/gone.sh")
    first, second = data.split(b"HTTP/1.1 410", 1)
    assert b"Transfer-Encoding: chunked" in first
    assert first.endswith(b"0\r\nX-Trailer: fixed\r\nX-Uri: /ok.sh\r\n\r\n")
    assert b"X-Empty" not in data
    # a 410 takes only the `always` one
    assert second.endswith(b"0\r\nX-Uri: /gone.sh\r\n\r\n")


def test_no_trailers_on_an_answer_with_a_length(server):
    data = exchange(server, "/plain/f.txt")
    assert b"Content-Length: 5" in data and data.endswith(b"\r\n\r\nfile\n")
    assert b"never" not in data


def test_http10_gets_no_trailers(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /ok.sh HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"streamed\n") and b"X-Trailer" not in data
