"""Upgrade ignored, input after a closing request dropped, Host checked, `OPTIONS *`.

Four bugs the conformance corpus marked, each tested here as a class:

- A request with `Connection: Upgrade` + `Upgrade:` was answered `Connection: keep-alive`, and
  then nothing more was parsed (httptools stops at an upgrade): the next request hung. webserv
  switches to no other protocol, so it ignores the field (RFC 9110 §7.8) and goes on parsing
  HTTP/1.1, as nginx does; httptools skips such a request's body, so webserv reads the body
  itself — a body is never taken for a request. CONNECT, the one upgrade that is a tunnel, is
  answered and closed.
- Bytes after a request that ends the connection (`Connection: close`, HTTP/1.0 without
  keep-alive, an answer that closes) made the parser's 400 go out after the lingering close's
  `write_eof()`: a `RuntimeError` traceback. Whatever follows such a request — a request,
  garbage, half a request — is dropped: exactly one answer, no traceback.
- `Host: user@localhost` was served. A Host (or an absolute target's authority) that is not
  `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2) is a 400 and the connection closes
  (RFC 9112 §3.2); everything the grammar allows is still served.
- `OPTIONS *` (RFC 9112 §3.2.4) was a 400 and close; it is a well-formed request for a method
  webserv does not allow, so it gets 405 with the server's `Allow` and the connection stays.

Each bad input checks the status, how the connection ends and that the server serves on.
"""

from __future__ import annotations

import socket
import time

import pytest
from conformance.logcheck import internal_errors
from conformance.wire import exchange
from support import RawConn, RunningServer, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /up/ {{
            allow_methods GET HEAD POST PUT;
            alias {tmp}/store/;
            upload_store {tmp}/store;
        }}
        location = /gone {{ return 444; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name posts.test;
        root {root};
        allow_methods GET HEAD POST;
    }}
    server {{
        listen 127.0.0.1:{port2};
        root {root};
        keepalive_timeout 0;
    }}
}}
"""
FILES = {"index.html": "home\n"}
NEXT = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
# a body shaped like a request: if it were parsed as one, a third answer would come back
SMUGGLED = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("upgrade"), CONF, FILES, ports=2).start()
    srv.store = srv.tmp / "store"
    srv.store.mkdir(exist_ok=True)
    yield srv
    srv.stop()


@pytest.fixture
def no_new_traceback(server):
    """The server's stderr and error log gain no traceback while the test runs."""
    before = len(server.output()), server.error_log.stat().st_size
    yield
    assert server.alive()  # a new connection is still answered (and all output is written)
    with server.error_log.open("rb") as log:
        log.seek(before[1])
        logged = log.read().decode(errors="replace")
    found = internal_errors(server.output()[before[0] :] + logged, known={})
    assert not found, "\n".join(found)


def outcome(server, raw: bytes, port: int | None = None):
    got = exchange(port or server.port, raw, head_first=raw.startswith(b"HEAD "))
    assert not got.garbage, f"a malformed answer: {got.garbage[:80]!r}"
    return got


# --- Upgrade: ignored, and the connection goes on as HTTP/1.1 -----------------------------

UPGRADES = {
    "unknown": b"Connection: Upgrade\r\nUpgrade: foo/1\r\n",
    "websocket": b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    "h2c": b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
    "keep-alive-too": b"Connection: keep-alive, upgrade\r\nUpgrade: foo/1\r\n",
    "case": b"connection: UPGRADE\r\nupgrade: Foo\r\n",
}


@pytest.mark.parametrize("fields", UPGRADES.values(), ids=UPGRADES.keys())
def test_upgrade_is_ignored_and_the_next_request_answered(server, fields, no_new_traceback):
    raw = b"GET /index.html HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    got = outcome(server, raw + NEXT)  # pipelined: the second request in the same write
    assert got.statuses == (200, 200)
    assert got.responses[0].header("connection") == "keep-alive"
    assert got.responses[0].header("upgrade") is None
    assert not got.closed
    assert got.next_status == 200  # and the connection still serves a third one


def test_upgrade_then_a_request_in_a_later_write(server, no_new_traceback):
    with RawConn(server.port) as conn:
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n" + UPGRADES["unknown"] + b"\r\n")
        status, headers, body = conn.response()
        assert (status, headers["connection"], body) == (200, "keep-alive", b"home\n")
        conn.send(NEXT)
        assert conn.response()[::2] == (200, b"home\n")


def test_upgrade_over_http10_keep_alive(server, no_new_traceback):
    raw = b"GET /index.html HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo/1\r\n\r\n"
    got = outcome(server, raw + NEXT)
    assert (got.statuses, got.closed, got.next_status) == ((200, 200), False, 200)


BODIES = {
    "content-length": (b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED),
    "chunked": (
        b"Transfer-Encoding: chunked\r\n",
        b"%x\r\n%b\r\n5\r\nhello\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED),
    ),
}
STORED = {"content-length": SMUGGLED, "chunked": SMUGGLED + b"hello"}


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "body-later"])
@pytest.mark.parametrize("framing", BODIES, ids=BODIES.keys())
def test_upgrade_request_body_is_read_as_a_body(server, framing, split, no_new_traceback):
    """httptools treats an upgrade request as bodiless; webserv still reads its body."""
    length, body = BODIES[framing]
    name = f"upgrade-{framing}-{int(split)}.txt"
    head = (
        f"PUT /up/{name} HTTP/1.1\r\nHost: x\r\n".encode()
        + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        + length
        + b"\r\n"
    )
    with RawConn(server.port) as conn:
        if split:
            conn.send(head)
            conn.send(body + NEXT)
        else:
            conn.send(head + body + NEXT)
        assert conn.response()[0] == 201
        assert conn.response()[::2] == (200, b"home\n")
        conn.send(NEXT)  # the body was not a request: this is the next answer, not a third
        assert conn.response()[::2] == (200, b"home\n")
    assert (server.store / name).read_bytes() == STORED[framing]


@pytest.mark.parametrize("framing", BODIES, ids=BODIES.keys())
def test_upgrade_request_split_anywhere(server, framing, no_new_traceback):
    """Cut in two at every byte (two reads): the body, and only the body, is read as one."""
    length, body = BODIES[framing]
    head = b"PUT /up/split.txt HTTP/1.1\r\nHost: x\r\n" + UPGRADES["unknown"] + length + b"\r\n"
    raw = head + body + NEXT
    for cut in range(1, len(raw)):
        with RawConn(server.port) as conn:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.send(raw[:cut])
            time.sleep(0.002)  # pacing only: the two writes are likely two reads
            conn.send(raw[cut:])
            assert conn.response()[0] in (201, 204), cut
            assert conn.response()[::2] == (200, b"home\n"), cut
            conn.send(NEXT)
            assert conn.response()[::2] == (200, b"home\n"), cut
        assert (server.store / "split.txt").read_bytes() == STORED[framing], cut


def test_upgrade_body_of_a_static_request_is_discarded(server, no_new_traceback):
    raw = (
        b"GET /index.html HTTP/1.1\r\nHost: x\r\n" + UPGRADES["unknown"]
        + b"Content-Length: %d\r\n\r\n%b" % (len(SMUGGLED), SMUGGLED)
    )  # fmt: skip
    got = outcome(server, raw + NEXT)
    assert (got.statuses, got.closed, got.next_status) == ((200, 200), False, 200)


def test_upgrade_request_with_a_broken_chunked_body(server, no_new_traceback):
    """The upgrade's body is held to the same framing rules as any other body."""
    raw = (
        b"PUT /up/broken.txt HTTP/1.1\r\nHost: x\r\n" + UPGRADES["unknown"]
        + b"Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"
    )  # fmt: skip
    got = outcome(server, raw + NEXT)
    assert (got.statuses, got.closed) == ((400,), True)
    assert not (server.store / "broken.txt").exists()


def test_upgrade_with_connection_close_ends_after_it(server, no_new_traceback):
    raw = b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close, Upgrade\r\nUpgrade: a\r\n\r\n"
    got = outcome(server, raw + NEXT)
    assert (got.statuses, got.closed) == ((200,), True)
    assert got.responses[0].header("connection") == "close"


@pytest.mark.parametrize(
    ("line", "status"),
    [(b"CONNECT /index.html HTTP/1.1", 405), (b"CONNECT x:443 HTTP/1.1", 400)],
    ids=["origin-form", "authority-form"],
)
def test_connect_is_answered_and_closed(server, line, status, no_new_traceback):
    """CONNECT asks for a tunnel: what follows it is not HTTP, so the connection ends."""
    got = outcome(server, line + b"\r\nHost: x\r\n\r\n" + NEXT)
    assert (got.statuses, got.closed) == ((status,), True)
    assert got.responses[0].header("connection") == "close"


# --- Input after a request that ends the connection: dropped --------------------------------

ENDING = {
    "close": b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "http10": b"GET /index.html HTTP/1.0\r\n\r\n",
    "http10-head": b"HEAD /index.html HTTP/1.0\r\n\r\n",
    "close-404": b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    # answered later, by a handler that reads the body: the trailing bytes arrive first
    "close-put": b"PUT /up/closing.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "http10-put": b"PUT /up/closing10.txt HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
}
ENDING_STATUS = {"close-404": 404, "close-put": (201, 204), "http10-put": (201, 204)}
TRAILING = {
    "request": NEXT,
    "closing-request": ENDING["close"],
    "garbage": b"Invalid\r\n\r\n",
    "partial-line": b"GET / HT",
    "partial-head": b"GET /index.html HTTP/1.1\r\nHost: x\r\n",
    "bad-method": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "binary": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "blank-lines": b"\r\n\r\n",
}


def _status_ok(want, got: int) -> bool:
    return got in want if isinstance(want, tuple) else got == want


@pytest.mark.parametrize("trailing", TRAILING.values(), ids=TRAILING.keys())
@pytest.mark.parametrize("ending", ENDING, ids=ENDING.keys())
def test_input_after_a_closing_request_is_dropped(server, ending, trailing, no_new_traceback):
    got = outcome(server, ENDING[ending] + trailing)
    assert len(got.statuses) == 1, got.describe()
    assert _status_ok(ENDING_STATUS.get(ending, 200), got.statuses[0]), got.describe()
    assert got.responses[0].header("connection") == "close"
    assert got.closed


@pytest.mark.parametrize("trailing", TRAILING.values(), ids=TRAILING.keys())
def test_input_sent_after_the_closing_answer_is_dropped(server, trailing, no_new_traceback):
    """Bytes that arrive while the server lingers after its FIN: read and dropped."""
    with RawConn(server.port) as conn:
        conn.send(ENDING["close"])
        assert conn.response()[::2] == (200, b"home\n")
        try:
            conn.send(trailing)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may be gone already: nothing could be answered either way
        assert conn.closed_by_peer()
        assert conn.buf == b""


@pytest.mark.parametrize("trailing", TRAILING.values(), ids=TRAILING.keys())
def test_input_after_an_answer_that_closes_is_dropped(server, trailing, no_new_traceback):
    """keepalive_timeout 0: the answer, not the request, ends the connection."""
    got = outcome(server, NEXT + trailing, port=server.ports[1])
    assert (got.statuses, got.closed) == ((200,), True)
    assert got.responses[0].header("connection") == "close"


def test_input_after_return_444_is_dropped(server, no_new_traceback):
    got = outcome(server, b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n" + NEXT + b"Invalid\r\n\r\n")
    assert (got.statuses, got.closed) == ((), True)


FIRST = {
    "static": (NEXT, 200),
    # answered by a handler that waits: the closing request is parsed before it is answered
    "put": (b"PUT /up/first.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", (201, 204)),
    "upgrade-put": (
        b"PUT /up/first-upgrade.txt HTTP/1.1\r\nHost: x\r\n" + UPGRADES["unknown"]
        + b"Content-Length: 5\r\n\r\nhello",
        (201, 204),
    ),
}  # fmt: skip


@pytest.mark.parametrize("trailing", [NEXT, b"Invalid\r\n\r\n"], ids=["request", "garbage"])
@pytest.mark.parametrize("first", FIRST, ids=FIRST.keys())
def test_requests_before_a_closing_one_are_all_answered(server, first, trailing, no_new_traceback):
    raw, status = FIRST[first]
    got = outcome(server, raw + NEXT + ENDING["close"] + trailing)
    assert len(got.statuses) == 3, got.describe()
    assert _status_ok(status, got.statuses[0]) and got.statuses[1:] == (200, 200), got.describe()
    assert [r.header("connection") for r in got.responses] == ["keep-alive"] * 2 + ["close"]
    assert got.closed


# --- Host: uri-host [":" port], or 400 and close -------------------------------------------

INVALID_HOSTS = [
    b"user@localhost:8080",
    b"user:pass@localhost",
    b"@localhost",
    b"localhost@",
    b'a"b',
    b"a<b",
    b"a>b",
    b"a^b",
    b"a`b",
    b"a{b",
    b"a|b",
    b"a}b",
    b"a\\b",
    b"a/b",
    b"a?b",
    b"a#b",
    b"a[b",
    b"a]b",
    b"a%zz",
    b"a%4",
    b"a b",
    b"a\tb",
    b"\xc3\xa9.example",
    b"a:b",
    b"a:80:90",
    b"a:+80",
    b"a:8a",
    b"a:\xb2",  # a latin-1 superscript two is a digit to str.isdigit(), not to RFC 3986
    b":80",
    b"[::1]x",
    b"[::1]:8a",
    b"[::1",
    b"[zz]",
    b"[1.2.3.4]",
    b"[fe80::1%25eth0]",
    b"[v.x]",
]
VALID_HOSTS = [
    b"localhost",
    b"LocalHost:8080",
    b"a.",
    b".a",
    b"-a-",
    b"a_b~c",
    b"a!$&'()*+,;=b",
    b"a%41",
    b"a:",
    b"1.2.3.4:80",
    b"[::1]",
    b"[::ffff:1.2.3.4]:80",
    b"[V1.x:y]",
    b"[::1]:",
]


@pytest.mark.parametrize("host", INVALID_HOSTS, ids=repr)
def test_invalid_host_is_400_and_close(server, host, no_new_traceback):
    got = outcome(server, b"GET /index.html HTTP/1.1\r\nHost: " + host + b"\r\n\r\n" + NEXT)
    assert (got.statuses, got.closed) == ((400,), True)
    assert got.responses[0].header("connection") == "close"


# (in a target, "/", "?" and "#" end the authority: `http://a?b/` is host `a`, query `b/`)
@pytest.mark.parametrize("host", [h for h in INVALID_HOSTS if not set(h) & set(b"/?#")], ids=repr)
def test_invalid_authority_in_an_absolute_target_is_400(server, host, no_new_traceback):
    raw = b"GET http://" + host + b"/index.html HTTP/1.1\r\nHost: x\r\n\r\n" + NEXT
    got = exchange(server.port, raw)
    # llhttp refuses some of these bytes in a target itself; either way it is a 400
    assert (got.statuses, got.closed) == ((400,), True)


def test_invalid_host_with_a_valid_absolute_target_is_400(server, no_new_traceback):
    """RFC 9112 §3.2: an invalid Host field is a 400 even when the target names the host."""
    raw = b"GET http://x/index.html HTTP/1.1\r\nHost: user@x\r\n\r\n"
    assert (outcome(server, raw).statuses, True) == ((400,), True)


def test_empty_authority_in_an_absolute_target_is_400(server, no_new_traceback):
    got = outcome(server, b"GET http:///index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (got.statuses, got.closed) == ((400,), True)


@pytest.mark.parametrize("host", VALID_HOSTS, ids=repr)
def test_valid_host_is_served(server, host, no_new_traceback):
    got = outcome(server, b"GET /index.html HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert (got.statuses, got.closed, got.next_status) == ((200,), False, 200)
    got = outcome(server, b"GET http://" + host + b"/index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (got.statuses, got.closed, got.next_status) == ((200,), False, 200)


@pytest.mark.parametrize(
    "host", [b"", b".", b":80", b".:80", b"a..b", b"..a", b"a.b..", b"a..", b"[::1].."], ids=repr
)
def test_empty_host_or_label_is_400(server, host, no_new_traceback):
    """An empty host (also `.` and before a port) and an empty label are a 400 and a close,
    in the Host field and in an absolute target alike (RFC 9110 §4.2.1; nginx the same)."""
    got = outcome(server, b"GET /index.html HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert (got.statuses, got.closed) == ((400,), True)
    if host:
        target = b"GET http://" + host + b"/index.html HTTP/1.1\r\nHost: x\r\n\r\n"
        got = outcome(server, target)
        assert (got.statuses, got.closed) == ((400,), True)


def test_authority_ends_at_a_query(server, no_new_traceback):
    """`http://host?q` (RFC 3986 §3.2: `?` ends the authority) names host `host`."""
    got = outcome(server, b"GET http://posts.test?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.statuses == (200,)
    line = wait_until(lambda: [x for x in server.access_lines() if "posts.test?x=1" in x])
    assert '" 200 ' in line[-1]


def test_userinfo_never_reaches_a_virtual_host(server, no_new_traceback):
    got = outcome(server, b"OPTIONS /index.html HTTP/1.1\r\nHost: posts.test\r\n\r\n")
    assert got.responses[0].header("allow") == "GET, HEAD, POST"  # the vhost answers
    got = outcome(server, b"OPTIONS /index.html HTTP/1.1\r\nHost: evil@posts.test\r\n\r\n")
    assert (got.statuses, got.closed) == ((400,), True)


# --- OPTIONS *: 405 with the server's Allow ----------------------------------------------


@pytest.mark.parametrize(
    ("host", "allow"), [(b"x", "GET, HEAD"), (b"posts.test", "GET, HEAD, POST")]
)
def test_options_asterisk_is_405_with_the_servers_allow(server, host, allow, no_new_traceback):
    got = outcome(server, b"OPTIONS * HTTP/1.1\r\nHost: " + host + b"\r\n\r\n" + NEXT)
    assert (got.statuses, got.closed, got.next_status) == ((405, 200), False, 200)
    assert got.responses[0].header("allow") == allow
    assert got.responses[0].header("connection") == "keep-alive"


def test_options_asterisk_over_http10(server, no_new_traceback):
    got = outcome(server, b"OPTIONS * HTTP/1.0\r\n\r\n")
    assert (got.statuses, got.closed) == ((405,), True)
    assert got.responses[0].header("allow") == "GET, HEAD"
    line = wait_until(lambda: [x for x in server.access_lines() if '"OPTIONS * HTTP/1.0"' in x])
    assert '" 405 ' in line[-1]


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"POST", b"DELETE"])
def test_asterisk_with_another_method_is_400(server, method, no_new_traceback):
    got = outcome(server, method + b" * HTTP/1.1\r\nHost: x\r\n\r\n" + NEXT)
    assert (got.statuses, got.closed) == ((400,), True)


def test_options_asterisk_with_a_body_is_refused_before_it_is_read(server, no_new_traceback):
    got = outcome(server, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert (got.statuses, got.closed) == ((405,), True)
