"""log_not_found and the error log of a request's own location: a file not found (404) is
logged at `error` in the location's error_log lines, as nginx; `log_not_found off` leaves
it out; other client errors stay at `info`; an unhandled error in a handler goes to the
location's log too. Every case keeps the connection and the server serving."""

from __future__ import annotations

import pytest
from support import RawConn, RunningServer, wait_until

CONF = """
error_log {tmp}/main.log info;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /own/ {{ error_log {tmp}/own.log; }}
        location /quiet/ {{ error_log {tmp}/quiet.log; log_not_found off; }}
        location /info/ {{ error_log {tmp}/info.log info; allow_methods GET HEAD; }}
    }}
}}
"""
FILES = {"own/f.txt": "x\n", "quiet/f.txt": "x\n", "info/f.txt": "x\n", "f.txt": "x\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("lnf"), CONF, FILES).start()
    yield srv
    srv.stop()


def ask(server, *targets: str, method: str = "GET") -> list[int]:
    with RawConn(server.port) as conn:
        statuses = []
        for target in targets:
            conn.send(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            statuses.append(conn.response()[0])
        conn.send(b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses.append(conn.response()[0])
        return statuses


def text(server, name: str) -> str:
    path = server.tmp / name
    return path.read_text() if path.exists() else ""


def test_not_found_is_an_error_in_the_locations_log(server):
    assert ask(server, "/own/missing.txt", "/missing-in-main.txt") == [404, 404, 200]
    line = wait_until(lambda: [x for x in text(server, "own.log").splitlines() if "missing" in x])
    assert "[error]" in line[0] and 'open() "' in line[0] and "/own/missing.txt" in line[0]
    # main's own lines (info) have the server-level one, and not the location's
    main = wait_until(
        lambda: "missing-in-main" in text(server, "main.log") and text(server, "main.log")
    )
    assert "/own/missing.txt" not in main


def test_log_not_found_off_leaves_it_out(server):
    assert ask(server, "/quiet/missing.txt", "/quiet/missing2.txt") == [404, 404, 200]
    assert ask(server, "/own/marker-after-quiet.txt") == [404, 200]
    wait_until(lambda: "marker-after-quiet" in text(server, "own.log"))
    assert "/quiet/missing" not in text(server, "quiet.log") + text(server, "main.log")


def test_other_client_errors_stay_at_info(server):
    assert ask(server, "/info/f.txt", method="DELETE") == [405, 200]
    line = wait_until(lambda: [x for x in text(server, "info.log").splitlines() if "DELETE" in x])
    assert "[info]" in line[0]
