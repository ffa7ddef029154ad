"""Directory listings in nginx's shape: names escaped, links percent-encoded, dirs first."""

from __future__ import annotations

import html
import os
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
