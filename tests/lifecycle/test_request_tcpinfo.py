"""lifecycle_request_tcpinfo: a request's own TCP numbers, over real loopback connections.

TCP_INFO is read at a request's first byte and once its response is in the kernel's hands;
the request then carries the deltas (retransmits, bytes acked and received, segments) and
the RTT and delivery rate at its end — in the status JSON, the lifecycle log and the
$request_tcp_* log variables. Sampled: the first request of a connection, every Nth, and
the one that says it is the last; the others carry nothing (and say "-" in a log line).
"""

from __future__ import annotations

import socket
from pathlib import Path

from lifecycle_support import (
    closed_record,
    connect,
    get,
    log_record,
    read_response,
    status_of,
)
from support import wait_until

CONF = """
http {{
    log_format tcp '$connection_requests $status $uri rtt=$request_tcp_rtt '
                   'acked=$request_tcp_bytes_acked received=$request_tcp_bytes_received '
                   'retrans=$request_tcp_retransmits rate=$request_tcp_delivery_rate';
    access_log {tmp}/logs/access.log tcp;
    lifecycle_log {tmp}/logs/lifecycle.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        {extra}
        location /status {{ status on; }}
        location /up/ {{
            allow_methods GET PUT;
            upload_store {tmp}/up;
            client_max_body_size 16m;
        }}
    }}
}}
"""
KEYS = {
    "retransmits", "bytes_acked", "bytes_received", "segs_out", "segs_in", "data_segs_out",
    "data_segs_in", "rtt_us", "rttvar_us", "delivery_rate", "delivery_rate_app_limited",
}  # fmt: skip


def conf(extra: str) -> str:
    return CONF.replace("{extra}", extra)


def access_lines(tmp: Path, count: int) -> list[str]:
    log = tmp / "logs" / "access.log"

    def lines() -> list[str] | None:
        text = log.read_text() if log.exists() else ""
        found = text.splitlines()
        return found if len(found) >= count else None

    return wait_until(lines)


def test_every_nth_request_the_first_and_the_last_carry_tcp_numbers(webserv):
    server = webserv(conf("lifecycle_request_tcpinfo 3;"), files={"a.txt": "a" * 100})
    with connect(server.port) as sock:
        for i in range(1, 8):
            last = "Connection: close\r\n" if i == 7 else ""
            sock.sendall(get("/a.txt", last))
            assert status_of(read_response(sock)) == 200
        port = sock.getsockname()[1]
    record = closed_record(server.port, port)
    with_tcp = [r["n"] for r in record["requests"] if "tcp" in r]
    assert with_tcp == [1, 3, 6, 7]  # the first, every 3rd, and the one that closes
    for request in record["requests"]:
        tcp = request.get("tcp")
        if tcp is None:
            continue
        assert set(tcp) == KEYS
        assert tcp["retransmits"] == 0  # loopback loses nothing
        for key in KEYS - {"delivery_rate", "delivery_rate_app_limited"}:
            assert isinstance(tcp[key], int) and tcp[key] >= 0, (key, tcp)
        assert tcp["rtt_us"] > 0
        # a small answer to a waiting client: the kernel marks such a rate app-limited
        assert (tcp["delivery_rate"] is None) == bool(tcp["delivery_rate_app_limited"])
    logged = log_record(server.tmp / "logs" / "lifecycle.log", port)
    assert [r["n"] for r in logged["requests"] if "tcp" in r] == with_tcp
    lines = [line for line in access_lines(server.tmp, 7) if " /a.txt " in line]
    assert len(lines) == 7
    sampled = [line for line in lines if "rtt=-" not in line]
    assert [int(line.split()[0]) for line in sampled] == with_tcp
    for line in sampled:
        fields = dict(part.split("=") for part in line.split()[3:])
        assert int(fields["rtt"]) > 0 and fields["retrans"] == "0"
        assert int(fields["acked"]) >= 0 and int(fields["received"]) >= 0
    for line in lines:
        if "rtt=-" in line:  # not sampled: every TCP field is "-"
            assert line.split()[3:] == [
                "rtt=-", "acked=-", "received=-", "retrans=-", "rate=-"
            ]  # fmt: skip


def test_a_large_download_and_upload_show_their_bytes(webserv):
    size = 24 * 1024 * 1024
    server = webserv(conf("lifecycle_request_tcpinfo every;"), files={"big.bin": "b" * size})
    wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    with connect(server.port) as sock:
        sock.sendall(get("/big.bin"))
        assert len(read_response(sock)) > size
        body = b"u" * (8 * 1024 * 1024)
        sock.sendall(
            b"PUT /up/file.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(body)
        assert status_of(read_response(sock)) in (200, 201, 204)
        sock.shutdown(socket.SHUT_WR)
        port = sock.getsockname()[1]
    record = closed_record(server.port, port)
    download, upload = record["requests"][:2]
    # handed to the kernel: all but what its send buffer (wmem_max at most) and the
    # transport's last chunk still hold has been acked
    assert download["tcp"]["bytes_acked"] >= size - wmem_max - 1024 * 1024
    assert download["tcp"]["data_segs_out"] > 0 and download["tcp"]["segs_in"] > 0
    # read while it arrived: the body's bytes but the first read's
    assert upload["tcp"]["bytes_received"] >= len(body) - 1024 * 1024
    assert upload["tcp"]["data_segs_in"] > 0
    assert (server.tmp / "up" / "file.bin").stat().st_size == len(body)


def test_off_by_default_nothing_is_read_per_request(webserv):
    server = webserv(conf(""), files={"a.txt": "a"})
    with connect(server.port) as sock:
        for _ in range(3):
            sock.sendall(get("/a.txt"))
            assert status_of(read_response(sock)) == 200
        port = sock.getsockname()[1]
    record = closed_record(server.port, port)
    assert [("tcp" in r) for r in record["requests"]] == [False] * 3
    assert all("rtt=- acked=-" in line for line in access_lines(server.tmp, 3))
