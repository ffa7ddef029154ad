"""Byte and segment accounting at close, checked against what the test itself sent and read.

The server reads TCP_INFO in connection_lost, while the socket still exists. For a connection
the client closes first (FIN after its last response) it finds the socket in CLOSE_WAIT, and
the kernel's counters there are exact:

- bytes_received = every request byte the client wrote + 1 for the client's FIN (a FIN takes
  one sequence number; the kernel counts it like a byte). The SYN is not counted: the
  accepting side's counters start after the handshake.
- bytes_acked = every response byte, no more: the server's own FIN has not been sent yet when
  the record is taken (it goes out when the socket is closed, after connection_lost), so it
  cannot be in there. When the server closes first, it sends its FIN and waits for the
  client's before taking the record: then its FIN is in bytes_acked (+1), see
  test_lingering_close_counts_the_server_fin.
- the client's ISN from the saved SYN + 1 + request bytes = the client's next sequence number.
"""

from __future__ import annotations

import socket

import pytest
from lifecycle_support import (
    client_info,
    connect,
    get,
    log_record,
    read_response,
    send_acked,
    status_json,
    status_of,
)
from support import wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    lifecycle_log {tmp}/logs/lifecycle.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; }}
    }}
}}
"""
FILES = {"a.txt": "a" * 100, "b.bin": bytes(range(256)) * 4, "c.txt": "see\n"}


@pytest.fixture
def server(webserv):
    return webserv(CONF, files=FILES)


def find(server, client_port: int) -> dict:
    def look():
        for record in status_json(server.port)["recent"]:
            if record["client"]["port"] == client_port:
                return record
        return None

    return wait_until(look)


def test_bytes_segments_and_sequence_at_close(server):
    # Four writes, three requests: the second request is written in two pieces. Each write
    # is ACKed before the next (send_acked), so each is exactly one data segment.
    writes = [
        get("/a.txt"),
        b"GET /b.bin HTTP/1.1\r\nHo",
        b"st: x\r\nUser-Agent: lifecycle-test\r\n\r\n",
        get("/missing.txt"),  # a 404 keeps the connection: counted like any response
    ]
    answers_after = {0, 2, 3}  # a response is complete after these writes
    responses: list[bytes] = []
    sock = connect(server.port)
    client_port = sock.getsockname()[1]
    sent = 0
    for i, data in enumerate(writes):
        sent = send_acked(sock, data, sent)
        if i in answers_after:
            responses.append(read_response(sock))
    assert [status_of(r) for r in responses] == [200, 200, 404]
    assert responses[1].endswith(FILES["b.bin"])
    n_in = sum(len(w) for w in writes)
    n_out = sum(len(r) for r in responses)
    assert sent == n_in

    # The client closes first: FIN, the server answers with its own FIN, then close.
    sock.shutdown(socket.SHUT_WR)
    assert sock.recv(1) == b""
    # The client's view of the same off-by-ones: its FIN, once ACKed, is in its bytes_acked
    # (which also counts its SYN on this, the connecting, side); the server's FIN is in its
    # bytes_received.
    wait_until(lambda: client_info(sock)["bytes_acked"] == 1 + n_in + 1)
    mine = client_info(sock)
    assert mine["bytes_received"] == n_out + 1
    assert mine["bytes_sent"] == n_in  # data only: neither SYN nor FIN
    sock.close()

    record = find(server, client_port)
    info = record["tcp_info"]
    print(
        f"sent {n_in} B in {len(writes)} writes, read {n_out} B in {len(responses)} responses; "
        f"server at close: bytes_received {info['bytes_received']}, bytes_acked "
        f"{info['bytes_acked']}, segs_in {info['segs_in']} (data {info['data_segs_in']}), "
        f"segs_out {info['segs_out']} (data {info['data_segs_out']}); client: bytes_acked "
        f"{mine['bytes_acked']}, bytes_received {mine['bytes_received']}"
    )
    assert record["close"] == {
        "closed_by": "client",
        "reason": "client sent FIN",
        "client_fin_received": True,
        "server_sent_reset": False,
    }
    info = record["tcp_info"]
    assert info["state_name"] == "CLOSE_WAIT"  # read before the server's own close
    # exact byte counts, with the one off-by-one that applies here: the client's FIN
    assert info["bytes_received"] == n_in + 1
    assert info["bytes_acked"] == n_out  # the server's FIN is not sent yet: no +1
    assert info["bytes_sent"] == n_out and info["bytes_retrans"] == 0
    assert info["total_retrans"] == 0 and info["lost"] == 0

    # segments: one data segment per write and per response (each fits one segment and
    # webserv sends a response's header and body together); the rest are control segments
    assert info["data_segs_in"] == len(writes)
    assert info["data_segs_out"] == len(responses)
    # in: at least the handshake's ACK, the data and the FIN; at most also the SYN and one
    # pure ACK per response segment
    assert len(writes) + 2 <= info["segs_in"] <= 1 + 1 + len(writes) + len(responses) + 1
    # out: the data, and at most one pure ACK per incoming data segment and for the FIN
    assert len(responses) <= info["segs_out"] <= len(responses) + len(writes) + 1

    # the requests as recorded: bytes in and out per request add up to the same totals
    assert [r["status"] for r in record["requests"]] == [200, 200, 404]
    assert sum(r["bytes_in"] for r in record["requests"]) == n_in
    assert [r["bytes_out"] for r in record["requests"]] == [len(r) for r in responses]
    assert record["request_count"] == 3

    # the sequence numbers of the seed diagram, from the saved SYN
    syn = record["syn"]
    assert syn["src_port"] == client_port and syn["dst_port"] == server.port
    assert syn["flags"] == ["SYN"]
    seq = record["sequence"]
    assert seq["client_isn"] == syn["isn"]
    assert seq["client_data_bytes"] == n_in
    assert seq["client_first_seq"] == (syn["isn"] + 1) % 2**32
    assert seq["client_next_seq"] == (syn["isn"] + 1 + n_in) % 2**32
    assert seq["server_data_bytes_acked"] == n_out
    assert seq["server_isn_visible"] is False

    # the lifecycle_log line is the same record
    logged = log_record(server.tmp / "logs" / "lifecycle.log", client_port)
    assert logged["tcp_info"]["bytes_received"] == n_in + 1
    assert logged["tcp_info"]["bytes_acked"] == n_out
    assert logged["syn"]["isn"] == syn["isn"]
    assert logged["sequence"] == seq
    assert logged["id"] == record["id"]


def test_lingering_close_counts_the_server_fin(server):
    """When the server closes first (here after a 400) it does so the nginx way: FIN first
    (shutdown of its write side), then it reads until the client's FIN. The record is taken
    after both FINs, so both off-by-ones show: bytes_received = request + 1 (client FIN) and
    bytes_acked = response + 1 (server FIN, ACKed by the client). The payload numbers
    (bytes_sent, the sequence block) stay exact."""
    bad = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
    sock = connect(server.port)
    client_port = sock.getsockname()[1]
    sent = send_acked(sock, bad, 0)
    response = read_response(sock)
    assert status_of(response) == 400
    assert sock.recv(1) == b""  # the server's FIN came right after the response
    wait_until(lambda: client_info(sock)["bytes_received"] == len(response) + 1)
    sock.close()  # our FIN ends the server's lingering read

    record = find(server, client_port)
    assert record["close"]["closed_by"] == "server"
    assert record["close"]["reason"] == "error_400"
    info = record["tcp_info"]
    assert info["bytes_received"] == sent + 1
    assert info["bytes_sent"] == len(response)
    assert info["bytes_acked"] == len(response) + 1
    assert record["sequence"]["client_data_bytes"] == sent
    assert record["sequence"]["server_data_bytes_acked"] == len(response)
