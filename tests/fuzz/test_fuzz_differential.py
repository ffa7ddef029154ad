"""Differential fuzz: webserv and h11 read the same bytes; where they frame differently,
webserv must refuse.

Each input is a first request whose framing is drawn to be doubtful (Content-Length and
Transfer-Encoding headers with odd names, values, duplicates, folding; bodies raw or chunked
with odd sizes, extensions and line ends; LF or CR line ends) followed by
`GET /second.txt`. h11 (as a server) reads the bytes and says where the first request ends
(the bytes it leaves after it, `Connection.trailing_data`); webserv's answers say the same
(the second file's body comes back as the second answer only if webserv's first request
ended right before `GET /second.txt`, give or take empty lines).

The property: when h11 completes the first request and the two disagree on where it ends
(only one of them has `GET /second.txt` right after it), webserv must refuse: a 4xx last and
the connection closed. Inputs h11 rejects outright have no end for it to disagree about;
they are counted (`--hypothesis-show-statistics`), and webserv's answer must still parse and
the server must survive (test_fuzz_requests's checks).

Bare LF (the `\n` line ends drawn): h11 ends a header section at LF LF or LF CR LF and takes
LF for a header line's end, and so does webserv now (as nginx): the two agree there. In
chunked framing webserv refuses a bare LF (size line, after data, last chunk, trailers); h11
refuses it in the first two and takes it in trailers, where webserv's refusal is allowed.
"""

from __future__ import annotations

import h11
import pytest
from fuzz_support import SECOND_BODY, is_refusal
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_fuzz_requests import COMMON, judge

SECOND = b"GET /second.txt HTTP/1.1\r\nHost: a\r\n\r\n"
# a request as a body: not SECOND, so that the answers tell the two readings apart
SMUGGLED = b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"
BOUNDED = settings(max_examples=800, derandomize=True, **COMMON)
LONG = settings(max_examples=20000, **COMMON)


@st.composite
def doubtful_first_request(draw) -> bytes:
    body = draw(
        st.sampled_from([b"", b"hello", b"0\r\n\r\n", SMUGGLED, b"x" * 17]) | st.binary(max_size=24)
    )
    size = len(body)
    # the usual spelling most of the time, so that h11 completes enough first requests
    eol = draw(st.sampled_from([b"\r\n"] * 16 + [b"\n", b"\r"]))
    cl_names = [
        *["Content-Length"] * 6,
        "content-length",
        "Content-Length ",
        "Content_Length",
        " Content-Length",
    ]
    te_names = [
        *["Transfer-Encoding"] * 6,
        "transfer-encoding",
        "Transfer-Encoding ",
        "Transfer_Encoding",
    ]
    cl_values = [
        *[str(size)] * 12,
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
        *["chunked"] * 10,
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
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3]))):
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
        fold = draw(st.integers(0, 19)) == 0
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
                [f"{n:x}"] * 20
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
        eol = draw(st.sampled_from([b"\r\n"] * 20 + [b"\n", b"\r", b""]))
        out += size.encode() + b"\r\n" + piece + eol
    last = draw(
        st.sampled_from(
            [b"0\r\n\r\n"] * 5 + [b"0\n\n", b"0\r\n", b"0\r\nX: y\r\n\r\n", b"00\r\n\r\n", b""]
        )
    )
    return out + last


def h11_rest_after_first(data: bytes) -> bytes | None:
    """The bytes h11 leaves after the first request (None: it does not complete one)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        while True:
            got = conn.next_event()
            if isinstance(got, h11.EndOfMessage):
                return bytes(conn.trailing_data[0])
            if got is h11.NEED_DATA or isinstance(got, h11.ConnectionClosed):
                return None
    except h11.RemoteProtocolError:
        return None


def _differential(fuzz_server, first: bytes):
    raw = first + SECOND
    reply = judge(fuzz_server, raw)
    rest = h11_rest_after_first(raw)
    answers = reply.responses
    webserv_second = (
        len(answers) >= 2 and answers[1].status == 200 and answers[1].body == SECOND_BODY
    )
    if rest is None:
        event(
            "h11 rejects the first request"
            + ("; webserv answers it" if answers and not is_refusal(reply) else "")
        )
        return
    # h11 ends the first request where webserv must, if what follows is the second one
    # (empty lines before a request line are ignored, RFC 9112 §2.2)
    h11_second = rest.lstrip(b"\r\n") == SECOND
    if is_refusal(reply) and not webserv_second:
        event("webserv refuses" + (" (h11 reads both)" if h11_second else ""))
        return
    event("both read /second.txt next" if h11_second and webserv_second else "they agree otherwise")
    assert h11_second == webserv_second, (
        f"h11 ends the first request before {rest[:80]!r}, webserv answers "
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
