"""Access log (combined, log_format, escape=json, off) and the error log with levels."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from support import RawConn, read_until_close, request, wait_until

CONF = """
error_log logs/error.log info;
http {{
    log_format many '$connection|$connection_requests|$status|$body_bytes_sent|$bytes_sent|'
                    '$request_length|$request_time|$msec|$server_name|$host|$uri|$args|'
                    '$http_user_agent|$http_x_trace_id|$remote_addr|$request_method|$request';
    log_format js escape=json '{{"ua":"$http_user_agent","uri":"$uri","status":$status,"ref":"$http_referer"}}';
    server {{
        listen 127.0.0.1:{port};
        server_name main.example www.main.example;
        root {root};
        location /nolog/ {{ access_log off; }}
        location /many/ {{ access_log logs/many.log many; }}
        location /json/ {{ access_log logs/json.log js; }}
        location /both/ {{ access_log logs/many.log many; access_log logs/access.log; }}
        location /close {{ return 444; }}
    }}
}}
"""
FILES = {
    "index.html": "home\n",
    "p.txt": "page 7\n",
    "nolog/x.txt": "x",
    "many/a.txt": "aaa\n",
    "many/b.txt": "bbbbbbbb\n",
    "json/j.txt": "j",
    "both/x.txt": "x",
}
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
TIME_LOCAL = rf"\d\d/({MONTHS})/\d{{4}}:\d\d:\d\d:\d\d [+-]\d{{4}}"


@pytest.fixture
def server(webserv):
    return webserv(CONF, files=FILES)


def combined(
    request_line: str, status: int, size: int, referer: str = "-", agent: str = "-"
) -> re.Pattern:
    return re.compile(
        rf'127\.0\.0\.1 - - \[{TIME_LOCAL}\] "{re.escape(request_line)}" {status} {size} '
        rf'"{re.escape(referer)}" "{re.escape(agent)}"'
    )


def test_combined_format(server):
    headers = {"Referer": "http://ref.example/from", "User-Agent": "test-agent/1.0 (x)"}
    status, _, body = request(server.port, "/p.txt?a=1&b=2", headers=headers)
    assert (status, body) == (200, b"page 7\n")
    request(server.port, "/p.txt", method="HEAD")
    lines = server.wait_access_lines(2)
    assert combined(
        "GET /p.txt?a=1&b=2 HTTP/1.1", 200, 7, headers["Referer"], headers["User-Agent"]
    ).fullmatch(lines[0]), lines[0]
    assert combined("HEAD /p.txt HTTP/1.1", 200, 0).fullmatch(lines[1]), lines[1]


def test_combined_escapes_like_nginx(server):
    request(
        server.port, "/p.txt", headers={"User-Agent": 'quote" back\\ é'.encode().decode("latin-1")}
    )
    line = server.wait_access_lines(1)[0]
    assert line.endswith(' "quote\\x22 back\\x5C \\xC3\\xA9"')


def test_log_lines_for_404_and_400(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, page404 = conn.response()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply400 = read_until_close(sock)
    page400 = reply400.partition(b"\r\n\r\n")[2]
    lines = server.wait_access_lines(2)
    assert combined("GET /missing HTTP/1.1", 404, len(page404)).fullmatch(lines[0]), lines[0]
    assert combined("GET /%zz HTTP/1.1", 400, len(page400)).fullmatch(lines[1]), lines[1]


def test_log_line_for_garbage_and_444(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        read_until_close(sock)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_close(sock) == b""
    lines = server.wait_access_lines(2)
    assert re.fullmatch(rf'127\.0\.0\.1 - - \[{TIME_LOCAL}\] "[^"]*" 400 \d+ "-" "-"', lines[0]), (
        lines[0]
    )
    assert combined("GET /close HTTP/1.1", 444, 0).fullmatch(lines[1]), lines[1]


def split_responses(data: bytes, heads: list[bool]) -> list[bytes]:
    """Cut a byte stream of responses (all with Content-Length) into whole responses."""
    out = []
    for head in heads:
        end = data.index(b"\r\n\r\n") + 4
        match = re.search(rb"\r\nContent-Length: (\d+)\r\n", data[:end])
        length = 0 if head or match is None else int(match.group(1))
        out.append(data[: end + length])
        data = data[end + length :]
    assert data == b""
    return out


def test_custom_format_variables_on_keepalive_connection(server):
    requests = [
        b"GET /many/a.txt?x=1&y=2 HTTP/1.1\r\nHost: WWW.Main.Example:8080\r\nUser-Agent: ua/1\r\nX-Trace-Id: t-1\r\n\r\n",
        b"HEAD /many/b.txt HTTP/1.1\r\nHost: www.main.example\r\n\r\n",
        b"GET /many/%62.txt HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    ]
    before = time.time()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"".join(requests))
        replies = split_responses(read_until_close(sock), [False, True, False])
    after = time.time()
    log = server.tmp / "logs" / "many.log"
    lines = wait_until(
        lambda: (
            log.exists() and len(log.read_text().splitlines()) >= 3 and log.read_text().splitlines()
        )
    )
    assert len(lines) == 3
    fields = [line.split("|") for line in lines]
    connection = fields[0][0]
    assert connection.isdigit()
    bodies = [b"aaa\n", b"", b"bbbbbbbb\n"]
    expected = [
        # server_name is the server's first name; $host the request's, lower-case, no port
        [
            "1",
            "200",
            "main.example",
            "www.main.example",
            "/many/a.txt",
            "x=1&y=2",
            "ua/1",
            "t-1",
            "GET",
        ],
        ["2", "200", "main.example", "www.main.example", "/many/b.txt", "-", "-", "-", "HEAD"],
        ["3", "200", "main.example", "other.example", "/many/b.txt", "-", "-", "-", "GET"],
    ]
    for i, f in enumerate(fields):
        assert f[0] == connection  # one connection, three requests
        assert [f[1], f[2], f[8], f[9], f[10], f[11], f[12], f[13], f[15]] == expected[i]
        assert int(f[3]) == len(bodies[i])  # $body_bytes_sent
        assert int(f[4]) == len(replies[i])  # $bytes_sent: header section and body
        assert int(f[5]) == len(requests[i])  # $request_length: the request's bytes
        assert re.fullmatch(r"\d+\.\d{3}", f[6]) and float(f[6]) >= 0  # $request_time
        assert re.fullmatch(r"\d+\.\d{3}", f[7]) and before - 1 <= float(f[7]) <= after + 1
        assert f[14] == "127.0.0.1"
        assert f[16] == requests[i].split(b"\r\n")[0].decode()
    assert not server.access_log.exists() or server.access_lines() == []


def test_connection_numbers_differ_between_connections(server):
    request(server.port, "/many/a.txt")
    request(server.port, "/many/a.txt")
    log = server.tmp / "logs" / "many.log"
    lines = wait_until(
        lambda: (
            log.exists() and len(log.read_text().splitlines()) >= 2 and log.read_text().splitlines()
        )
    )
    first, second = (line.split("|") for line in lines)
    assert int(second[0]) > int(first[0])
    assert first[1] == second[1] == "1"


def test_escape_json(server):
    agent = 'a"b\\c\té'.encode().decode("latin-1")
    request(server.port, "/json/j.txt", headers={"User-Agent": agent, "Referer": 'http://r/?q="x"'})
    request(server.port, "/json/missing")
    log = server.tmp / "logs" / "json.log"
    lines = wait_until(
        lambda: (
            log.exists() and len(log.read_text().splitlines()) >= 2 and log.read_text().splitlines()
        )
    )
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "ua": 'a"b\\c\té',
        "uri": "/json/j.txt",
        "status": 200,
        "ref": 'http://r/?q="x"',
    }
    assert second == {"ua": "", "uri": "/json/missing", "status": 404, "ref": ""}


def test_access_log_off_and_per_location_files(server):
    request(server.port, "/nolog/x.txt")
    request(server.port, "/both/x.txt")
    request(server.port, "/index.html")
    lines = server.wait_access_lines(2)
    assert [re.search(r'"GET (\S+)', line).group(1) for line in lines] == [
        "/both/x.txt",
        "/index.html",
    ]
    many = (server.tmp / "logs" / "many.log").read_text().splitlines()
    assert len(many) == 1 and "|/both/x.txt|" in many[0]
    server.stop()  # flushes every buffer: still nothing for /nolog/
    assert "/nolog/" not in server.access_log.read_text()


ERROR_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#0: "


def test_error_log_info_level_file(server):
    log = server.tmp / "logs" / "error.log"  # relative to the config file's folder
    request(server.port, "/missing")
    text = wait_until(lambda: log.exists() and "missing" in log.read_text() and log.read_text())
    lines = text.splitlines()
    assert all(re.match(ERROR_LINE, line) for line in lines), lines
    assert any(re.match(ERROR_LINE + "listening on 127.0.0.1:", line) for line in lines)
    pattern = (
        ERROR_LINE + r'\*\d+ open\(\) ".*/www/missing" failed \(2: No such file or directory\), '
        r'client: 127\.0\.0\.1, request: "GET /missing HTTP/1\.1"'
    )
    hits = [re.fullmatch(pattern, line) for line in lines if "missing" in line]
    assert len(hits) == 1 and hits[0] and hits[0].group(1) == "error"  # (log_not_found on)


def test_error_log_level_filters(webserv):
    conf = CONF.replace("error_log logs/error.log info;", "error_log {tmp}/errors-only.log error;")
    server = webserv(conf, files=FILES)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(server.root / "sock"))
    try:
        assert request(server.port, "/missing.txt", method="DELETE")[0] == 405  # info: filtered
        assert request(server.port, "/sock")[0] == 500  # error: written
    finally:
        sock.close()
    log = server.tmp / "errors-only.log"
    text = wait_until(lambda: log.exists() and "sock" in log.read_text() and log.read_text())
    lines = text.splitlines()
    assert len(lines) == 1, lines
    assert re.match(
        ERROR_LINE + r'\*\d+ open\(\) ".*/www/sock" failed \(6: No such device or address\)',
        lines[0],
    )
    assert re.match(ERROR_LINE, lines[0]).group(1) == "error"
