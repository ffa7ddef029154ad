"""Pipelined input of any length, split anywhere: every request answered, in order.

Issue 9: the header-section limit (`large_client_header_buffers`, 4 × 8k) was applied to the
buffered input instead of to one request's header section, so 1,000 tiny GETs in one write
got 885 answers and then a 414, and 446-byte requests 73 and then a 431. The limit must
still be exact and still bound what the server holds of the request in progress (httptools
buffers an unfinished header field itself): just under it is answered, one byte over is a
431, and an endless line or section is refused as soon as it passes the limit.

The streams mix tiny GETs, ~450-byte ones, ones with a header field at the per-line limit,
and requests with bodies (Content-Length and chunked, with CRLF CRLF inside the body, to a
`return` location and to an `upload_store` one); they are sent in one write, split at every
awkward offset (inside the request line, inside CRLF CRLF, right after a request, inside a
body and a chunk-size line) and a byte at a time. Responses are read while sending, so a
long stream never waits on a full socket buffer.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import httptools
import pytest
from support import RawConn, RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log off;
    keepalive_requests 100000;  # bursts of up to 10000 on one connection (nginx: 1000)
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
LINE = 8192  # large_client_header_buffers 4 8k: a line, and NUMBER × SIZE for the section
SECTION = 4 * LINE
SMALL_LINE = 1024  # the second server: 4 1k
SMALL_SECTION = 4 * SMALL_LINE


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(
        tmp_path_factory.mktemp("pipelining"), CONF, {"index.html": "home\n"}, ports=2
    ).start()
    srv.store = srv.tmp / "store"
    yield srv
    srv.stop()


# --- requests and what they must be answered -------------------------------------------


def get(i: int, pad: int = 0) -> tuple[bytes, tuple[int, bytes]]:
    extra = f"X-Pad: {'p' * pad}\r\n" if pad else ""
    data = f"GET /echo/{i} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
    return data, (200, f"GET /echo/{i}".encode())


def tiny(i: int):
    return get(i)


def medium(i: int):  # 446 bytes, the second size
    data, answer = get(i, pad=446 - len(get(i)[0]) - len("X-Pad: \r\n"))
    return data, answer


def near_line_limit(i: int):  # a header field of exactly LINE bytes (name + value)
    return get(i, pad=LINE - len("X-Pad"))


def post(i: int, body: bytes):
    head = f"POST /echo/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body, (200, f"POST /echo/{i}".encode())


def chunked(i: int, chunks: list[bytes]):
    head = f"POST /echo/{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    body = b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return head + body, (200, f"POST /echo/{i}".encode())


# bodies that look like the end of a header section, or of a chunked body
TRICKY = b"a\r\n\r\nGET /echo/trap HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n"


def mixed(count: int, seed: int = 0) -> list[tuple[bytes, tuple[int, bytes]]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = rng.randrange(6)
        if kind == 0:
            out.append(tiny(i))
        elif kind == 1:
            out.append(medium(i))
        elif kind == 2:
            out.append(near_line_limit(i))
        elif kind == 3:
            out.append(post(i, TRICKY * rng.randrange(0, 40)))
        elif kind == 4:
            out.append(chunked(i, [TRICKY, b"x" * rng.randrange(1, 5000), b"\r\n"]))
        else:  # a large header section, in fields up to the line limit
            out.append(big_section(i, rng.randrange(100, SECTION)))
    return out


def big_section(i: int, size: int):
    data = head_of(size, LINE, f"/echo/{i}")
    return data, (200, f"GET /echo/{i}".encode())


# --- talking -----------------------------------------------------------------------------


class _Responses:
    """httptools' own response parser, collecting (status, body) per response."""

    def __init__(self) -> None:
        self.done: list[tuple[int, bytes]] = []
        self.headers: list[dict[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.fields: dict[bytes, bytes] = {}
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self.body, self.fields = [], {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields[name.lower()] = value

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), b"".join(self.body)))
        self.headers.append(self.fields)


def converse(
    port: int, pieces: list[bytes], expected: int, pause: float = 0.0, until_close: bool = False
) -> tuple[_Responses, bool]:
    """Send the pieces (one send each, `pause` between them) while reading the answers.

    Reads until `expected` responses are in (and then, with `until_close`, until the server
    closes); returns them and whether the server closed.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send() -> None:
        try:
            for i, piece in enumerate(pieces):
                if pause and i:
                    time.sleep(pause)  # lets the server read the pieces apart
                sock.sendall(piece)
        except OSError:
            pass  # the server answered an error and closed

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    responses = _Responses()
    closed = False
    try:
        while until_close or len(responses.done) < expected:
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                closed = True
                break
            responses.parser.feed_data(data)
    finally:
        sock.close()
        sender.join(30)
    return responses, closed


END = (b"GET /echo/end HTTP/1.1\r\nHost: x\r\n\r\n", (200, b"GET /echo/end"))


def assert_all_answered(port: int, requests, pieces=None, pause: float = 0.0) -> None:
    """Every request answered in order, then one more: an answer too many (to a request
    hidden in a body, say) would take a place and show."""
    requests = [*requests, END]
    if pieces is None:
        pieces = [b"".join(r for r, _ in requests)]
    else:
        pieces = [*pieces, END[0]]
    responses, closed = converse(port, pieces, len(requests), pause)
    assert [r[0] for r in responses.done] == [a[0] for _, a in requests]
    assert responses.done == [a for _, a in requests]  # every one, in order
    assert not closed
    assert all(h[b"connection"] == b"keep-alive" for h in responses.headers)


def split_at(data: bytes, *offsets: int) -> list[bytes]:
    cuts = [0, *sorted(set(o for o in offsets if 0 < o < len(data))), len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


# --- bursts in one write ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (tiny, 1),
        (tiny, 2),
        (tiny, 885),
        (tiny, 886),
        (tiny, 1000),
        (tiny, 10000),
        (medium, 73),
        (medium, 74),
        (medium, 1000),
        (medium, 3000),
        (near_line_limit, 3),
        (near_line_limit, 4),
        (near_line_limit, 5),
        (near_line_limit, 100),
    ],
    ids=lambda v: v.__name__ if callable(v) else str(v),
)
def test_burst_in_one_write(server, make, count):
    assert_all_answered(server.port, [make(i) for i in range(count)])


def test_mixed_burst_with_bodies_in_one_write(server):
    assert_all_answered(server.port, mixed(300))


def test_mixed_burst_in_random_pieces(server):
    rng = random.Random(9)
    requests = mixed(200, seed=1)
    data = b"".join(r for r, _ in requests)
    offsets, at = [], 0
    while at < len(data):
        at += rng.choice((1, 2, 3, 5, 37, 446, 4096, 8191, 8192, 8193, 32768, 32772, 65536))
        offsets.append(at)
    assert_all_answered(server.port, requests, split_at(data, *offsets), pause=0.002)


def test_byte_at_a_time(server):
    requests = [
        tiny(0),
        post(1, TRICKY),
        chunked(2, [TRICKY, b"\r\n"]),
        medium(3),
        tiny(4),
    ]
    data = b"".join(r for r, _ in requests)
    assert_all_answered(server.port, requests, [data[i : i + 1] for i in range(len(data))])


def test_uploads_pipelined_between_gets(server):
    parts = [
        tiny(0),
        (
            b"PUT /up/pipelined-cl.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
            % (len(TRICKY), TRICKY),
            None,
        ),
        medium(2),
        (
            b"PUT /up/pipelined-chunked.txt HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(TRICKY), TRICKY),
            None,
        ),
        near_line_limit(4),
    ]
    data = b"".join(r for r, _ in parts)
    responses, closed = converse(server.port, [data], len(parts))
    assert [s for s, _ in responses.done] == [200, 201, 200, 201, 200]
    assert responses.done[2] == medium(2)[1] and responses.done[4] == near_line_limit(4)[1]
    assert not closed
    assert (server.store / "pipelined-cl.txt").read_bytes() == TRICKY
    assert (server.store / "pipelined-chunked.txt").read_bytes() == TRICKY


def _awkward_offsets(requests) -> list[int]:
    """Offsets inside request lines, around every CRLF CRLF, at and around each request's
    end, and inside bodies and chunk-size lines."""
    offsets: set[int] = set()
    at = 0
    for data, _ in requests:
        line_end = data.index(b"\r\n")
        head_end = data.index(b"\r\n\r\n") + 4
        offsets.update(at + k for k in (1, 3, 5, line_end - 1, line_end, line_end + 1))
        offsets.update(at + head_end + k for k in (-4, -3, -2, -1, 0, 1))
        offsets.update(at + len(data) + k for k in (-3, -2, -1, 0, 1, 2))
        for k in range(head_end, len(data) - 1, 7):  # inside the body (and chunk lines)
            offsets.add(at + k)
        at += len(data)
    return sorted(o for o in offsets if 0 < o < at)


def test_split_at_every_awkward_offset(server):
    requests = [
        tiny(0),
        post(1, TRICKY),
        chunked(2, [b"\r\n\r\n", TRICKY]),
        medium(3),
        near_line_limit(4),
        tiny(5),
    ]
    data = b"".join(r for r, _ in requests)
    for offset in _awkward_offsets(requests):
        assert_all_answered(server.port, requests, split_at(data, offset), pause=0.005)


def test_split_anywhere_around_sections_at_the_limit(server):
    """Header sections of exactly the limit after bodies that look like header sections:
    wherever the reads fall, each section is counted alone (4 × 1k: 4100 bytes with the
    final CRLF CRLF), never with the body or the request before it."""
    limit = SMALL_SECTION + 4
    requests = [
        tiny(0),
        post(1, TRICKY * 60 + b"and no CRLF CRLF at its end"),
        (head_of(limit, SMALL_LINE, "/echo/2"), (200, b"GET /echo/2")),
        chunked(3, [TRICKY * 30, b"\r\n"]),
        (head_of(limit, SMALL_LINE, "/echo/4"), (200, b"GET /echo/4")),
        tiny(5),
    ]
    data = b"".join(r for r, _ in requests)
    for offset in _awkward_offsets(requests)[::3]:
        assert_all_answered(server.ports[1], requests, split_at(data, offset), pause=0.005)


# --- the limits, still exact ---------------------------------------------------------------


def head_of(size: int, line: int, target: str = "/echo/limit") -> bytes:
    """A GET whose header section (request line to the final CRLF CRLF) is `size` bytes,
    in fields of at most `line` bytes (name and value, as the limit counts them)."""
    start = f"GET {target} HTTP/1.1\r\nHost: x\r\n".encode()
    left = size - len(start) - 2
    fields = []
    while left > 0:
        name = b"X-F%d" % len(fields)
        overhead = len(name) + 4  # ": " and CRLF
        value = min(line - len(name), left - overhead)
        rest = left - overhead - value
        if 0 < rest < 16:
            value -= 16 - rest  # leave enough for one more field
        fields.append(name + b": " + b"v" * value + b"\r\n")
        left -= overhead + value
    data = start + b"".join(fields) + b"\r\n"
    assert len(data) == size
    assert all(len(f) - 4 <= line for f in fields)
    return data


LIMIT_CASES = [
    # (port index, section limit, line limit)
    pytest.param(0, SECTION, LINE, id="4x8k"),
    pytest.param(1, SMALL_SECTION, SMALL_LINE, id="4x1k"),
]


@pytest.mark.parametrize(("port", "section", "line"), LIMIT_CASES)
@pytest.mark.parametrize("before", [0, 1, 7, 900])
def test_header_section_at_the_limit_is_answered(server, port, section, line, before):
    requests = [tiny(i) for i in range(before)]
    last = head_of(section + 4, line)  # the limit, plus the CRLF CRLF that ends it
    requests.append((last, (200, b"GET /echo/limit")))
    data = b"".join(r for r, _ in requests)
    assert_all_answered(server.ports[port], requests)
    # and with the read boundary anywhere around the last request's start and end
    start = len(data) - len(last)
    for offset in (start - 1, start, start + 1, start + 20, len(data) - 3, len(data) - 1):
        assert_all_answered(server.ports[port], requests, split_at(data, offset), pause=0.005)


def assert_refused_after(port: int, answered: int, data: list[bytes], status: int) -> None:
    responses, closed = converse(port, data, answered + 1, until_close=True)
    assert [s for s, _ in responses.done] == [200] * answered + [status]
    assert responses.headers[-1][b"connection"] == b"close"
    assert closed


@pytest.mark.parametrize(("port", "section", "line"), LIMIT_CASES)
@pytest.mark.parametrize("before", [0, 1, 900])
def test_header_section_one_byte_over_is_431(server, port, section, line, before):
    pipelined = b"".join(tiny(i)[0] for i in range(before))
    over = head_of(section + 5, line)
    assert_refused_after(server.ports[port], before, [pipelined + over], 431)
    data = pipelined + over
    assert_refused_after(server.ports[port], before, split_at(data, 1, len(data) - 3), 431)
    with RawConn(server.ports[port]) as conn:  # and the server goes on serving others
        conn.send(tiny(0)[0])
        assert conn.response()[::2] == tiny(0)[1]


@pytest.mark.parametrize(("port", "line"), [(0, LINE), (1, SMALL_LINE)])
def test_request_line_limit(server, port, line):
    target = "/echo/" + "u" * (line - len("/echo/"))  # exactly the limit
    ok = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert_all_answered(server.ports[port], [tiny(0), (ok, (200, f"GET {target}".encode()))])
    too_long = f"GET {target}u HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert_refused_after(server.ports[port], 1, [tiny(0)[0] + too_long], 414)


def _wait_for_answer(conn: RawConn, timeout: float) -> bool:
    conn.sock.settimeout(timeout)
    try:
        data = conn.sock.recv(65536, socket.MSG_PEEK)
    except TimeoutError:
        return False
    finally:
        conn.sock.settimeout(10)
    return bool(data)


def _unfinished(kind: str, size: int) -> bytes:
    if kind == "endless-field":
        start, filler = b"GET /echo/x HTTP/1.1\r\nHost: x\r\nX-Endless: ", b"a"
    elif kind == "endless-section":
        start, filler = b"GET /echo/x HTTP/1.1\r\nHost: x\r\n", b"X-Short: 1\r\n"
    else:
        start, filler = b"GET /echo/", b"a"
    data = start + filler * (size // len(filler) + 1)
    data = data[:size]
    if data.endswith(b"\r"):
        data = data[:-1] + b"X"  # not the start of a CRLF CRLF
    return data


@pytest.mark.parametrize(
    ("kind", "status"),
    [("endless-field", 431), ("endless-section", 431), ("endless-request-line", 414)],
)
@pytest.mark.parametrize("before", [0, 3])
def test_unfinished_section_refused_once_past_the_limit(server, kind, status, before):
    """What the server holds of one unfinished request stays within the limit: one byte
    past it, the request is refused without the client sending anything more."""
    port = server.ports[1]
    limit = SMALL_SECTION + 4
    pipelined = b"".join(tiny(i)[0] for i in range(before))
    with RawConn(port) as conn:
        conn.send(pipelined + _unfinished(kind, limit + 1))
        for i in range(before):
            assert conn.response()[::2] == tiny(i)[1]
        got, headers, _ = conn.response()
        assert (got, headers["connection"]) == (status, "close")
        assert conn.closed_by_peer()
    assert server.alive()


@pytest.mark.parametrize("before", [0, 3])
def test_unfinished_section_at_the_limit_waits_for_the_rest(server, before):
    """Many short fields up to exactly the limit, unfinished: that request still fits, and
    the server waits for it; one byte more and it is a 431 at once."""
    port = server.ports[1]
    limit = SMALL_SECTION + 4
    pipelined = b"".join(tiny(i)[0] for i in range(before))
    with RawConn(port) as conn:
        conn.send(pipelined + _unfinished("endless-section", limit))
        for i in range(before):
            assert conn.response()[::2] == tiny(i)[1]
        assert not _wait_for_answer(conn, 0.5)  # nothing refused yet: it may still end
        conn.send(b"Z")
        got, headers, _ = conn.response()
        assert (got, headers["connection"]) == (431, "close")
        assert conn.closed_by_peer()
    assert server.alive()
