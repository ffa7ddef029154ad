"""The live status page in a real browser (Debian's chromium through Playwright; skipped
without either): a connection that came through a balancer is listed under the visitor's
address "via" the balancer's, and its diagram names the TCP peer "Balancer"."""

from __future__ import annotations

from proxy_support import GET, v1_header
from support import RawConn, RunningServer

CONF = """
http {{
    access_log off;
    lifecycle_log off;
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        root {root};
    }}
    server {{
        listen 127.0.0.1:{port2};
        location = /status {{ status on; }}
    }}
}}
"""


def test_status_page_shows_the_visitor_via_the_balancer(tmp_path, browser):
    server = RunningServer(tmp_path, CONF, {"index.html": "hi\n"}, ports=2).start()
    try:
        with RawConn(server.port) as conn:
            balancer_port = conn.sock.getsockname()[1]
            conn.send(v1_header("203.0.113.7", "127.0.0.1", 40000, server.port) + GET)
            assert conn.response()[0] == 200
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url("/status", server.ports[1]))
            row = page.locator(f'#conns tr[data-client-port="{balancer_port}"]')
            row.wait_for()
            cell = row.locator("td.client").inner_text()
            assert "203.0.113.7:40000" in cell and f"via 127.0.0.1:{balancer_port}" in cell
            row.locator("button").click()
            page.wait_for_selector("#diagram svg")
            assert "Balancer" in page.locator("#diagram").inner_text()
            assert "203.0.113.7:40000 via" in page.locator("#detail-sub").inner_text()
            assert errors == []
            context.close()
    finally:
        server.stop()
