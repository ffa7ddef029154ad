"""/metrics: Prometheus text that prometheus_client's own parser reads, and counters that move
by exactly what the test did between two scrapes.

Every connection here ends in a way that leaves the kernel's counters final when the server
takes its record (client FIN, lingering close after an error, RST after the client's last
ACK), so even the byte counters can be checked to the byte. They count payload: the FINs
the kernel counts in bytes_received / bytes_acked are taken out (see test_byte_accounting).
"""

from __future__ import annotations

import socket

import pytest
from lifecycle_support import connect, get, read_response, reset, send_acked, status_of
from prometheus_client.parser import text_string_to_metric_families
from support import wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /metrics {{ metrics on; }}
    }}
}}
"""
FILES = {"a.txt": "a" * 500}


class Scraper:
    """Scrapes /metrics on a keep-alive connection the client then closes (FIN), and keeps
    the byte counts of each scrape: they belong to the next scrape's numbers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.exchanges: list[tuple[int, int]] = []  # (request bytes, response bytes)
        self.headers = b""

    def __call__(self) -> dict[tuple[str, tuple], float]:
        request = get("/metrics")
        with connect(self.port) as sock:
            sock.sendall(request)
            response = read_response(sock)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # the server closed after taking its record
        assert status_of(response) == 200
        self.exchanges.append((len(request), len(response)))
        self.headers, _, body = response.partition(b"\r\n\r\n")
        samples = {}
        self.families = {}
        for family in text_string_to_metric_families(body.decode()):
            self.families[family.name] = family
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def server(webserv):
    return webserv(CONF, files=FILES)


def test_metrics_parse_and_move_with_traffic(server):
    scrape = Scraper(server.port)
    base = scrape()
    assert b"\r\nContent-Type: text/plain; version=" in scrape.headers  # text exposition
    kinds = {name: f.type for name, f in scrape.families.items()}
    assert kinds["webserv_connections_accepted"] == "counter"
    assert kinds["webserv_connections_closed"] == "counter"
    assert kinds["webserv_connections_by_os"] == "counter"
    assert kinds["webserv_connections_open"] == "gauge"
    assert kinds["webserv_requests"] == "counter"
    for name in (
        "webserv_handshake_rtt_seconds",
        "webserv_accept_queue_wait_seconds",
        "webserv_request_duration_seconds",
        "webserv_tcp_retransmits_per_connection",
    ):
        assert kinds[name] == "histogram"

    sent = received = 0

    # B: two keep-alive requests, then the client's FIN → closed_by client
    with connect(server.port) as b:
        for _ in range(2):
            request = get("/a.txt")
            b.sendall(request)
            response = read_response(b)
            assert status_of(response) == 200
            sent, received = sent + len(request), received + len(response)
        b.shutdown(socket.SHUT_WR)
        assert b.recv(1) == b""

    # C: a malformed request → 400, the server closes (lingering: its FIN first) → server
    with connect(server.port) as c:
        request = b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"
        c.sendall(request)
        response = read_response(c)
        assert status_of(response) == 400
        assert c.recv(1) == b""
        sent, received = sent + len(request), received + len(response)

    # D: a request, then an RST. A few more bytes first, ACKed by the server, make sure the
    # client's ACK of the response reached the server before the RST (an RST carries none).
    d = connect(server.port)
    request = get("/a.txt")
    d.sendall(request)
    response = read_response(d)
    assert status_of(response) == 200
    partial = b"GET /a"
    send_acked(d, partial, len(request))
    sent, received = sent + len(request) + len(partial), received + len(response)
    reset(d)

    # wait until only the scraping connection is open, then compare with the base
    last = wait_until(lambda: (s := scrape()) and value(s, "webserv_connections_open") == 1 and s)
    k = len(scrape.exchanges) - 1  # scrapes after the base, the last one included

    def delta(name, **labels):
        return value(last, name, **labels) - value(base, name, **labels)

    traffic = 3  # B, C, D
    assert delta("webserv_connections_accepted_total") == traffic + k
    # the scrapes' connections are closed by the client too, all but the last one, which
    # is still open while it is answered; the base scrape's closes after the base
    assert delta("webserv_connections_closed_total", closed_by="client") == 1 + k
    assert delta("webserv_connections_closed_total", closed_by="server") == 1
    assert delta("webserv_connections_closed_total", closed_by="reset") == 1
    # every one of them came from this machine's stack over loopback: Linux
    assert delta("webserv_connections_by_os_total", os_family="Linux") == traffic + k
    assert delta("webserv_connections_by_os_total", os_family="unknown") == 0
    # a request is counted once answered: the base scrape's own is in this delta, the last
    # scrape's is not
    assert delta("webserv_requests_total", status_class="2xx") == 3 + k
    assert delta("webserv_requests_total", status_class="4xx") == 1
    assert delta("webserv_requests_total", status_class="5xx") == 0
    assert delta("webserv_request_duration_seconds_count") == 4 + k
    # one handshake RTT (and accept-queue wait) per accepted connection
    assert delta("webserv_handshake_rtt_seconds_count") == traffic + k
    assert delta("webserv_handshake_rtt_seconds_bucket", le="+Inf") == traffic + k
    assert delta("webserv_handshake_rtt_seconds_sum") > 0
    assert delta("webserv_accept_queue_wait_seconds_count") == traffic + k
    # one retransmit observation per closed connection; none on loopback
    closed = traffic + k
    assert delta("webserv_tcp_retransmits_per_connection_count") == closed
    assert delta("webserv_tcp_retransmits_per_connection_bucket", le="0.0") == closed
    # payload bytes of every connection closed in between, to the byte
    scrapes_in = sum(r for r, _ in scrape.exchanges[:-1])
    scrapes_out = sum(r for _, r in scrape.exchanges[:-1])
    assert delta("webserv_tcp_bytes_received_total") == sent + scrapes_in
    assert delta("webserv_tcp_bytes_acked_total") == received + scrapes_out
