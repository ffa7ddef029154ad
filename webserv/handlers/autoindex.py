"""Directory listings in nginx's shape: names escaped, links percent-encoded, dirs first;
as HTML, or (autoindex_format) nginx's XML, JSON and JSONP."""

from __future__ import annotations

import html
import os
import re
import time
from urllib.parse import quote

from ..http.errors import HttpError
from ..http.request import Exchange
from ..http.response import Response

NAME_WIDTH = 50  # nginx pads names to 50 columns and cuts longer ones with "..>"


def listing(ex: Exchange, directory: str) -> Response:
    try:
        with os.scandir(directory) as it:
            entries = []
            for entry in it:
                if entry.name.startswith("."):
                    continue  # nginx hides dot files
                try:
                    st = entry.stat()  # follows links, as nginx shows the target's size
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                entries.append((not is_dir, entry.name, is_dir, st.st_size, st.st_mtime))
    except OSError as exc:
        raise HttpError(403, f'opendir() "{directory}" failed ({exc.strerror})') from None
    entries.sort()
    fmt = ex.location.autoindex_format
    if fmt != "html":
        return _formatted(ex, fmt, entries)
    title = _escape(ex.path)
    lines = [
        f"<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n"
        f"<h1>Index of {title}</h1><hr><pre>"
    ]
    # nginx prints the parent link even at "/" (a browser resolves it to "/" again)
    lines.append('<a href="../">../</a>\r\n')
    for _, name, is_dir, size, mtime in entries:
        shown = name + ("/" if is_dir else "")
        href = quote(name, errors="surrogateescape") + ("/" if is_dir else "")
        text = shown if len(shown) <= NAME_WIDTH else shown[: NAME_WIDTH - 3] + "..>"
        pad = " " * (NAME_WIDTH + 1 - len(text))
        stamp = time.strftime("%d-%b-%Y %H:%M", time.gmtime(mtime))
        size_text = "-" if is_dir else str(size)
        lines.append(
            f'<a href="{html.escape(href)}">{_escape(text)}</a>{pad}{stamp} {size_text:>19}\r\n'
        )
    lines.append("</pre><hr></body>\r\n</html>\r\n")
    body = "".join(lines).encode("utf-8", "surrogateescape")
    return Response(200, b"Content-Type: text/html; charset=utf-8\r\n", body)


def _escape(text: str) -> str:
    """nginx's ngx_escape_html: <, >, & and " (not the apostrophe, which html.escape takes)."""
    return html.escape(text, quote=False).replace('"', "&quot;")


_CALLBACK = re.compile(r"[A-Za-z0-9_.]{0,128}")
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(text: str) -> str:
    """nginx's ngx_escape_json: `"` and `\\`, control characters as escapes."""
    return "".join(
        _JSON_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text
    )


def _formatted(ex: Exchange, fmt: str, entries: list[tuple]) -> Response:
    """nginx's xml, json and jsonp listings (ngx_http_autoindex_module.c), byte for byte.

    `jsonp` wraps the JSON in the `callback` argument's function (letters, digits, `_`, `.`,
    at most 128: else 400); without one it is plain JSON, as nginx's."""
    if fmt == "xml":
        lines = ['<?xml version="1.0"?>\r\n<list>\r\n']
        for _, name, is_dir, size, mtime in entries:
            kind = "directory" if is_dir else "file"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
            extra = "" if is_dir else f'" size="{size}'
            lines.append(f'<{kind} mtime="{stamp}{extra}">{_escape(name)}</{kind}>\r\n')
        lines.append("</list>\r\n")
        body = "".join(lines).encode("utf-8", "surrogateescape")
        return Response(200, b"Content-Type: text/xml; charset=utf-8\r\n", body)
    callback = None
    if fmt == "jsonp":
        callback = _query_arg(ex.query, "callback")
        if callback and not _CALLBACK.fullmatch(callback):
            raise HttpError(400, f'client sent invalid callback name: "{callback[:200]}"')
    items = []
    for _, name, is_dir, size, mtime in entries:
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(mtime))
        kind = "directory" if is_dir else "file"
        tail = '"' if is_dir else f'", "size":{size}'
        items.append(
            f'\r\n{{ "name":"{_json_string(name)}", "type":"{kind}", "mtime":"{stamp}{tail} }}'
        )
    text = "[" + ",".join(items) + "\r\n]"
    ctype = b"application/json"
    if callback:
        text = f"/* callback */\r\n{callback}({text});"
        ctype = b"application/javascript"
    body = text.encode("utf-8", "surrogateescape")
    return Response(200, b"Content-Type: " + ctype + b"\r\n", body)


def _query_arg(query: str, name: str) -> str:
    """The first NAME=VALUE of a query, undecoded as nginx's ngx_http_arg; "" without one."""
    for pair in query.split("&"):
        key, _, val = pair.partition("=")
        if key == name:
            return val
    return ""
