"""The live status page in a real browser (Debian's chromium through Playwright; skipped
without either): an HTTPS connection's diagram draws the TLS exchange between the TCP
handshake and the first request — the ClientHello with its SNI, and the handshake done
with the version, cipher, ALPN and its duration."""

from __future__ import annotations

from support import RunningServer
from tls_support import TlsRaw

CONF = """
http {{
    access_log off;
    lifecycle_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate CERT;
        ssl_certificate_key KEY;
        root {root};
    }}
    server {{
        listen 127.0.0.1:{port2};
        location = /status {{ status on; }}
    }}
}}
"""


def test_status_page_draws_the_tls_handshake(tmp_path, browser, certs):
    pair = certs.issue("status", "localhost", "127.0.0.1")
    text = CONF.replace("CERT", str(pair.cert)).replace("KEY", str(pair.key))
    server = RunningServer(tmp_path, text, {"index.html": "hi\n"}, ports=2).start()
    try:
        ctx = certs.client()
        ctx.set_alpn_protocols(["http/1.1"])
        with TlsRaw(server.port, ctx) as conn:
            client_port = conn.sock.getsockname()[1]
            version = conn.sock.version()
            conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert conn.response()[0] == 200
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url("/status", server.ports[1]))
            row = page.locator(f'#conns tr[data-client-port="{client_port}"]')
            row.wait_for()
            row.locator("button").click()
            page.wait_for_selector("#diagram svg")
            drawn = page.locator("#diagram").inner_text()
            assert "ClientHello" in drawn and "SNI localhost" in drawn, drawn
            assert f"{version} established" in drawn, drawn
            assert "http/1.1" in drawn and "RTT" in drawn, drawn
            # the TLS exchange comes after the TCP handshake and before the request
            assert drawn.index("SYN") < drawn.index("ClientHello") < drawn.index("GET /")
            assert errors == []
            context.close()
    finally:
        server.stop()
