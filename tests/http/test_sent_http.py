"""$sent_http_NAME in a log line: the field as the answer's header section sent it
(nginx's variable), "-" where the answer had none; every kind of answer, kept alive."""

from __future__ import annotations

import re

import pytest
from support import RawConn, RunningServer, wait_until

CONF = """
http {{
    log_format sent '$request_uri|$sent_http_content_type|$sent_http_connection|'
                    '$sent_http_keep_alive|$sent_http_content_length|$sent_http_x_none|'
                    '$sent_http_x_added|$connection_time';
    server {{
        listen 127.0.0.1:{port};
        root {root};
        keepalive_timeout 60s 30s;
        access_log {tmp}/sent.log sent;
        location = /added {{ add_header X-Added "one two"; return 200 "x"; }}
        location = /gone {{ return 410; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("sent"), CONF, {"a.html": "abc\n"}).start()
    yield srv
    srv.stop()


def test_sent_fields_are_logged(server):
    with RawConn(server.port) as conn:
        for target in ("/a.html", "/missing", "/added", "/gone"):
            conn.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            conn.response()
        conn.send(b"GET /a.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        conn.response()
    path = server.tmp / "sent.log"
    lines = wait_until(lambda: path.exists() and len(path.read_text().splitlines()) == 5 and path)
    got = [line.split("|") for line in lines.read_text().splitlines()]
    # $connection_time: seconds since accept, ms resolution, growing along the connection
    raw = [fields.pop() for fields in got]
    assert all(re.fullmatch(r"\d+\.\d{3}", value) for value in raw), raw
    times = [float(value) for value in raw]
    assert times == sorted(times)
    assert got[0] == ["/a.html", "text/html", "keep-alive", "timeout=30", "4", "-", "-"]
    assert got[1][:3] == ["/missing", "text/html", "keep-alive"] and got[1][5] == "-"
    assert got[2][0] == "/added" and got[2][6] == "one two"
    assert got[3][0] == "/gone" and got[3][1] == "text/html"
    assert got[4] == ["/a.html", "text/html", "close", "-", "4", "-", "-"]
