"""keepalive_disable (by User-Agent, nginx's reading of it) and keepalive_time, side by side
with nginx where it is installed, and on webserv alone otherwise.

Every case asks twice on one connection: the first answer's `Connection` and whether the
second request is answered at all (a `close` answer ends the connection: the second gets
nothing) are what both servers must agree on.
"""

from __future__ import annotations

import time

import pytest
from conformance.nginx import webserv_and_nginx
from support import RawConn

BLOCK = """
        root {root};
        location / { }
        location /safari/ { keepalive_disable safari; }
        location /both/ { keepalive_disable msie6 safari; }
        location /none/ { keepalive_disable none; }
        location /time/ { keepalive_time 1s; }
"""
FILES = ["f.txt", "safari/f.txt", "both/f.txt", "none/f.txt", "time/f.txt"]

MSIE5 = "Mozilla/4.0 (compatible; MSIE 5.01; Windows NT 5.0)"
MSIE6 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
MSIE6_SV1 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
MSIE7 = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"
OPERA_AS_MSIE = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; en) Opera 8.50"
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15"
SAFARI_WIN = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Safari/537.36"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:120.0) Gecko/20100101 Firefox/120.0"

CASES = [
    # (method, location, User-Agent)
    ("POST", "/", MSIE5),
    ("GET", "/", MSIE5),
    ("POST", "/", MSIE6),
    ("POST", "/", MSIE6_SV1),
    ("POST", "/", MSIE7),
    ("POST", "/", OPERA_AS_MSIE),
    ("GET", "/", SAFARI),
    ("GET", "/safari/", SAFARI),
    ("HEAD", "/safari/", SAFARI),
    ("GET", "/safari/", SAFARI_WIN),
    ("GET", "/safari/", CHROME_MAC),
    ("GET", "/safari/", FIREFOX_MAC),
    ("GET", "/safari/", MSIE5),
    ("POST", "/both/", MSIE5),
    ("GET", "/both/", SAFARI),
    ("POST", "/none/", MSIE5),
    ("GET", "/none/", SAFARI),
    ("GET", "/", None),
    ("POST", "/safari/", ""),
]


def twice(port: int, method: str, target: str, agent: str | None) -> tuple[str | None, bool]:
    """(the first answer's Connection, whether a second request on it is answered)."""
    ua = f"User-Agent: {agent}\r\n" if agent is not None else ""
    body = "Content-Length: 0\r\n" if method == "POST" else ""
    ask = f"{method} {target}f.txt HTTP/1.1\r\nHost: localhost\r\n{ua}{body}\r\n".encode()
    with RawConn(port) as conn:
        conn.send(ask)
        _, headers, _ = conn.response(head=method == "HEAD")
        try:
            conn.send(b"GET /f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            conn.response()
            second = True
        except (ConnectionError, OSError):
            second = False
    return headers.get("connection"), second


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ws, ng = webserv_and_nginx(
        tmp_path_factory.mktemp("ka-disable"), BLOCK, {name: "x\n" for name in FILES}
    )
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


EXPECTED = {
    ("POST", "/", MSIE5): False,
    ("POST", "/", MSIE6): False,
    ("GET", "/safari/", SAFARI): False,
    ("HEAD", "/safari/", SAFARI): False,
    ("POST", "/both/", MSIE5): False,
    ("GET", "/both/", SAFARI): False,
}


@pytest.mark.parametrize(("method", "target", "agent"), CASES, ids=[str(c) for c in CASES])
def test_keepalive_by_user_agent(servers, method, target, agent):
    ws, ng = servers
    keeps = EXPECTED.get((method, target, agent), True)
    ours = twice(ws.port, method, target, agent)
    assert ours == (("keep-alive", True) if keeps else ("close", False))
    if ng is not None:
        assert twice(ng.port, method, target, agent) == ours


def test_keepalive_time_closes_after_the_request_that_passes_it(servers):
    """keepalive_time 1s: a request starting more than 1 s after the accept is answered
    with `Connection: close`, and nothing after it is answered; before that, keep-alive."""
    ws, ng = servers
    for port in [ws.port] + ([ng.port] if ng is not None else []):
        with RawConn(port) as conn:
            conn.send(b"GET /time/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            first = conn.response()[1].get("connection")
            time.sleep(1.3)  # past keepalive_time (what is compared is the server's clock)
            conn.send(b"GET /time/f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, headers, _ = conn.response()
            assert (first, status, headers.get("connection")) == ("keep-alive", 200, "close")
            assert conn.closed_by_peer()
    # and the server serves new connections as before
    assert twice(ws.port, "GET", "/time/", None) == ("keep-alive", True)
