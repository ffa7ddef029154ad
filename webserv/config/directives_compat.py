"""Directive rows nginx configs (and nginx's own test suite) use that only tune nginx's
memory, or whose only value is what webserv always does: accepted with nginx's syntax,
contexts and defaults, so such a config loads. Each row's doc says what it means here.
Only parses and registers; nothing here is read at request time.
"""

from __future__ import annotations

from .lexer import Statement
from .table import HS, HSL, HTTP, _flag, _size, directive, fail

# --- buffers: nginx's memory layout; webserv's buffers grow as a request needs ------------

_MEMORY = "Accepted for nginx configs; webserv's buffers grow as needed, so it changes nothing."

directive(
    "client_header_buffer_size",
    HS,
    1,
    1,
    _size,
    default=1024,
    syntax="client_header_buffer_size SIZE;",
    default_text="1k",
    doc="nginx's first buffer for a request's header section (larger ones come from "
    "`large_client_header_buffers`, which sets webserv's limits). " + _MEMORY,
)
directive(
    "connection_pool_size",
    HS,
    1,
    1,
    _size,
    default=512,
    syntax="connection_pool_size SIZE;",
    default_text="512",
    doc="nginx's per-connection memory pool. " + _MEMORY,
)
directive(
    "client_body_buffer_size",
    HSL,
    1,
    1,
    _size,
    default=16 * 1024,
    syntax="client_body_buffer_size SIZE;",
    default_text="16k",
    doc="nginx's in-memory buffer for a request body before it spills to a file. webserv "
    "streams a body to its handler (an upload's temporary file, a CGI script's stdin) as "
    "it arrives: accepted, changes nothing.",
)


def _in_file_only(stmt: Statement, args: list[str]) -> str:
    if args[0] not in ("on", "clean", "off"):
        raise fail(
            stmt,
            f'invalid value "{args[0]}" in "{stmt.name}" directive, '
            'it must be "on", "clean" or "off"',
        )
    return args[0]


directive(
    "client_body_in_file_only",
    HSL,
    1,
    1,
    _in_file_only,
    default="off",
    syntax="client_body_in_file_only on | clean | off;",
    default_text="off",
    doc="nginx: always keep a request body in a file (for `$request_body_file`). webserv "
    "has no `$request_body_file`; uploads are files anyway: accepted, changes nothing.",
)
directive(
    "client_body_in_single_buffer",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="client_body_in_single_buffer on | off;",
    default_text="off",
    doc="nginx: keep a request body in one buffer (for `$request_body`). " + _MEMORY,
)
directive(
    "server_names_hash_bucket_size",
    HTTP,
    1,
    1,
    _size,
    default=64,
    syntax="server_names_hash_bucket_size SIZE;",
    default_text="64",  # nginx: the CPU cache line, 64 on x86-64
    doc="nginx's hash of server names. webserv's name table is a dict: accepted, changes nothing.",
)
directive(
    "server_names_hash_max_size",
    HTTP,
    1,
    1,
    _size,
    default=512,
    syntax="server_names_hash_max_size SIZE;",
    default_text="512",
    doc="nginx's hash of server names. webserv's name table is a dict: accepted, changes nothing.",
)

# --- what webserv always does ---------------------------------------------------------------


directive(
    "ignore_invalid_headers",
    HS,
    1,
    1,
    _flag,
    default=True,
    syntax="ignore_invalid_headers on | off;",
    default_text="on",
    doc="nginx drops header fields with invalid names. webserv's parser refuses a request "
    "with one (400) whatever this says.",
)
directive(
    "underscores_in_headers",
    HS,
    1,
    1,
    _flag,
    default=False,
    syntax="underscores_in_headers on | off;",
    default_text="off",
    doc="nginx drops header fields whose names have `_` unless on. webserv keeps them for "
    "`$http_*` and the logs, and never passes them to a CGI script (`X_Foo` and `X-Foo` would "
    "both be `HTTP_X_FOO`: one could forge the other), whatever this says.",
)


# --- autoindex_format: a real setting, read by handlers/autoindex.py ------------------------

AUTOINDEX_FORMATS = ("html", "xml", "json", "jsonp")


def _autoindex_format(stmt: Statement, args: list[str]) -> str:
    if args[0] not in AUTOINDEX_FORMATS:
        raise fail(stmt, f'invalid value "{args[0]}" in "autoindex_format" directive')
    return args[0]


directive(
    "autoindex_format",
    HSL,
    1,
    1,
    _autoindex_format,
    default="html",
    syntax="autoindex_format html | xml | json | jsonp;",
    default_text="html",
    doc="The shape of an `autoindex` listing: nginx's HTML page, or its XML (`text/xml`), "
    "JSON (`application/json`; mtime as an HTTP date, size for files) or JSONP (the JSON "
    "wrapped in the function named by the `callback` argument: letters, digits, `_`, `.`, "
    "at most 128, else 400; without one, plain JSON).",
)
