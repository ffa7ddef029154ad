"""What the fuzz tests share: Hypothesis strategies for requests, and how one input is judged.

Strategies build valid requests (methods, targets, headers, Content-Length and chunked
bodies), pipelines of them, and then mutate the bytes (insert, delete, replace with bytes
that matter to HTTP framing, duplicate, truncate). `send()` writes one input on a fresh
connection, shuts our sending side (so the server sees the end of input and must finish),
and reads until the server closes, bounded by a limit well past the server's timeouts.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from conformance.wire import STATUS_LINE, Response, _dechunk
from hypothesis import strategies as st

# The server's timeouts (conftest's config) and how long past them an input may take.
SERVER_TIMEOUTS = 3.0
HANG_LIMIT = 12.0

FILES = {
    "index.html": "home\n",
    "second.txt": "second file\n",
    "dir/a.txt": "a\n",
    "dir/b.txt": "b\n",
    "sp ace.txt": "space\n",
    "big.bin": bytes(range(256)) * 256,  # 64 KiB
}
SECOND_BODY = b"second file\n"
FRAMING_BYTES = b"\r\n\x00 \t:;,\x7f\x80\xff0123456789abcdefABCDEF-+_\"'/\\?#%"

methods = st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
targets = st.sampled_from(
    [
        "/",
        "/index.html",
        "/second.txt",
        "/dir/",
        "/dir",
        "/missing",
        "/sp%20ace.txt",
        "/big.bin",
        "/index.html?a=b&c",
        "/../index.html",
        "/dir/%2e%2e/index.html",
        "http://localhost/index.html",
        "*",
    ]
)
header_names = st.sampled_from(
    ["X-A", "Accept", "User-Agent", "Range", "If-None-Match", "If-Modified-Since", "Cookie"]
)
header_values = st.sampled_from(
    ["1", "bytes=0-3", "bytes=-2,5-", '"x"', "*", "Sun, 06 Nov 1994 08:49:37 GMT", "a=b", ""]
)


@st.composite
def chunked_body(draw, body: bytes) -> bytes:
    """`body` in chunks of drawn sizes, with extensions, upper/lower hex and maybe trailers."""
    out = b""
    rest = body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        piece, rest = rest[:size], rest[size:]
        digits = f"{size:x}"
        if draw(st.booleans()):
            digits = digits.upper()
        ext = draw(st.sampled_from([b"", b"", b";a=b", b";x", b';q="v"']))
        out += digits.encode() + ext + b"\r\n" + piece + b"\r\n"
    trailer = draw(st.sampled_from([b"", b"", b"X-T: 1\r\n"]))
    return out + b"0\r\n" + trailer + b"\r\n"


@st.composite
def request(draw, method: str | None = None, keep_alive: bool = False) -> bytes:
    """One well-formed request, by construction (not every combination is meaningful).

    `keep_alive`: HTTP/1.1 without `Connection: close`, and not `*` (answered 400 and close).
    """
    method = method or draw(methods)
    target = draw(targets.filter(lambda t: t != "*") if keep_alive else targets)
    version = (
        "HTTP/1.1" if keep_alive else draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    )
    lines = [f"{method} {target} {version}"]
    if version == "HTTP/1.1" or draw(st.booleans()):
        lines.append("Host: " + draw(st.sampled_from(["localhost", "a", "localhost:80"])))
    for _ in range(draw(st.integers(0, 3))):
        lines.append(f"{draw(header_names)}: {draw(header_values)}")
    connection = draw(
        st.sampled_from([None, None, "keep-alive"] + ([] if keep_alive else ["close"]))
    )
    if connection:
        lines.append(f"Connection: {connection}")
    body = b""
    if method in ("POST", "PUT") or draw(st.integers(0, 9)) == 0:
        body = draw(st.binary(max_size=40))
        if version == "HTTP/1.1" and draw(st.booleans()):
            lines.append("Transfer-Encoding: chunked")
            body = draw(chunked_body(body))
        else:
            lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with 1-4 byte-level mutations."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(list(FRAMING_BYTES)) | st.integers(0, 255))
        if kind == "insert":
            data[at:at] = bytes([byte])
        elif kind == "replace" and at < len(data):
            data[at] = byte
        elif kind == "delete" and at < len(data):
            del data[at]
        elif kind == "duplicate":
            size = draw(st.integers(1, 16))
            data[at:at] = data[at : at + size]
        elif kind == "truncate" and at > 0:
            del data[at:]
    return bytes(data)


pipelines = st.lists(request(), min_size=1, max_size=4).map(b"".join)
mutated_requests = request().flatmap(mutated)
mutated_pipelines = pipelines.flatmap(mutated)
chunked_posts = st.binary(max_size=200).flatmap(
    lambda body: chunked_body(body).map(
        lambda chunks: (
            b"POST /up/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        )
    )
)
mutated_chunked = st.tuples(chunked_posts, request(method="GET")).flatmap(
    lambda pair: mutated(pair[0]).map(lambda bad: bad + pair[1])
)


@dataclass
class Reply:
    data: bytes
    closed: bool  # the server closed (FIN or reset) within the limit
    responses: list[Response] | None  # None: the bytes are not a sequence of responses


def send(port: int, raw: bytes, limit: float = HANG_LIMIT) -> Reply:
    """Write `raw`, shut our side, read until the server closes (or `limit` passes)."""
    data = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server stopped reading early; what it answered is still readable
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    return Reply(data, closed, parse_stream(data))


def parse_stream(data: bytes) -> list[Response] | None:
    """Split `data` into HTTP/1.x responses, all of it, or None when it cannot be.

    Whether an answer has a body depends on its request (HEAD), which a mutated input hides,
    so a response with a length is read both ways and the reading that parses on wins.
    """
    if not data:
        return []
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    if not STATUS_LINE.fullmatch(lines[0]):
        return None
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or not name.isascii() or b" " in name:
            return None
        headers.append((name.decode().lower(), value.strip().decode("latin-1")))
    response = Response(int(lines[0][9:12]), headers, b"")
    rest = data[end + 4 :]
    readings: list[tuple[bytes, bytes]] = [(b"", rest)]  # (body, what follows): no body
    if response.status >= 200 and response.status not in (204, 304):
        length = response.header("content-length")
        if response.header("transfer-encoding") == "chunked":
            body, after = _dechunk(rest)
            readings = [(body, after)] if body is not None else []
        elif length is not None:
            if not length.isdigit():
                return None
            size = int(length)
            if len(rest) >= size:
                readings.insert(0, (rest[:size], rest[size:]))
        else:
            readings.insert(0, (rest, b""))  # delimited by the close
    for body, after in readings:
        following = parse_stream(after)
        if following is not None:
            response.body = body
            return [response, *following]
    return None


def is_refusal(reply: Reply) -> bool:
    """The server refused: its last answer is a 4xx (or it sent none) and it closed."""
    if not reply.closed:
        return False
    return not reply.responses or 400 <= reply.responses[-1].status < 500
