"""The status page with `lifecycle_capture on;` in a real browser: the handshake and the
close are drawn from the captured segments — solid arrows, `Seq = y = <the server's ISN>`,
the FINs' real sequence numbers and each arrow's time. Root only (CAP_NET_RAW)."""

from __future__ import annotations

import json

import httpx
import pytest
from support import REPO, RawConn, RunningServer, wait_until

from webserv import capture

ARTIFACTS = REPO / "test-artifacts"
CONF = """
master_process off;
http {{
    access_log off;
    lifecycle_capture on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /status {{ status on; }}
    }}
}}
"""


def wired_record(server: RunningServer, client_port: int) -> dict:
    seen: list[dict] = []

    def find():
        data = json.loads(httpx.get(server.url("/status?format=json"), timeout=10).content)
        for c in data["recent"]:
            if c["client"]["port"] == client_port:
                seen[:] = [c["wire"], data["capture"]]
                if c["wire"] and c["wire"]["complete"]:
                    return c
        return None

    try:
        return wait_until(find)
    except AssertionError:
        raise AssertionError(f"no complete wire for port {client_port}: {seen}") from None


def test_page_draws_the_captured_segments(webserv, browser):
    try:
        capture.open_socket([9]).close()
    except OSError as exc:
        pytest.skip(f"no AF_PACKET capture here ({exc}): needs CAP_NET_RAW")
    server = webserv(CONF, files={"index.html": "<h1>hello</h1>\n"})
    # the master listens before the worker starts: a SYN that comes before the worker has
    # opened its capture socket is not seen. An answer from the worker says it has.
    wait_until(
        lambda: json.loads(httpx.get(server.url("/status?format=json")).content)["capture"]["on"]
    )
    with RawConn(server.port) as conn:
        client_port = conn.sock.getsockname()[1]
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert conn.response()[0] == 200
        assert conn.sock.recv(1) == b""
    record = wired_record(server, client_port)
    wire = record["wire"]
    y, x = wire["server_isn"], wire["client_isn"]

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.url("/status"))
        row = page.locator(f'#conns tr[data-client-port="{client_port}"]')
        row.wait_for()
        row.locator("button").click()
        svg = f'#diagram svg[data-conn="{record["id"]}"]'
        page.wait_for_selector(svg)

        def texts(role: str) -> str:
            return " ".join(page.locator(f'{svg} [data-role="{role}"]').all_text_contents())

        assert f"Seq = x = {x}" in texts("syn")
        assert f"Seq = y = {y}" in texts("syn-ack")
        assert f"Ack = x+1 = {(x + 1) % 2**32}" in texts("syn-ack")
        assert f"Ack = y+1 = {(y + 1) % 2**32}" in texts("ack")
        assert "not visible" not in texts("syn-ack")
        # every captured segment is an arrow drawn solid, with its time
        arrows = page.locator(f'{svg} g.arrow[data-wire="1"]')
        assert arrows.count() == len(wire["segments"])
        assert page.locator(f'{svg} g.arrow[data-wire="1"] line.dash').count() == 0
        fin = next(s for s in wire["segments"] if s["role"] == "fin" and s["from"] == "server")
        server_fin = f"Seq = y+{(fin['seq'] - y) % 2**32} = {fin['seq']}"
        close_text = " ".join(arrows.all_text_contents())
        assert server_fin in close_text, close_text
        assert "server closes first" in texts("close")
        assert "t = " in texts("syn-ack")
        ends = page.locator(f'{svg} [data-role="end-state"] text.state').all_text_contents()
        assert ends == ["CLOSED", "TIME_WAIT"]  # the server closed first
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator(svg).screenshot(path=ARTIFACTS / "status-capture.png")
        assert not errors, errors
    finally:
        context.close()
