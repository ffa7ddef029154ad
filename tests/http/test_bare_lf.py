"""A bare LF ends a line of the request line and the header section, never of chunked framing.

Issue 14 (item 2): RFC 9112 §2.2 lets a recipient take a bare LF for a line terminator, and
nginx does; nginx's own test suite writes every request with them ("GET / HTTP/1.0\\nHost:
localhost\\n\\n"), and webserv answered them all 400. Now the request line and the header
section take LF or CR LF in any mix (a section ends at LF LF, LF CR LF or CR LF CR LF, as h11
and nginx end it), in any read split, pipelined with CRLF requests, with the header-section
limit counted in bytes as received and `$request_length` too; a Content-Length body is taken
byte for byte whatever LFs and CRs it holds. Chunked framing stays strict (a bare LF in a
chunk-size line, after chunk data, in the last chunk or its trailers is a 400 and a close:
there it would make framing ambiguous, RFC 9112 §7.1), and so does a bare CR anywhere (§2.2:
MUST NOT be taken for a line end). After every refusal the server serves a new connection;
after every accepted request the connection goes on.

Where nginx is installed, the same requests go to it too, and the statuses must be nginx's,
but for the chunked framing webserv refuses on purpose (README, differences from nginx).
"""

from __future__ import annotations

import socket
import time

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format lengths '$status $request_length $request_method $request_uri';
    access_log {tmp}/logs/access.log lengths;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /echo/ {{ return 200 "$request_method $request_uri"; }}
        location /up/ {{
            allow_methods GET HEAD POST PUT;
            alias {tmp}/store/;
            upload_store {tmp}/store;
        }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        root {root};
        large_client_header_buffers 4 1k;
        location /echo/ {{ return 200 "$request_method $request_uri"; }}
    }}
}}
"""
NGINX_SERVER = """
        root {root};
        large_client_header_buffers 4 1k;
        location /echo/ { return 200 "$request_method $request_uri"; }
"""
NEXT = b"GET /echo/next HTTP/1.1\r\nHost: x\r\n\r\n"
SMALL_SECTION = 4 * 1024  # the second server's large_client_header_buffers 4 1k


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(
        tmp_path_factory.mktemp("bare-lf"), CONF, {"index.html": "home\n"}, ports=2
    ).start()
    srv.store = srv.tmp / "store"
    yield srv
    srv.stop()


def spell(
    target: str,
    method: str = "GET",
    version: str = "HTTP/1.1",
    fields: tuple[str, ...] = ("Host: x", "X-A: 1", "X-B: 2"),
    eols: str = "lf",
) -> bytes:
    """A bodiless request; `eols` says which line ends are bare LFs: `lf` all of them,
    `line` the request line's, `fields` every header line's, `end` the empty line's, `mixed`
    every other one."""
    if version == "HTTP/1.0":
        fields = (*fields, "Connection: keep-alive")
    lines = [f"{method} {target} {version}", *fields, ""]
    out = b""
    for i, line in enumerate(lines):
        bare = {
            "lf": True,
            "line": i == 0,
            "fields": 0 < i < len(lines) - 1,
            "end": i == len(lines) - 1,
            "mixed": i % 2 == 0,
        }[eols]
        out += line.encode() + (b"\n" if bare else b"\r\n")
    return out


ACCEPTED = [
    pytest.param(method, version, eols, id=f"{method}-{version[5:]}-{eols}")
    for method in ("GET", "HEAD")
    for version in ("HTTP/1.0", "HTTP/1.1")
    for eols in ("lf", "line", "fields", "end", "mixed")
]


@pytest.mark.parametrize(("method", "version", "eols"), ACCEPTED)
def test_bare_lf_in_the_header_section_is_accepted(server, method, version, eols):
    with RawConn(server.port) as conn:
        conn.send(spell("/echo/a?q=1", method, version, eols=eols))
        status, headers, body = conn.response(head=method == "HEAD")
        assert status == 200
        assert body == (b"" if method == "HEAD" else f"{method} /echo/a?q=1".encode())
        assert headers.get("connection") != "close"
        conn.send(NEXT)  # keep-alive goes on
        assert conn.response()[::2] == (200, b"GET /echo/next")


def test_a_header_line_split_by_a_bare_lf_is_two_lines(server):
    # `X: a` LF `Host: x`: two fields (a bare LF is a line end), so the Host is seen
    with RawConn(server.port) as conn:
        conn.send(b"GET /echo/two HTTP/1.1\r\nX: a\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, b"GET /echo/two")


def test_a_body_with_bare_lf_and_cr_is_taken_byte_for_byte(server):
    body = b"a\nb\rc\r\n\n\r\r\nGET /echo/trap HTTP/1.1\nHost: x\n\n\n"
    with RawConn(server.port) as conn:
        conn.send(
            b"PUT /up/lf-body.bin HTTP/1.1\nHost: x\nContent-Length: %d\n\n%b" % (len(body), body)
        )
        assert conn.response()[0] == 201
        conn.send(b"GET /up/lf-body.bin HTTP/1.0\nHost: x\n\n")
        assert conn.response()[::2] == (200, body)
    assert (server.store / "lf-body.bin").read_bytes() == body


def test_a_post_body_split_from_its_bare_lf_header_section(server):
    body = b"\n\nx\r\n"
    head = b"PUT /up/lf-split.bin HTTP/1.1\nHost: x\nContent-Length: %d\n\n" % len(body)
    with RawConn(server.port) as conn:
        for piece in (head[:-1], head[-1:] + body[:1], body[1:]):
            conn.send(piece)
            time.sleep(0.05)
        assert conn.response()[0] == 201
    assert (server.store / "lf-split.bin").read_bytes() == body


def pipeline() -> tuple[bytes, list[bytes]]:
    """CRLF and bare-LF requests in one stream, with a body holding bare LFs between."""
    body = b"\nline\n\r\n"
    requests = [
        spell("/echo/1", eols="lf"),
        b"GET /echo/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        spell("/echo/3", eols="mixed"),
        b"PUT /up/pipe.bin HTTP/1.1\nHost: x\nContent-Length: %d\r\n\n%b" % (len(body), body),
        b"\n" + spell("/echo/5", eols="end"),  # an empty line first: ignored (RFC 9112 §2.2)
        spell("/echo/6", eols="line"),
        b"GET /echo/7 HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    answers = [b"GET /echo/1", b"GET /echo/2", b"GET /echo/3", None, b"GET /echo/5"]
    return b"".join(requests), [*answers, b"GET /echo/6", b"GET /echo/7"]


def _assert_pipeline_answered(conn: RawConn, answers: list[bytes | None]) -> None:
    for answer in answers:
        status, _, body = conn.response()
        if answer is None:
            assert status in (201, 204)  # created, or replaced (a test before made it)
        else:
            assert (status, body) == (200, answer)
    conn.send(NEXT)
    assert conn.response()[::2] == (200, b"GET /echo/next")


def test_pipelined_crlf_and_bare_lf_in_one_write(server):
    data, answers = pipeline()
    with RawConn(server.port) as conn:
        conn.send(data)
        _assert_pipeline_answered(conn, answers)


def test_pipelined_split_at_every_byte_boundary(server):
    data, answers = pipeline()
    for cut in range(1, len(data)):
        with RawConn(server.port) as conn:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.send(data[:cut])
            time.sleep(0.002)  # (usually) two reads
            conn.send(data[cut:])
            _assert_pipeline_answered(conn, answers)


def test_pipelined_one_byte_at_a_time(server):
    data, answers = pipeline()
    with RawConn(server.port) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.send(data[i : i + 1])
            time.sleep(0.001)
        _assert_pipeline_answered(conn, answers)


def test_request_length_counts_the_bytes_received(server):
    styles = ("lf", "line", "fields", "end", "mixed")
    requests = {f"/echo/len-{eols}": spell(f"/echo/len-{eols}", eols=eols) for eols in styles}
    body = b"ab\ncd\r"
    requests["/up/len.bin"] = b"PUT /up/len.bin HTTP/1.1\nHost: x\nContent-Length: 6\n\n" + body
    with RawConn(server.port) as conn:
        conn.send(b"".join(requests.values()))
        for _ in requests:
            conn.response()

    def logged() -> dict[str, int]:
        fields = (line.split() for line in server.access_lines())
        return {f[3]: int(f[1]) for f in fields if f[3] in requests}

    deadline = time.monotonic() + 10
    while len(logged()) < len(requests) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert logged() == {target: len(data) for target, data in requests.items()}


def section(size: int, eol: bytes) -> bytes:
    """A request whose header section (request line to the empty line) is `size` bytes."""
    head = b"GET /echo/big HTTP/1.1" + eol + b"Host: x" + eol
    fields = b""
    left = size - len(head) - len(eol)
    while left > 0:
        value = min(left - len(b"X: ") - len(eol), 900)
        if value < 1:
            value = 1
        line = b"X: " + b"v" * value + eol
        fields += line
        left -= len(line)
    data = head + fields + eol
    return data if len(data) == size else data[: size - len(eol) * 2] + eol + eol


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_the_header_section_limit_with_bare_lf(server, eol):
    """The limit counts bytes as received: just under it answered, well over it refused,
    with LF as with CRLF (431, and the connection closed)."""
    port2 = server.ports[1]
    with RawConn(port2) as conn:
        conn.send(section(SMALL_SECTION - 16, eol))
        assert conn.response()[0] == 200
    for split in (False, True):
        with RawConn(port2) as conn:
            data = section(SMALL_SECTION + 600, eol)
            if split:
                for i in range(0, len(data), 700):
                    conn.send(data[i : i + 700])
                    time.sleep(0.01)
            else:
                conn.send(data)
            status, headers, _ = conn.response()
            assert status == 431
            assert headers["connection"] == "close"
            assert conn.closed_by_peer()
    with RawConn(port2) as conn:  # a line with no end, past the limit, bare LF after it
        conn.send(b"GET /echo/x HTTP/1.1\nX: " + b"v" * (SMALL_SECTION + 100))
        assert conn.response()[0] in (400, 431)
        assert conn.closed_by_peer()
    assert server.alive()


CHUNKED = b"POST /echo/c HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n"
CHUNKED_CRLF = b"POST /echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
REFUSED = [
    pytest.param(CHUNKED + b"5\nhello\r\n0\r\n\r\n", id="chunk-size-line"),
    pytest.param(CHUNKED_CRLF + b"5;a=b\nhello\r\n0\r\n\r\n", id="chunk-ext-line"),
    pytest.param(CHUNKED + b"5\r\nhello\n0\r\n\r\n", id="after-chunk-data"),
    pytest.param(CHUNKED_CRLF + b"5\r\nhello\r\n0\n\r\n", id="last-chunk-line"),
    pytest.param(CHUNKED + b"5\r\nhello\r\n0\r\n\n", id="last-chunk-end"),
    pytest.param(CHUNKED_CRLF + b"5\r\nhello\r\n0\r\nX: y\n\r\n", id="trailer-line"),
    pytest.param(CHUNKED + b"5\r\nhello\r\n0\r\nX: y\r\n\n", id="trailer-end"),
    pytest.param(b"GET /echo/a HTTP/1.1\rHost: x\r\n\r\n", id="bare-cr-request-line"),
    pytest.param(b"GET /echo/a HTTP/1.1\nHost: x\rX: y\n\n", id="bare-cr-header-line"),
    pytest.param(b"GET /echo/a HTTP/1.1\nHost: x\r\r\n\n", id="bare-cr-before-crlf"),
    pytest.param(b"GET /echo/a HTTP/1.1\nHost: x\n\r\r\n", id="bare-cr-empty-line"),
    pytest.param(b"GET /echo/a HTTP/1.1\nHost: x\n \tfolded\n\n", id="obs-fold"),
]


@pytest.mark.parametrize("data", REFUSED)
@pytest.mark.parametrize("mode", ["one-write", "one-byte-at-a-time", "after-a-request"])
def test_bare_lf_in_chunked_framing_and_bare_cr_are_refused(server, data, mode):
    with RawConn(server.port) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "one-byte-at-a-time":
            for i in range(len(data)):
                conn.send(data[i : i + 1])
        else:
            conn.send((spell("/echo/first") if mode == "after-a-request" else b"") + data + NEXT)
            if mode == "after-a-request":
                assert conn.response()[::2] == (200, b"GET /echo/first")
        status, headers, _ = conn.response()
        assert status == 400
        assert headers["connection"] == "close"
        assert conn.closed_by_peer()
    with RawConn(server.port) as conn:  # the server serves another connection
        conn.send(spell("/echo/after"))
        assert conn.response()[::2] == (200, b"GET /echo/after")


# --- side by side with nginx -------------------------------------------------------------

SIDE_BY_SIDE = [
    *(spell("/echo/a", m, v, eols=e) for m in ("GET", "HEAD") for v in ("HTTP/1.0", "HTTP/1.1")
      for e in ("lf", "line", "fields", "end", "mixed")),
    b"POST /echo/p HTTP/1.1\nHost: x\nContent-Length: 4\n\na\nb\n",
    b"GET /echo/a HTTP/1.1\rHost: x\r\n\r\n",
    b"GET /echo/a HTTP/1.1\nHost: x\rX: y\n\n",
    b"GET /echo/a HTTP/1.1\nHost: x\n\r\r\n",
    b"\n\nGET /echo/a HTTP/1.1\nHost: x\n\n",
]  # fmt: skip
# nginx reads these, webserv refuses them: bare LF in chunked framing (README)
CHUNKED_DIFFERENCES = [
    CHUNKED + b"5\nhello\r\n0\r\n\r\n",
    CHUNKED + b"5\r\nhello\n0\r\n\r\n",
    CHUNKED + b"5\r\nhello\r\n0\n\n",
]


def _status(port: int, data: bytes) -> int:
    with RawConn(port, timeout=5) as conn:
        conn.send(data)
        return conn.response(head=data.startswith(b"HEAD"))[0]


@pytest.fixture(scope="module")
def nginx(server, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    srv = RunningNginx(tmp_path_factory.mktemp("bare-lf-nginx"), server.root, NGINX_SERVER)
    yield srv.start()
    srv.stop()


def test_statuses_match_nginx(server, nginx):
    ours = [_status(server.ports[1], data) for data in SIDE_BY_SIDE]
    theirs = [_status(nginx.port, data) for data in SIDE_BY_SIDE]
    assert ours == theirs, list(zip(SIDE_BY_SIDE, ours, theirs, strict=True))
    assert all(_status(nginx.port, data) == 200 for data in CHUNKED_DIFFERENCES)
    assert all(_status(server.ports[1], data) == 400 for data in CHUNKED_DIFFERENCES)


def test_read_again_then_refused_is_a_client_error(server):
    """A read ending in CRLF CRLF goes to the parser whole, which refuses the bare LF: the
    request is read again from where it began, and what is wrong after it (no Host) is the
    client's 400, not an internal error (http-garden server bug 19's shape)."""
    with RawConn(server.port) as conn:
        conn.send(b"GET /echo/g HTTP/1.1\r\nHost: a\r\nUseless:\n\nGET / HTTP/1.1\r\n\r\n")
        assert conn.response()[::2] == (200, b"GET /echo/g")
        assert conn.response()[0] == 400
        assert conn.closed_by_peer()
    time.sleep(0.1)
    errors = (server.tmp / "error.log").read_text(errors="replace")
    assert "[error]" not in errors and "internal error" not in errors
