"""The environment of a CGI script: RFC 3875 §4.1 meta-variables, HTTP_* and PATH, no more.

webserv's own environment never leaks into a script (it may hold secrets or settings meant
for the server): only PATH is passed on. Keys and values are bytes, so header values and
percent-decoded paths reach the script exactly as they came, whatever their encoding.
"""

from __future__ import annotations

import functools
import os

from ..http.request import Exchange, origin_form
from ..http.status import SERVER_BARE, SERVER_WITH_VERSION

_PATH = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").encode()

# request headers that are meta-variables of their own (CONTENT_*), that no longer hold
# (the script reads an un-chunked body of CONTENT_LENGTH bytes), or that must never become
# one: "Proxy" would be HTTP_PROXY, which HTTP clients in the script take for their proxy
# (httpoxy, CVE-2016-5385)
_NOT_PASSED = frozenset({b"content-length", b"content-type", b"transfer-encoding", b"proxy"})

_env_names: dict[bytes, bytes] = {}  # header name → HTTP_* name, memoised (few distinct names)


def _http_name(name: bytes) -> bytes:
    key = _env_names.get(name)
    if key is None:
        key = b"HTTP_" + name.upper().replace(b"-", b"_")
        if len(_env_names) < 1024:
            _env_names[name] = key
    return key


def _fs(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=1024)
def _base(root: str, tokens: bool) -> dict[bytes, bytes]:
    """What a location's scripts all get: the same for every request (copied, never changed)."""
    return {
        b"GATEWAY_INTERFACE": b"CGI/1.1",
        b"SERVER_SOFTWARE": (SERVER_WITH_VERSION if tokens else SERVER_BARE).encode(),
        b"DOCUMENT_ROOT": _fs(root),
        b"REDIRECT_STATUS": b"200",  # php-cgi refuses to run without it (force_redirect)
        b"PATH": _PATH,
    }


def build_env(ex: Exchange, script, content_length: int | None) -> dict[bytes, bytes]:
    """The script's whole environment. `content_length` is None when the request has no body."""
    loc = ex.location
    conn = ex.conn
    server_name = ex.host or (ex.server.primary_name if ex.server is not None else "")
    local = conn.local_addr
    env = _base(loc.root, loc.server_tokens).copy()
    env[b"SERVER_PROTOCOL"] = ex.version.encode()
    env[b"SERVER_NAME"] = _fs(server_name or local)
    env[b"SERVER_ADDR"] = local.encode()
    env[b"SERVER_PORT"] = b"%d" % conn.local_port
    env[b"REQUEST_METHOD"] = ex.method.encode()
    env[b"REQUEST_URI"] = origin_form(ex.raw_target)
    env[b"SCRIPT_NAME"] = _fs(script.name)
    env[b"SCRIPT_FILENAME"] = _fs(script.filename)
    env[b"PATH_INFO"] = _fs(script.path_info)
    env[b"QUERY_STRING"] = ex.query.encode("latin-1")
    env[b"REMOTE_ADDR"] = str(conn.remote_addr).encode()
    env[b"REMOTE_PORT"] = b"%d" % conn.remote_port
    if conn.https:
        env[b"HTTPS"] = b"on"  # as nginx's fastcgi_params: the request came over TLS
    if script.path_info:
        # RFC 3875 §4.1.6: unset when PATH_INFO is empty
        env[b"PATH_TRANSLATED"] = _fs(script.path_translated)
    headers = ex.headers
    if content_length is not None:
        env[b"CONTENT_LENGTH"] = b"%d" % content_length
    content_type = headers.get(b"content-type")
    if content_type is not None:
        env[b"CONTENT_TYPE"] = content_type
    for name, value in headers.items():
        if name in _NOT_PASSED or b"_" in name:
            # "X_Forwarded" and "X-Forwarded" would both be HTTP_X_FORWARDED: one could
            # forge the other, so names with "_" are dropped (as Apache and nginx do)
            continue
        if b"\x00" in value:
            continue
        env[_http_name(name)] = value
    return env
