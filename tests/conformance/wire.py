"""Send raw bytes to a server and describe, strictly, what came back.

`exchange()` writes the bytes, reads until the server closes or goes quiet, and splits what it
read into HTTP/1.1 responses with a strict parser (anything that is not a well-formed
response is reported as `garbage`, never skipped). The result says which statuses came back,
in order, and whether the server closed the connection.

Nothing here measures time: `quiet` and `limit` only bound how long we wait for the server to
answer or to close.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) [\x20-\x7e]*")
FIELD_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x20-\x7e\x80-\xff\t]*?)[ \t]*")


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


@dataclass
class Outcome:
    """What a server did with one row's bytes."""

    responses: list[Response] = field(default_factory=list)
    closed: bool = False  # the server closed (FIN or reset) after its answers
    send_failed: bool = False  # the server closed before it had read all the bytes
    garbage: bytes = b""  # bytes that are not a complete, well-formed response
    next_status: int | None = None  # the answer to a plain GET sent after, if left open

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(r.status for r in self.responses)

    def describe(self) -> str:
        answer = " ".join(str(s) for s in self.statuses) or "no answer"
        if self.garbage and not self.responses and not self.garbage.startswith(b"HTTP/"):
            answer = "a body without status line (HTTP/0.9)"
        elif self.garbage:
            answer += f" + malformed {self.garbage[:30]!r}"
        if self.closed:
            return f"{answer}, closed"
        nxt = "no answer" if self.next_status is None else self.next_status
        return f"{answer}, open (next request: {nxt})"


def parse_responses(data: bytes, head_first: bool = False) -> tuple[list[Response], bytes]:
    """Split `data` into complete responses; return them and the unparsed rest."""
    responses: list[Response] = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].split(b"\r\n")
        if not STATUS_LINE.fullmatch(lines[0]):
            break
        status = int(lines[0][9:12])
        headers = []
        for line in lines[1:]:
            match = FIELD_LINE.fullmatch(line)
            if not match:
                return responses, data
            headers.append((match[1].decode().lower(), match[2].decode("latin-1")))
        rest = data[end + 4 :]
        response = Response(status, headers, b"")
        bodiless = (head_first and not responses) or status in (204, 304) or status < 200
        if bodiless:
            pass
        elif response.header("transfer-encoding") == "chunked":
            body, rest = _dechunk(rest)
            if body is None:
                break
            response.body = body
        elif response.header("content-length") is not None:
            length = int(response.header("content-length"))
            if len(rest) < length:
                break
            response.body, rest = rest[:length], rest[length:]
        else:  # delimited by close: everything that is left
            response.body, rest = rest, b""
        responses.append(response)
        data = rest
    return responses, data


def _dechunk(data: bytes) -> tuple[bytes | None, bytes]:
    body = b""
    while True:
        end = data.find(b"\r\n")
        if end < 0 or not re.fullmatch(rb"[0-9a-fA-F]+", data[:end]):
            return None, data
        size = int(data[:end], 16)
        chunk = data[end + 2 : end + 2 + size]
        if len(chunk) < size or data[end + 2 + size : end + 4 + size] != b"\r\n":
            return None, data
        body += chunk
        data = data[end + 4 + size :]
        if size == 0:
            return body, data


PLAIN = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _read(sock: socket.socket, quiet: float, limit: float, one: bool = False) -> tuple[bytes, bool]:
    """Read until the peer closes (True), is quiet for `quiet`, or (`one`) a response is whole."""
    data = b""
    deadline = time.monotonic() + limit
    sock.settimeout(quiet)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
        if one and parse_responses(data)[0]:
            return data, False
    return data, False


def exchange(
    port: int, raw: bytes, quiet: float = 1.0, limit: float = 10.0, head_first: bool = False
) -> Outcome:
    """Send `raw` on a fresh connection; read until the server closes or is quiet for `quiet`.

    When the connection is still open then, one plain `GET /` follows on it, and the status
    of its answer (None: none came) is `next_status`: a connection left open must still work.
    """
    outcome = Outcome()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            outcome.send_failed = True  # the server stopped reading; its answer may be there
        data, outcome.closed = _read(sock, quiet, limit)
        outcome.responses, outcome.garbage = parse_responses(data, head_first)
        if not outcome.closed:
            try:
                sock.sendall(PLAIN)
                more, _ = _read(sock, max(quiet, 3.0), limit, one=True)
            except OSError:
                more = b""
            answers = parse_responses(more)[0]
            outcome.next_status = answers[0].status if answers else None
    return outcome


def alive(port: int) -> bool:
    """A plain request on a fresh connection gets a well-formed 200."""
    try:
        result = exchange(
            port, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", quiet=5
        )
    except OSError:
        return False
    return result.statuses == (200,) and not result.garbage
