"""Status lines, reason phrases and webserv's default error pages, built once at import."""

from __future__ import annotations

from http import HTTPStatus

from .. import __version__

REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
REASONS.update({413: "Request Entity Too Large", 414: "Request-URI Too Large"})  # nginx's words


def reason(status: int) -> str:
    return REASONS.get(status, "Unknown")


# status lines by HTTP minor version, then status: built on first use
STATUS_LINES: tuple[dict[int, bytes], dict[int, bytes]] = ({}, {})


def status_line(status: int, minor: int = 1) -> bytes:
    lines = STATUS_LINES[minor]
    line = lines.get(status)
    if line is None:
        line = lines[status] = f"HTTP/1.{minor} {status} {reason(status)}\r\n".encode("latin-1")
    return line


SERVER_WITH_VERSION = f"webserv/{__version__}"
SERVER_BARE = "webserv"

_PAGE = (
    "<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {text}</h1></center>\r\n<hr><center>{server}</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_pages: dict[tuple[int, bool], bytes] = {}


def default_page(status: int, tokens: bool = True) -> bytes:
    """A small HTML page for an error status, nginx's shape: title, heading, server line."""
    page = _pages.get((status, tokens))
    if page is None:
        server = SERVER_WITH_VERSION if tokens else SERVER_BARE
        page = _PAGE.format(code=status, text=reason(status), server=server).encode()
        _pages[(status, tokens)] = page
    return page


# responses that never carry a body (RFC 9110 §6.4.1)
NO_BODY = frozenset({204, 304}) | frozenset(range(100, 200))
