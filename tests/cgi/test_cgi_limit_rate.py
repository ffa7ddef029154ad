"""limit_rate on a CGI answer: a script's body (a stream, whether it says Content-Length
or not) goes out whole, as it comes, and the connection goes on. It once hung: the answer
of a known length was handed to the pacer, which sends bodies from memory or files, and
the stream was never read."""

from __future__ import annotations

import os

import pytest
from support import RawConn, RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ cgi .sh; limit_rate 1k; }}
    }}
}}
"""
SCRIPTS = {
    "length.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 6\\r\\n\\r\\nhello\\n'\n",
    "stream.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'; echo streamed\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("cgi-rate"), CONF, SCRIPTS)
    for name in SCRIPTS:
        os.chmod(srv.root / name, 0o755)
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("script", "body"), [("length.sh", b"hello\n"), ("stream.sh", b"streamed\n")]
)
def test_cgi_answers_whole_under_limit_rate(server, script, body):
    with RawConn(server.port, timeout=10) as conn:
        for _ in range(2):  # and the connection serves the next request
            conn.send(f"GET /{script} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status, _, got = conn.response()
            assert (status, got) == (200, body)
