"""Differential fuzz: webserv and h11 read the same bytes; where they frame differently,
webserv must refuse.

Each input is a first request whose framing is drawn to be doubtful (Content-Length and
Transfer-Encoding headers with odd names, values, duplicates, folding; bodies raw or chunked
with odd sizes, extensions and line ends; LF or CR line ends) followed by
`GET /second.txt`. h11 (as a server) reads the bytes and says which requests it completes;
webserv's answers say the same (the second file's body comes back only if webserv read a
request for /second.txt right after the first one).

The property: when both complete the first request but disagree on what comes after it (one
reads `GET /second.txt` next and the other does not), webserv must refuse: a 4xx last and
the connection closed. Inputs h11 rejects outright have no end for it to disagree about;
they are counted (`--hypothesis-show-statistics`), and webserv's answer must still parse and
the server must survive (test_fuzz_requests's checks).
"""

from __future__ import annotations

import h11
import pytest
from fuzz_support import SECOND_BODY, is_refusal
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_fuzz_requests import COMMON, judge

SECOND = b"GET /second.txt HTTP/1.1\r\nHost: a\r\n\r\n"
BOUNDED = settings(max_examples=800, derandomize=True, **COMMON)
LONG = settings(max_examples=20000, **COMMON)


@st.composite
def doubtful_first_request(draw) -> bytes:
    body = draw(
        st.sampled_from([b"", b"hello", b"0\r\n\r\n", SECOND, b"x" * 17]) | st.binary(max_size=24)
    )
    size = len(body)
    eol = draw(st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r"]))
    cl_names = [
        "Content-Length",
        "content-length",
        "Content-Length ",
        "Content_Length",
        " Content-Length",
    ]
    te_names = ["Transfer-Encoding", "transfer-encoding", "Transfer-Encoding ", "Transfer_Encoding"]
    cl_values = [
        str(size),
        str(size),
        str(size + 1),
        str(max(0, size - 1)),
        "0",
        f" {size}",
        f"{size} ",
        f"+{size}",
        "-1",
        f"0{size}",
        f"{size}, {size}",
        f"{size},{size + 1}",
        "",
        f"0x{size:x}",
        "1_0",
        "99999999999999999999",
    ]
    te_values = [
        "chunked",
        "chunked",
        "Chunked",
        "CHUNKED",
        " chunked",
        "chunked ",
        "identity",
        "gzip, chunked",
        "chunked, gzip",
        ",chunked",
        "chunked,",
        "x",
        "\tchunked",
        "chunked\x00",
    ]
    fields = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            fields.append((draw(st.sampled_from(cl_names)), draw(st.sampled_from(cl_values))))
        else:
            fields.append((draw(st.sampled_from(te_names)), draw(st.sampled_from(te_values))))
    chunked = any("ransfer" in name and "chunked" in value.lower() for name, value in fields)
    if chunked and draw(st.booleans()):
        body = draw(odd_chunks(body))
    method, target = draw(
        # a `return` location: webserv reads (and drops) the body, whatever comes after it
        st.sampled_from([(b"POST", b"/ret/"), (b"GET", b"/ret/g"), (b"PUT", b"/ret/f")])
    )
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: a"]
    for name, value in fields:
        fold = draw(st.integers(0, 9)) == 0
        lines.append(name.encode() + b":" + (b"\r\n " if fold else b" ") + value.encode("latin-1"))
    return eol.join(lines) + eol + eol + body


@st.composite
def odd_chunks(draw, body: bytes) -> bytes:
    """`body` chunked, with a size, extension or line end made doubtful now and then."""
    out = b""
    rest = body
    while rest:
        n = draw(st.integers(1, len(rest)))
        piece, rest = rest[:n], rest[n:]
        size = draw(
            st.sampled_from(
                [f"{n:x}"] * 6
                + [
                    f"{n + 1:x}",
                    f"{n - 1:x}",
                    f"0x{n:x}",
                    f" {n:x}",
                    f"{n:x} ",
                    f"+{n:x}",
                    f"{n:x};",
                    f"{n:x};a\rb",
                    f"0{n:x}",
                ]
            )
        )
        eol = draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b"\r", b""]))
        out += size.encode() + b"\r\n" + piece + eol
    last = draw(
        st.sampled_from(
            [b"0\r\n\r\n"] * 5 + [b"0\n\n", b"0\r\n", b"0\r\nX: y\r\n\r\n", b"00\r\n\r\n", b""]
        )
    )
    return out + last


def h11_reading(data: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """(method, target) of the requests h11 completes, and whether it then rejected the input."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    targets: list[tuple[bytes, bytes]] = []
    target = (b"", b"")
    try:
        while True:
            got = conn.next_event()
            if isinstance(got, h11.Request):
                target = (bytes(got.method), bytes(got.target))
            elif isinstance(got, h11.EndOfMessage):
                targets.append(target)
                conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return targets, False  # one of them asked to close
                conn.start_next_cycle()
            elif got is h11.NEED_DATA or isinstance(got, h11.ConnectionClosed):
                return targets, False
    except h11.RemoteProtocolError:
        return targets, True


def _differential(fuzz_server, first: bytes):
    raw = first + SECOND
    reply = judge(fuzz_server, raw)
    targets, h11_rejected = h11_reading(raw)
    answers = reply.responses
    webserv_second = (
        len(answers) >= 2 and answers[1].status == 200 and answers[1].body == SECOND_BODY
    )
    if not targets:
        event(
            "h11 rejects the first request"
            + ("; webserv answers it" if answers and not is_refusal(reply) else "")
        )
        return
    h11_second = len(targets) >= 2 and targets[1] == (b"GET", b"/second.txt")
    if is_refusal(reply) and not webserv_second:
        event("webserv refuses" + ("" if h11_rejected or not h11_second else " (h11 reads both)"))
        return
    event("both read /second.txt next" if h11_second and webserv_second else "they agree otherwise")
    assert h11_second == webserv_second, (
        f"h11 reads {targets} (rejected after: {h11_rejected}), webserv answers "
        f"{[r.status for r in answers]} (closed: {reply.closed}) to {raw!r}: they disagree on "
        "where the first request ends, and webserv did not refuse"
    )


@BOUNDED
@given(first=doubtful_first_request())
def test_where_h11_and_webserv_disagree_webserv_refuses(fuzz_server, first):
    _differential(fuzz_server, first)


@pytest.mark.long
@LONG
@given(first=doubtful_first_request())
def test_where_h11_and_webserv_disagree_webserv_refuses_long(fuzz_server, first):
    _differential(fuzz_server, first)
