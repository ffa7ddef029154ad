"""nginx variables: names → Python expressions on an exchange `x`, compiled once.

Used by log_format and by `return` texts. A template is compiled into one function at config
load, so a log line costs one f-string, not a parse. The TCP lifecycle's variables
($tcpinfo_*, $syn_*, ...) are variables_tcp.py's; `set`'s are variables_set.py's.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from . import auth_basic, server_names, variables_set, variables_tcp
from .http.dates import http_date_now, iso8601_at, time_local_at

# name -> (expression on x, safe): a safe value never needs escaping (numbers, addresses)
_VARIABLES: dict[str, tuple[str, bool]] = {
    "remote_addr": ("x.conn.remote_addr", True),
    "remote_port": ("x.conn.remote_port", True),
    "remote_user": ("_remote_user(x)", False),  # auth_basic.remote_user: checked or not
    "server_addr": ("x.conn.local_addr", True),
    "server_port": ("x.conn.local_port", True),
    # times are the exchange's own (t_done: handed to the kernel), so a line written later
    # (see AccessLog) says when the request ended, not when the log was flushed
    "time_local": ("_time_local(x.t_done)", True),
    "time_iso8601": ("_time_iso(x.t_done)", True),
    "date_gmt": ("_date_gmt()", True),
    "msec": ("f'{(x.t_done or _time()):.3f}'", True),
    "request": ("x.request_line", False),
    "request_method": ("x.method", False),
    "request_uri": ("x.target", False),
    "uri": ("x.path", False),
    "document_uri": ("x.path", False),
    "args": ("x.query", False),
    "query_string": ("x.query", False),
    "is_args": ("('?' if x.query else '')", True),
    "scheme": ("x.conn.scheme", True),
    "https": ("x.conn.https", True),
    # TLS (`listen ... ssl`): "" (a "-" in a log line) on a plain connection
    "ssl_protocol": ("_tls(x, 'version')", False),
    "ssl_cipher": ("_tls(x, 'cipher')", False),
    "ssl_server_name": ("_tls(x, 'sni')", False),
    "ssl_alpn_protocol": ("_tls(x, 'alpn')", False),
    "ssl_session_reused": ("_tls(x, 'resumed')", True),
    # `listen ... proxy_protocol`: what the balancer's header says ("" / "-" without one)
    "proxy_protocol_addr": ("_proxy(x, 'src_addr')", False),
    "proxy_protocol_port": ("_proxy(x, 'src_port')", False),
    "proxy_protocol_server_addr": ("_proxy(x, 'dst_addr')", False),
    "proxy_protocol_server_port": ("_proxy(x, 'dst_port')", False),
    "server_protocol": ("x.version", False),
    "status": ("x.status", True),
    "body_bytes_sent": ("x.body_bytes_sent", True),
    "bytes_sent": ("x.bytes_sent", True),
    "request_length": ("x.request_length", True),
    "request_time": ("f'{(x.t_done or _time()) - x.start:.3f}'", True),
    "connection": ("x.conn.id", True),
    "connection_requests": ("x.conn.requests", True),
    "pipe": ("('p' if x.pipelined else '.')", True),  # nginx's: pipelined or not
    # seconds since accept, ms resolution (the lifecycle record's accept time: "" without)
    "connection_time": ("_connection_time(x)", True),
    "server_name": ("x.server.primary_name", False),
    "host": ("x.host", False),
    "content_length": ("_header(x, b'content-length')", False),
    "content_type": ("_header(x, b'content-type')", False),
    "pid": ("_pid()", True),
    # limits.py: the client's address as 4 or 16 raw bytes (a limit zone's usual key), and
    # what limit_req / limit_conn decided ("" where none applies)
    "binary_remote_addr": ("_binary_addr(x.conn.remote_addr)", False),
    # (not "safe": without a limit they are not found, "-" in a log line, as nginx's)
    "limit_req_status": ("_limit_status(x, 'req_status')", False),
    "limit_conn_status": ("_limit_status(x, 'conn_status')", False),
}
# prefix -> function(rest of the name) -> (expression, safe)
_PREFIXES: dict[str, Callable[[str], tuple[str, bool] | None]] = {
    "http_": lambda rest: (f"_header(x, {rest.replace('_', '-').lower().encode()!r})", False),
    "arg_": lambda rest: (f"_arg(x, {_ascii_lower(rest) + '='!r})", False),
    "sent_http_": lambda rest: (f"_sent(x, {rest.replace('_', '-').lower().encode()!r})", False),
}

_PREFIXES["tcpinfo_"] = variables_tcp.tcpinfo_variable
_VARIABLES.update(variables_tcp.VARIABLES)

_VAR = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


# --- regex captures: $1..$9 and named groups ($name), valued by server_names.capture -------
# The named groups of the config being loaded (server_names.capture_names, set by load.py
# before any directive is parsed: nginx declares them for the whole configuration). A
# template names the capture in its compiled code, so a later load never changes it.
capture_names: frozenset[str] = frozenset()


def lookup(name: str) -> tuple[str, bool] | None:
    if name in _VARIABLES:
        return _VARIABLES[name]
    if name in capture_names:
        return (f"_capture(x, {name!r})", False)
    for prefix, resolve in _PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return resolve(name[len(prefix) :])
    return None


# every name a `set` of the config being loaded declares, lowercased (variables_set.py's
# set_names, stored here by load.py before any directive is parsed)
set_names: frozenset[str] = frozenset()


def _tls(x: Any, key: str) -> str:
    info = x.conn.tls
    if not info or info.get("failure"):
        return ""
    if key == "resumed":
        return "r" if info["resumed"] else "."  # nginx's $ssl_session_reused
    return info.get(key) or ""


def _proxy(x: Any, key: str) -> Any:
    header = x.conn.proxy
    if header is None:
        return ""
    value = getattr(header, key)
    return "" if value is None else value


def _header(x: Any, name: bytes) -> str:
    value = x.headers.get(name)
    # UTF-8 with surrogateescape, like every text that ends in a log or a body: it encodes
    # back to the very bytes received (latin-1 here turned "é" into "Ã©" in escape=json logs)
    return value.decode("utf-8", "surrogateescape") if value is not None else ""


def _connection_time(x: Any) -> str:
    return f"{(x.t_done or time.time()) - x.conn.started:.3f}"


def _sent(x: Any, name: bytes) -> str:
    """$sent_http_NAME: the field as the response's header section sent it ("" if none;
    the first of repeated ones). Read from the bytes the writer sent (Exchange.sent_head)."""
    head = getattr(x, "sent_head", None)
    if not head:
        return ""
    low = head.lower()
    at = low.find(b"\r\n" + name + b":")
    if at < 0:
        return ""
    start = at + len(name) + 3
    return head[start : head.find(b"\r\n", start)].strip().decode("latin-1")


def binary_addr(addr: str) -> bytes:
    """An address's raw 4 or 16 bytes (b"" for anything else): $binary_remote_addr, and the
    key limits.py's zones use for it."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)
    except (OSError, ValueError):
        return b""


def _binary_addr(addr: str) -> str:
    """$binary_remote_addr in a template: the raw bytes, one character each (latin-1)."""
    return binary_addr(addr).decode("latin-1")


def _limit_status(x: Any, which: str) -> str:
    state = x.cleanup
    return getattr(state, which, "") or "" if state is not None else ""


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _arg(x: Any, key: str) -> str:
    """$arg_NAME as nginx's ngx_http_arg reads it (`key`: "name=", lower case): the raw
    value of the first NAME= that starts the query or follows an `&`, whatever its case;
    not percent-decoded (`+` stays), and a NAME without `=` is no match."""
    query = x.query
    if not query:
        return ""
    low = _ascii_lower(query)  # ngx_strlcasestrn: ASCII letters only
    pos = low.find(key)
    while pos >= 0:
        if pos == 0 or query[pos - 1] == "&":
            start = pos + len(key)
            end = query.find("&", start)
            return query[start:] if end < 0 else query[start:end]
        pos = low.find(key, pos + 1)
    return ""


# escape=default: nginx writes '"', '\' and bytes outside printable ASCII as \xHH
_DEFAULT_ESCAPES = {c: f"\\x{c:02X}" for c in [*range(0x20), 0x22, 0x5C, *range(0x7F, 0x100)]}
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x20)}
_JSON_ESCAPES.update({0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def _escape_default(value: Any) -> str:
    text = str(value)
    if not text:
        return "-"
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    data = text.encode("utf-8", "surrogateescape")
    return "".join(_DEFAULT_ESCAPES.get(b, chr(b)) for b in data)


# bytes that escape=default rewrites; a value without any is written as it is
_UNSAFE = bytes([*range(0x20), 0x22, 0x5C, *range(0x7F, 0x100)])


def _escape_bytes(value: bytes) -> str:
    # decoded first (latin-1 cannot fail), then checked with str's own C loops: no copy of
    # the bytes is made for the check (bytes.translate made one)
    text = value.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_DEFAULT_ESCAPES.get(b, chr(b)) for b in value)


def _header_default(value: bytes | None) -> str:
    """$http_NAME with escape=default, straight from the header bytes (the hot case)."""
    if not value:
        return "-"
    text = value.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_DEFAULT_ESCAPES.get(b, chr(b)) for b in value)


def _request_default(x: Any) -> str:
    """$request with escape=default: only the target can hold bytes that need escaping."""
    method = x.method
    if not method:
        return "-"
    text = x.raw_target.decode("latin-1")
    if not (text.isascii() and text.isprintable() and '"' not in text and "\\" not in text):
        text = "".join(_DEFAULT_ESCAPES.get(b, chr(b)) for b in x.raw_target)
    return f"{method} {text} {x.version}"


def _escape_json(value: Any) -> str:
    return str(value).translate(_JSON_ESCAPES)


def _escape_none(value: Any) -> str:
    text = str(value)
    return text or "-"


_ESCAPERS = {
    "default": _escape_default,
    "json": _escape_json,
    "none": _escape_none,
    "none_raw": str,  # for texts sent to clients (return): an empty value stays empty
}


class UnknownVariable(ValueError):
    pass


# what may be rendered after the request, from the finished exchange alone: everything but
# what changes later (the connection's request count, TCP_INFO ($tcpinfo_*), who closed, the
# date) or needs the open socket (the local address)
_LATE_SAFE = frozenset(_VARIABLES) - {
    "connection_requests", "server_addr", "server_port", "date_gmt", "closed_by",
}  # fmt: skip
_LATE_SAFE_PREFIXES = ("http_", "arg_", "sent_http_")


def _late_safe(name: str) -> bool:
    return name in _LATE_SAFE or name.startswith(_LATE_SAFE_PREFIXES)


def compile_template(
    template: str, escape: str = "default", newline: bool = False
) -> Callable[[Any], str]:
    """Compile an nginx template ("$remote_addr - [$time_local]") into `f(x) -> str`.

    The function's `late_safe` attribute says whether it may run after the request (every
    variable it uses is in _LATE_SAFE): access logs then render lines in batches.
    """
    parts: list[str] = []
    pos = 0
    late_safe = True
    for m in _VAR.finditer(template):
        literal = template[pos : m.start()]
        if literal:
            parts.append(_literal(literal))
        name = m.group(1) or m.group(2)
        if m.group(2) and name[0].isdigit():
            # $1..$9: one digit, as nginx reads it ("$12" is capture 1, then "2"); a braced
            # "${1}" is a variable's name, unknown (nginx too)
            parts.append(f"{{_esc(_capture(x, {int(name[0])}))}}")
            late_safe = False
            if name[1:]:
                parts.append(_literal(name[1:]))
            pos = m.end()
            continue
        key = name.lower()
        if key in set_names:
            found = lookup(key)
            parts.append(variables_set.template_part(key, found))
            if found is not None and not _late_safe(key):
                late_safe = False
            pos = m.end()
            continue
        found = lookup(name)
        if found is None:
            raise UnknownVariable(f'unknown "{name}" variable')
        expression, safe = found
        if not _late_safe(name):
            late_safe = False
        if escape == "default" and expression.startswith("_header(x, "):
            # (x.headers.get: one call less per field than a helper that looks it up)
            parts.append(
                "{_header_default(x.headers.get(" + expression[len("_header(x, ") :] + ")}"
            )
        elif escape == "default" and name == "request":
            parts.append("{_request_default(x)}")
        elif escape == "default" and name == "remote_user":
            # (combined's field: a request without Authorization pays one dict lookup)
            parts.append("{_esc(_remote_user(x)) if b'authorization' in x.headers else '-'}")
        elif safe and escape not in ("json", "none_raw"):
            parts.append(f"{{{expression}}}")
        else:
            parts.append(f"{{_esc({expression})}}")
        pos = m.end()
    if template[pos:]:
        parts.append(_literal(template[pos:]))
    if newline:
        parts.append("\\n")
    source = f'def render(x):\n    return f"{"".join(parts)}"\n'
    esc = _ESCAPERS[escape]
    namespace: dict[str, Any] = {
        "_esc": esc,
        "_esc_set": lambda value: esc(value) if value else "",
        "_set_get": variables_set.set_get,
        "_set_value": variables_set.set_value,
        "_time_local": time_local_at,
        "_time_iso": iso8601_at,
        "_date_gmt": http_date_now,
        "_time": time.time,
        "_header": _header,
        "_sent": _sent,
        "_connection_time": _connection_time,
        "_header_default": _header_default,
        "_tls": _tls,
        "_proxy": _proxy,
        "_request_default": _request_default,
        "_remote_user": auth_basic.remote_user,
        "_arg": _arg,
        "_binary_addr": _binary_addr,
        "_limit_status": _limit_status,
        "_capture": server_names.capture,
        "_pid": os.getpid,  # the writing worker's, not the master's that compiled it
    }
    namespace.update(variables_tcp.NAMESPACE)
    namespace.update(variables_tcp.field_readers(source))
    exec(compile(source, f"<template {template[:40]!r}>", "exec"), namespace)
    render = namespace["render"]
    render.late_safe = late_safe
    return render


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return escaped.replace("{", "{{").replace("}", "}}")
