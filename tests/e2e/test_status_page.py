"""The live status page (`status on;`) in a real browser, drawing the test's own connections.

The test talks to the real server with raw sockets and notes each client port: one keep-alive
connection with a 200, a 404 and a last request with `Connection: close` (the server closes
first), one closed by the client's FIN, and, where asked, one with many requests. Then Debian's
chromium, driven by Playwright for Python, loads the page, waits for those connections in the
list, opens them and reads the SVG the page drew: the SYN with the ISN the JSON reports, the
handshake RTT, the request and response arrows, who closed first, the client's sequence number
after its last byte. The same URL answers JSON with `?format=json` or `Accept: application/json`.

Screenshots go to test-artifacts/status-*.png. Nothing here asserts how long anything took:
the waits only wait for something to appear.
"""

from __future__ import annotations

import json
import re
import socket

import httpx
import pytest
from support import REPO, RawConn, RunningServer, wait_until

ARTIFACTS = REPO / "test-artifacts"
CONF = """
http {{
    access_log off;
    lifecycle_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /status {{ status on; }}
    }}
}}
"""
FILES = {"index.html": "<h1>hello</h1>\n", "big.txt": "0123456789abcdef" * 4096}
HOSTILE = "/x/<img/src=x/onerror=window.__pwned=1>"


# --- talking to the server -------------------------------------------------------------------


def get(path: str, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def server_closes(server: RunningServer) -> int:
    """Keep-alive: a 200, a 404, a bigger 200, then `Connection: close`. Returns the client port."""
    with RawConn(server.port) as conn:
        port = conn.sock.getsockname()[1]
        for path, expected in (("/index.html", 200), ("/missing.html", 404), ("/big.txt", 200)):
            conn.send(get(path))
            assert conn.response()[0] == expected
        conn.send(get("/", close=True))
        status, headers, _ = conn.response()
        assert status == 200 and headers.get("connection") == "close"
        assert conn.sock.recv(1) == b""  # the server's FIN
    return port


def client_closes(server: RunningServer, paths: list[str]) -> int:
    """Keep-alive requests, then the client sends its FIN first. Returns the client port."""
    with RawConn(server.port) as conn:
        port = conn.sock.getsockname()[1]
        for path in paths:
            conn.send(get(path))
            conn.response()
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.sock.recv(1) == b""
    return port


def status_json(server: RunningServer, how: str = "query") -> dict:
    if how == "query":
        reply = httpx.get(server.url("/status?format=json"), timeout=10)
    else:
        reply = httpx.get(server.url("/status"), headers={"Accept": "application/json"}, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    return json.loads(reply.content)


def closed_record(server: RunningServer, client_port: int) -> dict:
    """The connection's record once it is in the closed list (the close is recorded async)."""

    def find() -> dict | None:
        data = status_json(server)
        return next((c for c in data["recent"] if c["client"]["port"] == client_port), None)

    return wait_until(find)


# --- the browser ---------------------------------------------------------------------------


class Page:
    """A page with its console watched: every error or uncaught exception is kept."""

    def __init__(self, browser, **context_args) -> None:
        self.context = browser.new_context(**context_args)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open_status(self, server: RunningServer) -> None:
        self.page.goto(server.url("/status"))
        self.page.wait_for_selector("#conns tbody tr")

    def show(self, record: dict) -> None:
        """Click the connection's row and wait until the diagram is the one of that connection."""
        row = self.page.locator(f'#conns tr[data-client-port="{record["client"]["port"]}"]')
        row.wait_for()
        row.locator("button").click()
        self.page.wait_for_selector(f'#diagram svg[data-conn="{record["id"]}"]')

    def texts(self, role: str) -> list[str]:
        return self.page.locator(f'#diagram svg [data-role="{role}"]').all_text_contents()

    def shot(self, name: str, selector: str | None = None, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"status-{name}.png"
        if selector:
            self.page.locator(selector).screenshot(path=path)
        else:
            self.page.screenshot(path=path, full_page=full_page)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser):
    pages: list[Page] = []

    def make(**context_args) -> Page:
        pages.append(Page(browser, **context_args))
        return pages[-1]

    yield make
    for p in pages:
        p.close()


def microseconds(text: str) -> float:
    """'14 µs' / '1.23 ms' / '2.50 s' as the page prints a duration, back to microseconds."""
    match = re.search(r"(\d+(?:\.\d+)?) (µs|ms|s)\b", text)
    assert match, f"no duration in {text!r}"
    return float(match[1]) * {"µs": 1, "ms": 1e3, "s": 1e6}[match[2]]


# --- tests -----------------------------------------------------------------------------------


def test_json_at_the_same_url(webserv):
    server = webserv(CONF, files=FILES)
    port = server_closes(server)
    closed_record(server, port)
    for how in ("query", "accept"):
        data = status_json(server, how)
        assert data["lifecycle"] is True
        assert {"open", "recent", "stats", "you", "version", "pid"} <= data.keys()
        mine = [c for c in data["recent"] if c["client"]["port"] == port]
        assert len(mine) == 1, f"{how}: connection from port {port} not in {data['recent']}"
        record = mine[0]
        assert [r["status"] for r in record["requests"]] == [200, 404, 200, 200]
        assert record["close"]["closed_by"] == "server"
        # the connection that fetched the JSON is an open one
        assert data["you"]["connection"] in {c["id"] for c in data["open"]}
    page = httpx.get(server.url("/status"), headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    # one self-contained file: nothing loaded from anywhere else
    assert "<script>" in html and "<style>" in html
    assert not re.findall(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", html), "external resource"
    assert "@import" not in html and "url(http" not in html and "innerHTML" not in html


def test_page_draws_the_connection(webserv, page):
    server = webserv(CONF, files=FILES)
    by_server = closed_record(server, server_closes(server))
    by_client = closed_record(server, client_closes(server, ["/index.html"]))
    view = page(viewport={"width": 1400, "height": 1000}, color_scheme="light")
    view.open_status(server)

    view.show(by_server)
    syn = " ".join(view.texts("syn"))
    isn = by_server["syn"]["isn"]
    assert f"Seq = x = {isn}" in syn
    assert f"Ack = x+1 = {(isn + 1) % 2**32}" in " ".join(view.texts("syn-ack"))
    assert "not visible" in " ".join(view.texts("syn-ack"))  # the server's ISN y
    rtt_text = " ".join(view.texts("rtt"))
    rtt_us = by_server["handshake"]["rtt_us"]
    shown = microseconds(rtt_text)
    assert abs(shown - rtt_us) <= max(1, rtt_us * 0.01), (rtt_text, rtt_us)
    requests = view.texts("request")
    responses = view.texts("response")
    assert [r.split(" HTTP/1.1")[0] for r in requests] == [
        "GET /index.html",
        "GET /missing.html",
        "GET /big.txt",
        "GET /",
    ]
    assert [r.split()[0] for r in responses] == ["200", "404", "200", "200"]
    assert "404 Not Found" in responses[1]
    close = " ".join(view.texts("close"))
    assert "server closes first" in close and "connection_close" in close
    # the client's FIN, after the server's, carries its sequence number after its last byte
    next_seq = by_server["sequence"]["client_next_seq"]
    assert str(next_seq) in " ".join(view.texts("close-fin"))
    badge = view.page.locator(f'#conns tr[data-id="{by_server["id"]}"] .badge')
    assert badge.inner_text() == "server"
    facts = view.page.locator("#facts").inner_text()
    assert by_server["syn"]["options_text"] in facts and "TCP_INFO AT CLOSE" in facts.upper()
    view.shot("desktop")
    view.shot("diagram-server-closes", "#diagram")

    view.show(by_client)
    assert f"Seq = x = {by_client['syn']['isn']}" in " ".join(view.texts("syn"))
    close = " ".join(view.texts("close"))
    assert "client closes first" in close
    assert str(by_client["sequence"]["client_next_seq"]) in close
    badge = view.page.locator(f'#conns tr[data-id="{by_client["id"]}"] .badge')
    assert badge.inner_text() == "client FIN"
    view.shot("diagram-client-closes", "#diagram")

    # the filter narrows the list to one client port
    view.page.fill("#filter", str(by_client["client"]["port"]))
    view.page.wait_for_function("document.querySelectorAll('#conns tbody tr').length === 1")
    # pausing stops the refresh and says so
    view.page.click("#pause")
    assert view.page.get_attribute("#pause", "aria-pressed") == "true"
    assert "paused" in view.page.inner_text("#live")
    assert view.errors == []


def test_page_collapses_many_requests(webserv, page):
    server = webserv(CONF, files=FILES)
    paths = [f"/index.html?n={i}" if i % 10 else f"/nothing/{i}" for i in range(30)]
    record = closed_record(server, client_closes(server, paths))
    view = page(viewport={"width": 1280, "height": 900})
    view.open_status(server)
    view.show(record)
    collapsed = " ".join(view.texts("collapsed"))
    assert "20 more requests" in collapsed and "#6–#25" in collapsed
    assert len(view.texts("request")) == 10
    view.shot("diagram-many-collapsed", "#diagram")
    view.page.click("#actions button")
    view.page.wait_for_function(
        "document.querySelectorAll('#diagram [data-role=request]').length === 30"
    )
    assert view.texts("collapsed") == []
    assert sum("404" in r for r in view.texts("response")) == 3
    assert view.errors == []


def test_page_numbers_a_sampled_timeline(webserv, page):
    """A long keep-alive connection keeps every request up to the 32nd, then every 16th and
    the last: the page numbers each kept request by its own number, not by its position."""
    server = webserv(CONF, files=FILES)
    record = closed_record(server, client_closes(server, ["/index.html"] * 85))
    numbers = [r["n"] for r in record["requests"]]
    assert numbers[-4:] == [48, 64, 80, 85] and record["requests_sampled"]
    view = page(viewport={"width": 1280, "height": 900})
    view.open_status(server)
    view.show(record)
    requests = " ".join(view.texts("request"))
    for n in (48, 64, 80, 85):
        assert f"#{n} " in requests  # the sampled ones, each with its own number
    assert "#33 " not in requests and "#81 " not in requests
    collapsed = " ".join(view.texts("collapsed"))
    assert f"#{numbers[5]}–" in collapsed  # the hidden stretch starts where the list does
    whole = view.page.locator("#diagram").inner_text()
    assert "every 16th and the last" in whole
    view.shot("diagram-sampled", "#diagram")
    assert view.errors == []


def test_page_escapes_what_clients_send(webserv, page):
    server = webserv(CONF, files=FILES)
    with RawConn(server.port) as conn:
        port = conn.sock.getsockname()[1]
        conn.send(get(HOSTILE, close=True))
        assert conn.response()[0] == 404
    record = closed_record(server, port)
    assert record["requests"][0]["target"] == HOSTILE
    view = page(viewport={"width": 1400, "height": 1000})
    view.open_status(server)
    view.show(record)
    assert HOSTILE in " ".join(view.texts("request"))  # shown as text...
    assert view.page.locator("img").count() == 0  # ...never as markup
    assert view.page.evaluate("window.__pwned") is None
    assert view.errors == []


def test_page_at_phone_width_and_dark(webserv, page):
    server = webserv(CONF, files=FILES)
    record = closed_record(server, server_closes(server))
    phone = page(viewport={"width": 390, "height": 844}, color_scheme="light", is_mobile=True)
    phone.open_status(server)
    phone.show(record)
    assert f"Seq = x = {record['syn']['isn']}" in " ".join(phone.texts("syn"))
    # nothing wider than the screen: the page scrolls down, not sideways
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.shot("phone", full_page=False)
    phone.shot("phone-diagram", "#diagram")
    assert phone.errors == []

    dark = page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    dark.open_status(server)
    dark.show(record)
    background = dark.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)"
    dark.shot("dark")
    dark.shot("charts-dark", "#charts")
    assert dark.errors == []


def test_page_copes_with_recording_off(webserv, page):
    conf = CONF.replace("lifecycle_log off;", "lifecycle_log off;\n    lifecycle off;")
    server = webserv(conf, files=FILES)
    server_closes(server)
    data = status_json(server)
    assert data["lifecycle"] is False and data["recent"] == []
    view = page(viewport={"width": 1000, "height": 800})
    view.page.goto(server.url("/status"))
    view.page.wait_for_selector("#banner:not([hidden])")
    assert "recording is off" in view.page.inner_text("#banner").lower()
    view.shot("recording-off", full_page=False)
    assert view.errors == []


def test_page_copes_without_kernel_data(webserv, page):
    """Off Linux (or on an old kernel) the SYN, TCP_INFO and statistics are null: the page
    still draws the requests and the close, and says what it does not know."""
    server = webserv(CONF, files=FILES)
    record = closed_record(server, server_closes(server))

    def strip(route):
        data = route.fetch().json()
        for conn in data["open"] + data["recent"]:
            conn.update(syn=None, handshake=None, tcp_info=None)
            conn["sequence"] = {
                "client_isn": None,
                "client_data_bytes": None,
                "server_isn_visible": False,
                "server_data_bytes_acked": None,
            }
        data["stats"] = None
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))

    view = page(viewport={"width": 1280, "height": 900})
    view.page.route(re.compile(r".*/status\?.*format=json.*"), strip)
    view.open_status(server)
    view.show(record)
    assert "Seq = x (not recorded)" in " ".join(view.texts("syn"))
    assert "not recorded" in " ".join(view.texts("rtt"))
    assert len(view.texts("request")) == 4
    assert "server closes first" in " ".join(view.texts("close"))
    assert "Not recorded" in view.page.inner_text("#facts")
    view.shot("no-kernel-data", full_page=False)
    assert view.errors == []


MULTI = """
worker_processes 2;
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        location = /status {{ status on; }}
    }}
}}
"""


def test_page_shows_the_connections_of_every_worker(webserv, page):
    """Two workers, each with connections of its own (reuseport spreads them): the page,
    whichever worker answers its polls, lists and draws both workers' connections, and
    charts each worker."""
    server = webserv(MULTI, files=FILES)
    ports = [client_closes(server, ["/index.html"]) for _ in range(16)]
    records = [closed_record(server, port) for port in ports]
    by_worker = {r["worker"]["pid"]: r for r in records}
    assert set(by_worker) == set(server.worker_pids(2))
    view = page(viewport={"width": 1400, "height": 1000})
    view.open_status(server)
    for record in by_worker.values():  # one connection of each worker, drawn from its id
        view.show(record)
        assert f"pid {record['worker']['pid']}" in view.page.inner_text("#facts")
    chart = view.page.locator('[data-chart="workers"]')
    chart.wait_for()
    text = chart.inner_text()
    assert all(str(pid) in text for pid in by_worker)
    assert "2 workers" in view.page.inner_text("#meta")
    view.shot("workers", full_page=False)
    assert view.errors == []


def test_page_shows_each_sampled_requests_tcp_numbers(webserv, page):
    """lifecycle_request_tcpinfo: the requests table gains a TCP column, filled for the
    sampled requests (the first, every 2nd, the closing one) from the JSON's `tcp`."""
    conf = CONF.replace(
        "lifecycle_log off;", "lifecycle_log off;\n    lifecycle_request_tcpinfo 2;"
    )
    server = webserv(conf, files=FILES)
    record = closed_record(server, client_closes(server, ["/index.html"] * 5))
    sampled = [r["n"] for r in record["requests"] if "tcp" in r]
    assert sampled == [1, 2, 4]
    view = page(viewport={"width": 1400, "height": 900})
    view.open_status(server)
    view.show(record)
    table = view.page.locator("#facts .reqs table")
    table.wait_for()
    assert "TCP (this request)" in table.locator("thead").inner_text()
    cells = table.locator("tbody tr td:last-child").all_text_contents()
    assert len(cells) == len(record["requests"])
    for request, cell in zip(record["requests"], cells, strict=True):
        if "tcp" in request:
            assert cell.startswith("rtt ") and "acked" in cell and "retrans 0" in cell
        else:
            assert cell == "—"
    # and without the directive, no such column
    plain = webserv(CONF, files=FILES)
    other = closed_record(plain, client_closes(plain, ["/index.html"] * 2))
    view.open_status(plain)
    view.show(other)
    head = view.page.locator("#facts .reqs table thead")
    head.wait_for()
    assert "TCP (this request)" not in head.inner_text()
    assert view.errors == []
