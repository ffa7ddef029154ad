"""The header section a CGI script prints (RFC 3875 §6): where it ends and what it says.

Scripts end their lines with LF or CRLF (both are accepted, even mixed). A section is refused
(the caller answers 502) when a line is not `name: value`, a name is not a token, a value
holds control characters, a line is folded, or none of Content-Type, Location and Status is
given. Nothing here touches a process or a socket.
"""

from __future__ import annotations

import re

HEAD_LIMIT = 64 * 1024  # a script that prints more without a blank line is broken

_END = re.compile(rb"\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# never forwarded: the connection's own framing (RFC 9110 §7.6.1 hop-by-hop fields) is the
# writer's to choose, and Server and Date are always the writer's
_DROPPED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-connection",
        b"server",
        b"date",
    }
)


class BadHead(Exception):
    """The script's header section is malformed; the message is one line for the error log."""


def find_end(buf: bytes, start: int = 0) -> tuple[int, int] | None:
    """(end of the fields, start of the body) once `buf` holds the blank line, else None.

    `start` is where the previous search gave up, so a section arriving in many small pieces
    is scanned once, not once per piece.
    """
    if buf[:1] == b"\n" or buf[:2] == b"\r\n":
        return 0, 1 if buf[:1] == b"\n" else 2  # a blank line first: an empty section
    match = _END.search(buf, max(0, start - 2))
    if match is None:
        return None
    return match.start(), match.end()


class Head:
    """What the script asked for: a status, header lines for the client, a body framing."""

    __slots__ = ("status", "fields", "location", "content_type", "length", "local_redirect")

    def __init__(self) -> None:
        self.status = 200
        self.fields = b""  # "Name: value\r\n" lines, Status/Content-Length/hop-by-hop removed
        self.location: bytes | None = None
        self.content_type: bytes | None = None
        self.length: int | None = None  # the script's Content-Length
        self.local_redirect = False  # RFC 3875 §6.2.2: the server answers for that path


def parse(section: bytes) -> Head:
    head = Head()
    status: int | None = None
    fields: list[bytes] = []
    if not section:
        raise BadHead("empty header section")
    for raw in section.split(b"\n"):
        line = raw[:-1] if raw[-1:] == b"\r" else raw
        if line[:1] in (b" ", b"\t"):
            raise BadHead(f"folded header line {_show(line)}")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadHead(f"malformed header line {_show(line)}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise BadHead(f"control character in header line {_show(line)}")
        lower = name.lower()
        if lower == b"status":
            code = value.split(b" ", 1)[0]
            if status is not None:
                raise BadHead("more than one Status header")
            if len(code) != 3 or not code.isdigit() or not 200 <= int(code) <= 599:
                raise BadHead(f"invalid Status {_show(value)}")
            status = int(code)  # the reason phrase is webserv's own for the code
        elif lower == b"content-length":
            if not value.isdigit() or (head.length is not None and head.length != int(value)):
                raise BadHead(f"invalid Content-Length {_show(value)}")
            head.length = int(value)
        elif lower in _DROPPED:
            continue
        else:
            if lower == b"location" or lower == b"content-type":
                if (head.location if lower == b"location" else head.content_type) is not None:
                    raise BadHead(f"more than one {name.decode()} header")
                if lower == b"location":
                    head.location = value
                else:
                    head.content_type = value
            fields.append(name + b": " + value + b"\r\n")
    if status is None and head.location is None and head.content_type is None:
        raise BadHead("no Content-Type, Location or Status header")
    location = head.location
    if location is not None and status is None:
        if location[:1] == b"/" and location[:2] != b"//":
            head.local_redirect = True
        else:
            status = 302  # RFC 3875 §6.2.3: a client redirect
    head.status = status if status is not None else 200
    head.fields = b"".join(fields)
    return head


def _show(text: bytes) -> str:
    return repr(text[:80])[1:]
