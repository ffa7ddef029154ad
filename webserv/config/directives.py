"""The directive table: the single place a directive is defined, validated and documented.

Each row names the contexts a directive may appear in, its argument count, the function that
turns its arguments into a typed value, its default and how an inner context inherits it.
load.py walks the statement tree against this table; README's directive reference is
generated from it (`python -m webserv --directives`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import variables
from ..headers import AddHeader, Expires
from .errors import ConfigError
from .lexer import Statement
from .values import (
    TLS_PROTOCOLS,
    ListenAddress,
    PathAt,
    compile_regex,
    parse_flag,
    parse_listen_address,
    parse_size,
    parse_time,
)

MAIN, EVENTS, HTTP, SERVER, LOCATION = "main", "events", "http", "server", "location"
HSL = frozenset({HTTP, SERVER, LOCATION})
HS = frozenset({HTTP, SERVER})
ANY = -1

# RFC 9110 methods webserv recognises; the ones it can serve are a subset (see IMPLEMENTED).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"}
)
IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def fail(stmt: Statement, message: str) -> ConfigError:
    return ConfigError(stmt.file, stmt.line, message)


@dataclass(slots=True, frozen=True)
class Directive:
    name: str
    contexts: frozenset[str]
    min_args: int
    max_args: int  # ANY: no upper bound
    parse: Callable[[Statement, list[str]], Any] | None
    default: Any = None
    syntax: str = ""
    default_text: str = ""
    doc: str = ""
    block: bool = False
    # may repeat in one context; values accumulate in a list, and an inner context that has
    # its own replaces the outer list as a whole (nginx: error_page, access_log)
    multi: bool = False


# --- value parsers -------------------------------------------------------------------------


def _one(parse: Callable[[str], Any], what: str) -> Callable[[Statement, list[str]], Any]:
    def parser(stmt: Statement, args: list[str]) -> Any:
        value = parse(args[0])
        if value is None:
            raise fail(stmt, f'invalid {what} "{args[0]}" in "{stmt.name}" directive')
        return value

    return parser


_size = _one(parse_size, "size")
_time = _one(parse_time, "time")


def _flag(stmt: Statement, args: list[str]) -> bool:
    value = parse_flag(args[0])
    if value is None:
        raise fail(
            stmt, f'invalid value "{args[0]}" in "{stmt.name}" directive, it must be "on" or "off"'
        )
    return value


_path = _one(lambda s: s or None, "path")


def _positive_int(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit() or int(args[0]) < 1:
        raise fail(stmt, f'invalid number "{args[0]}" in "{stmt.name}" directive')
    return int(args[0])


def _worker_processes(stmt: Statement, args: list[str]) -> int | str:
    return "auto" if args[0] == "auto" else _positive_int(stmt, args)


def _error_log(stmt: Statement, args: list[str]) -> tuple[str, str]:
    level = args[1] if len(args) > 1 else "error"
    if level not in LOG_LEVELS:
        raise fail(stmt, f'invalid log level "{level}"')
    return (args[0], level)


def _words(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    return tuple(args)


def _methods(stmt: Statement, args: list[str]) -> frozenset[str]:
    methods = set()
    for word in args:
        method = word.upper()
        if method not in KNOWN_METHODS:
            raise fail(stmt, f'unknown method "{word}" in "allow_methods" directive')
        if method not in IMPLEMENTED_METHODS:
            raise fail(stmt, f'method "{word}" is not implemented by webserv')
        methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")  # as in nginx's limit_except: GET implies HEAD
    return frozenset(methods)


@dataclass(slots=True, frozen=True)
class ErrorPage:
    codes: tuple[int, ...]
    uri: str
    override: int | None  # "=CODE": answer with this status instead; 0 for a bare "="


def _error_page(stmt: Statement, args: list[str]) -> ErrorPage:
    *codes_text, uri = args
    override = None
    if codes_text and codes_text[-1].startswith("="):
        spec = codes_text.pop()[1:]
        if spec and (not spec.isdigit() or not 100 <= int(spec) <= 599):
            raise fail(stmt, f'invalid value "={spec}"')
        override = int(spec) if spec else 0
    if not codes_text:
        raise fail(stmt, 'invalid number of arguments in "error_page" directive')
    codes = []
    for text in codes_text:
        if not text.isdigit() or not 300 <= int(text) <= 599:
            raise fail(stmt, f'value "{text}" must be between 300 and 599')
        codes.append(int(text))
    return ErrorPage(tuple(codes), uri, override)


@dataclass(slots=True, frozen=True)
class Return:
    code: int
    text: str | None  # the URL for redirects, the body otherwise
    render: Callable[[Any], str] | None  # text with its $variables, compiled


def _return(stmt: Statement, args: list[str]) -> Return:
    first = args[0]
    if first.isdigit():
        code, text = int(first), (args[1] if len(args) > 1 else None)
        # nginx takes 0-999, but a status line needs three digits: below 100 none is valid
        if not 100 <= code <= 999:
            raise fail(stmt, f'invalid return code "{first}"')
    elif len(args) == 1 and first.startswith(("http://", "https://", "$scheme")):
        code, text = 302, first
    else:
        raise fail(stmt, f'invalid return code "{first}"')
    render = None
    if text is not None:
        try:
            render = variables.compile_template(text, escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
    return Return(code, text, render)


def _listen(stmt: Statement, args: list[str]) -> ListenAddress:
    parsed = parse_listen_address(args[0])
    if isinstance(parsed, str):
        raise fail(stmt, f'{parsed} in "listen" directive')
    host, port, ipv6 = parsed
    default_server = reuseport = deferred = ssl = False
    for option in args[1:]:
        if option in ("default_server", "default"):
            default_server = True
        elif option == "reuseport":
            reuseport = True
        elif option == "deferred":
            deferred = True
        elif option == "ssl":
            ssl = True
        else:
            raise fail(stmt, f'invalid parameter "{option}"')
    return ListenAddress(host, port, ipv6, default_server, reuseport, deferred, ssl)


def _server_name(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    for name in args:
        if name.startswith("~"):
            try:
                compile_regex(name[1:])
            except re.error as exc:
                raise fail(stmt, f'invalid server_name regex "{name}": {exc}') from None
        elif name.count("*") > 1 or (
            "*" in name and not (name.startswith("*.") or name.endswith(".*"))
        ):
            raise fail(stmt, f'invalid server name or wildcard "{name}"')
    # host names compare lower-cased; a regex keeps its case ("\\D" is not "\\d"), it is
    # matched case-insensitively instead
    return tuple(name if name.startswith("~") else name.lower() for name in args)


@dataclass(slots=True, frozen=True)
class AccessLogSpec:
    path: str | None  # None: "off"
    format_name: str = "combined"
    buffer: int = 64 * 1024
    flush: float = 1.0


def _access_log(stmt: Statement, args: list[str]) -> AccessLogSpec:
    if args[0] == "off":
        if len(args) > 1:
            raise fail(stmt, 'invalid parameter after "off" in "access_log" directive')
        return AccessLogSpec(None)
    fmt, buffer, flush = "combined", 64 * 1024, 1.0
    for opt in args[1:]:
        if opt.startswith("buffer="):
            size = parse_size(opt[7:])
            if size is None:
                raise fail(stmt, f'invalid buffer size "{opt[7:]}"')
            buffer = size
        elif opt.startswith("flush="):
            t = parse_time(opt[6:])
            if t is None:
                raise fail(stmt, f'invalid flush time "{opt[6:]}"')
            flush = t
        elif "=" in opt:
            raise fail(stmt, f'invalid parameter "{opt}"')
        else:
            fmt = opt
    return AccessLogSpec(args[0], fmt, buffer, flush)


@dataclass(slots=True, frozen=True)
class LogFormatSpec:
    name: str
    escape: str  # "default", "json" or "none"
    template: str


def _log_format(stmt: Statement, args: list[str]) -> LogFormatSpec:
    name, rest = args[0], args[1:]
    escape = "default"
    if rest and rest[0].startswith("escape="):
        escape = rest.pop(0)[7:]
        if escape not in ("default", "json", "none"):
            raise fail(stmt, f'unknown log format escaping "{escape}"')
    if not rest:
        raise fail(stmt, 'invalid number of arguments in "log_format" directive')
    return LogFormatSpec(name, escape, "".join(rest))


def _keepalive_timeout(stmt: Statement, args: list[str]) -> tuple[float, float | None]:
    timeout = _time(stmt, args[:1])
    header = _time(stmt, args[1:2]) if len(args) > 1 else None
    return (timeout, header)


def _open_file_cache(stmt: Statement, args: list[str]) -> tuple[int, float] | None:
    if args == ["off"]:
        return None
    max_entries, inactive = 0, 60.0
    for opt in args:
        key, _, value = opt.partition("=")
        if key == "max" and value.isdigit() and int(value) > 0:
            max_entries = int(value)
        elif key == "inactive" and parse_time(value) is not None:
            inactive = parse_time(value)
        else:
            raise fail(stmt, f'invalid "open_file_cache" parameter "{opt}"')
    if not max_entries:
        raise fail(stmt, '"open_file_cache" must have the "max" parameter')
    return (max_entries, inactive)


def _header_buffers(stmt: Statement, args: list[str]) -> tuple[int, int]:
    count = _positive_int(stmt, args[:1])
    size = parse_size(args[1])
    if not size or size < 256:
        raise fail(stmt, f'invalid size "{args[1]}" in "large_client_header_buffers" directive')
    return (count, size)


# --- the table ---------------------------------------------------------------------------

DIRECTIVES: dict[str, Directive] = {}


def directive(
    name: str, contexts: Any, min_args: int, max_args: int, parse: Any, **kw: Any
) -> None:
    if isinstance(contexts, str):
        contexts = frozenset({contexts})
    DIRECTIVES[name] = Directive(name, frozenset(contexts), min_args, max_args, parse, **kw)


directive(
    "worker_processes",
    MAIN,
    1,
    1,
    _worker_processes,
    default=1,
    syntax="worker_processes N | auto;",
    default_text="1",
    doc="How many worker processes serve, under one master; `auto`: one per CPU this "
    "process may run on. Changed by a reload.",
)
directive(
    "master_process",
    MAIN,
    1,
    1,
    _flag,
    default=True,
    syntax="master_process on | off;",
    default_text="on",
    doc="`off`: one process serves on its own, without a master (for debugging, as in "
    "nginx): no reload, no worker restart, `worker_processes` ignored.",
)
directive(
    "worker_shutdown_timeout",
    MAIN,
    1,
    1,
    _time,
    syntax="worker_shutdown_timeout TIME;",
    default_text="none",
    doc="On a graceful stop or a reload, how long a retiring worker lets requests in "
    "flight (downloads, uploads, CGI) finish before it closes them; none: as long as they "
    "progress (their own timeouts still apply).",
)
directive(
    "error_log",
    MAIN,
    1,
    2,
    _error_log,
    default=("stderr", "notice"),
    syntax="error_log PATH [LEVEL];",
    default_text="stderr notice",
    doc="Where errors go (a file or `stderr`) and the lowest level written: "
    + ", ".join(LOG_LEVELS)
    + ".",
)
directive(
    "pid",
    MAIN,
    1,
    1,
    _path,
    syntax="pid PATH;",
    default_text="none",
    doc="Write the server's process id to PATH at start; removed at exit.",
)
directive(
    "events",
    MAIN,
    0,
    0,
    None,
    block=True,
    syntax="events { ... }",
    doc="Connection processing settings.",
)
directive(
    "worker_connections",
    EVENTS,
    1,
    1,
    _positive_int,
    default=1024,
    syntax="worker_connections N;",
    default_text="1024",
    doc="Open connections at most; a connection beyond it is closed at once and logged.",
)
directive(
    "http",
    MAIN,
    0,
    0,
    None,
    block=True,
    syntax="http { ... }",
    doc="The HTTP server settings and its `server` blocks.",
)
directive("server", HTTP, 0, 0, None, block=True, syntax="server { ... }", doc="A virtual server.")
directive(
    "location",
    SERVER,
    1,
    2,
    None,
    block=True,
    syntax="location [ = | ~ | ~* | ^~ ] PATTERN { ... }",
    doc="Settings for request URIs that match: exact `=`, then the longest prefix "
    "(a `^~` prefix stops the search), then regexes (`~`, `~*` case-insensitive) in order.",
)
directive(
    "listen",
    SERVER,
    1,
    ANY,  # as nginx: an unknown word is an "invalid parameter", however many there are
    _listen,
    multi=True,
    syntax="listen [HOST:]PORT [default_server] [ssl] [reuseport] [deferred];",
    default_text="*:80",
    doc="An address to accept connections on; IPv6 as `[::1]:8080`. "
    "The first server of an address, or the one marked `default_server`, answers requests "
    "whose Host matches no `server_name`. `reuseport`: one socket per worker "
    "(`SO_REUSEPORT`), the kernel spreads connections among them. `deferred`: the kernel "
    "hands a connection over only once its first bytes have arrived (`TCP_DEFER_ACCEPT`, "
    "for `client_header_timeout`), so one that never sends is never accepted. `ssl`: "
    "connections to this address speak TLS (HTTPS): see `ssl_certificate`.",
)
directive(
    "server_name",
    SERVER,
    1,
    ANY,
    _server_name,
    default=("",),
    syntax="server_name NAME ...;",
    default_text='""',
    doc="Host names of this virtual server: exact, `*.example.com`, `www.example.*`, `~regex`.",
)
directive(
    "root",
    HSL,
    1,
    1,
    _path,
    default="html",
    syntax="root PATH;",
    default_text="html",
    doc="Files are looked up at PATH + URI. A relative PATH is relative to the config's folder.",
)
directive(
    "alias",
    LOCATION,
    1,
    1,
    _path,
    syntax="alias PATH;",
    default_text="none",
    doc="Replace the matched location prefix with PATH to find a file.",
)
directive(
    "index",
    HSL,
    1,
    ANY,
    _words,
    default=("index.html",),
    syntax="index FILE ...;",
    default_text="index.html",
    doc="Files tried, in order, for a URI ending in `/`.",
)
directive(
    "autoindex",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="autoindex on | off;",
    default_text="off",
    doc="List a directory that has no index file.",
)
directive(
    "error_page",
    HSL,
    2,
    ANY,
    _error_page,
    multi=True,
    syntax="error_page CODE ... [=[RESPONSE]] URI;",
    default_text="none",
    doc="Answer the CODEs with URI (an internal redirect; a URL redirects the client). "
    "`=RESPONSE` changes the status; a bare `=` takes the status of URI's answer.",
)
directive(
    "client_max_body_size",
    HSL,
    1,
    1,
    _size,
    default=1024 * 1024,
    syntax="client_max_body_size SIZE;",
    default_text="1m",
    doc="Largest request body; larger → 413. `0` means no limit.",
)
directive(
    "allow_methods",
    HSL,
    1,
    ANY,
    _methods,
    default=frozenset({"GET", "HEAD"}),
    syntax="allow_methods METHOD ...;",
    default_text="GET HEAD",
    doc="Methods answered here. A known method not listed → 405 with `Allow`; an unknown "
    "one → 501. GET implies HEAD.",
)
directive(
    "keepalive_timeout",
    HSL,
    1,
    2,
    _keepalive_timeout,
    default=(75.0, None),
    syntax="keepalive_timeout TIME [HEADER_TIME];",
    default_text="75s",
    doc="How long an idle keep-alive connection stays open; `0` disables keep-alive. "
    "HEADER_TIME is announced in `Keep-Alive: timeout=`.",
)
directive(
    "client_header_timeout",
    HS,
    1,
    1,
    _time,
    default=60.0,
    syntax="client_header_timeout TIME;",
    default_text="60s",
    doc="Time to receive a whole request header section → 408 and close.",
)
directive(
    "client_body_timeout",
    HSL,
    1,
    1,
    _time,
    default=60.0,
    syntax="client_body_timeout TIME;",
    default_text="60s",
    doc="Time between two reads of a request body → 408 and close.",
)
directive(
    "send_timeout",
    HSL,
    1,
    1,
    _time,
    default=60.0,
    syntax="send_timeout TIME;",
    default_text="60s",
    doc="Time between two successful writes to a client that does "
    "not read; the connection is closed after it.",
)
directive(
    "large_client_header_buffers",
    HS,
    2,
    2,
    _header_buffers,
    default=(4, 8192),
    syntax="large_client_header_buffers NUMBER SIZE;",
    default_text="4 8k",
    doc="A request line longer than SIZE → 414; a header field longer than SIZE or a "
    "header section longer than NUMBER × SIZE → 431.",
)
directive(
    "access_log",
    HSL,
    1,
    4,
    _access_log,
    multi=True,
    syntax="access_log PATH [FORMAT [buffer=SIZE] [flush=TIME]] | off;",
    default_text="logs/access.log combined",
    doc="Where requests are logged and in which `log_format`. Lines are buffered and "
    "written at least every `flush` (1s) and when the buffer (64k) fills.",
)
directive(
    "log_format",
    HTTP,
    2,
    ANY,
    _log_format,
    multi=True,
    syntax="log_format NAME [escape=default|json|none] STRING ...;",
    default_text="combined",
    doc="A named access-log format with nginx variables; `combined` is predefined.",
)
directive(
    "types",
    HSL,
    0,
    0,
    None,
    block=True,
    # nginx's built-in map when no `types` block is given; config/mime.types is the full one
    default={"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"},
    syntax="types { TYPE EXT ...; ... }",
    default_text="html gif jpg",
    doc="File extension → MIME type map. Without one, only nginx's three built-in types: "
    "`include mime.types;` (config/mime.types) for the full list.",
)
directive(
    "default_type",
    HSL,
    1,
    1,
    _path,
    default="application/octet-stream",
    syntax="default_type TYPE;",
    default_text="application/octet-stream",
    doc="Content-Type of a file whose extension is not in `types`.",
)
directive(
    "server_tokens",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="server_tokens on | off;",
    default_text="on",
    doc="Show webserv's version in `Server` and error pages.",
)
directive(
    "open_file_cache",
    HSL,
    1,
    2,
    _open_file_cache,
    default=(1024, 60.0),
    syntax="open_file_cache max=N [inactive=TIME] | off;",
    default_text="max=1024 inactive=60s",
    doc="Keep open descriptors and metadata of served files.",
)
directive(
    "open_file_cache_valid",
    HSL,
    1,
    1,
    _time,
    default=1.0,
    syntax="open_file_cache_valid TIME;",
    default_text="1s",
    doc="How long a cached file is served before its path is checked again (`stat`). "
    "Changes made through webserv (PUT, DELETE, uploads) are seen at once.",
)


# --- headers and caching: nginx's ngx_http_headers_filter_module and core's etag, ims ----

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _add_header(stmt: Statement, args: list[str]) -> AddHeader:
    name, text = args[0], args[1]
    if len(args) == 3 and args[2] != "always":
        raise fail(stmt, f'invalid parameter "{args[2]}"')
    if not _HEADER_NAME.fullmatch(name):
        raise fail(stmt, f'invalid header name "{name}" in "add_header" directive')
    if any(c in text for c in "\r\n\0"):
        raise fail(stmt, f'header "{name}" value contains CR, LF or NUL in "add_header" directive')
    render = None
    line: bytes | None = b""
    if "$" in text:
        try:
            render = variables.compile_template(text, escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
        line = None
    elif text:
        line = f"{name}: {text}\r\n".encode("utf-8", "surrogateescape")
    return AddHeader(name, text, len(args) == 3, line, render)


def _expires_time(stmt: Statement, text: str) -> int:
    seconds = parse_time(text) if "ms" not in text else None  # whole seconds, as nginx
    if seconds is None or seconds != int(seconds):
        raise fail(stmt, '"expires" directive invalid value')
    return int(seconds)


def _expires(stmt: Statement, args: list[str]) -> Expires | None:
    if len(args) == 2:
        if args[0] != "modified":
            raise fail(stmt, '"expires" directive invalid value')
        kind, text = "modified", args[1]
    else:
        text = args[0]
        if text == "off":
            return None
        if text in ("epoch", "max"):
            return Expires(text)
        kind = "access"
    if "$" in text:
        raise fail(stmt, '"expires" with variables is not supported by webserv')
    if text.startswith("@"):
        if kind == "modified":
            raise fail(
                stmt, '"expires" directive daily time cannot be used with "modified" parameter'
            )
        seconds = _expires_time(stmt, text[1:])
        if seconds > 24 * 60 * 60:
            raise fail(stmt, '"expires" directive daily time value must be less than 24 hours')
        return Expires("daily", seconds)
    sign = -1 if text.startswith("-") else 1
    return Expires(kind, sign * _expires_time(stmt, text[1:] if text[:1] in "+-" else text))


IMS_MODES = ("off", "exact", "before")


def _if_modified_since(stmt: Statement, args: list[str]) -> str:
    if args[0] not in IMS_MODES:
        raise fail(stmt, f'invalid value "{args[0]}" in "if_modified_since" directive')
    return args[0]


def _count(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit():
        raise fail(stmt, f'invalid number "{args[0]}" in "{stmt.name}" directive')
    return int(args[0])


directive(
    "add_header",
    HSL,
    2,
    3,
    _add_header,
    multi=True,
    syntax="add_header NAME VALUE [always];",
    default_text="none",
    doc="Add a header field to responses with status 200, 201, 204, 206, 301, 302, 303, "
    "304, 307 or 308; with `always`, to every response (error pages too). VALUE may hold "
    "`$variables`; an empty VALUE adds nothing (for ETag and Last-Modified: removes the "
    "handler's). A level with its own `add_header` inherits none from the outer levels.",
)
directive(
    "expires",
    HSL,
    1,
    2,
    _expires,
    syntax="expires [modified] TIME | @TIME | epoch | max | off;",
    default_text="off",
    doc="`Expires` and `Cache-Control` on the statuses of `add_header` without `always`: "
    "TIME from now (or from the file's Last-Modified with `modified`), `@TIME` the next such "
    "time of day; `Cache-Control: max-age=N`, or `no-cache` when negative. `epoch`: "
    "1 Jan 1970 and `no-cache`; `max`: 31 Dec 2037 and 10 years.",
)
directive(
    "etag",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="etag on | off;",
    default_text="on",
    doc="Send an `ETag` with static files (and compare it for If-None-Match, If-Match, "
    "If-Range); off: no ETag, so only `*` and Last-Modified validate.",
)
directive(
    "if_modified_since",
    HSL,
    1,
    1,
    _if_modified_since,
    default="exact",
    syntax="if_modified_since off | exact | before;",
    default_text="exact",
    doc="How a static file answers `If-Modified-Since` with 304: `exact` when the date is "
    "the file's Last-Modified, `before` when the file is not newer than it, `off` never.",
)
directive(
    "keepalive_requests",
    HSL,
    1,
    1,
    _count,
    default=1000,
    syntax="keepalive_requests N;",
    default_text="1000",
    doc="The Nth request of a connection is answered with `Connection: close`, and the "
    "connection closed after it.",
)
directive(
    "return",
    frozenset({SERVER, LOCATION}),
    1,
    2,
    _return,
    syntax="return CODE [URL | TEXT] | URL;",
    default_text="none",
    doc="Stop and answer: 301/302/303/307/308 redirect to URL; other codes send TEXT.",
)
directive(
    "upload_store",
    HSL,
    1,
    1,
    _path,
    syntax="upload_store DIR;",
    default_text="none",
    doc="Where POST (forms and raw bodies) and PUT write, and DELETE removes, for this "
    "location; created at start if missing. Without it, writing methods get 403.",
)


def _cgi(stmt: Statement, args: list[str]) -> tuple[str, str | None]:
    ext = args[0]
    if not ext.startswith(".") or len(ext) < 2 or "/" in ext:
        raise fail(stmt, f'invalid CGI extension "{ext}", it must look like ".py"')
    return (ext, args[1] if len(args) > 1 else None)


directive(
    "cgi",
    HSL,
    1,
    2,
    _cgi,
    multi=True,
    syntax="cgi EXT [INTERPRETER];",
    default_text="none",
    doc="Run files ending in EXT as CGI scripts (RFC 3875), with INTERPRETER if given "
    "(`cgi .py /usr/bin/python3;`), else directly (they must be executable). Repeatable.",
)
directive(
    "cgi_timeout",
    HSL,
    1,
    1,
    _time,
    default=30.0,
    syntax="cgi_timeout TIME;",
    default_text="30s",
    doc="A script still running after TIME is killed (its whole "
    "process group): 504 before its header section, an aborted response after.",
)


def _history(stmt: Statement, args: list[str]) -> int:
    value = _positive_int(stmt, args)
    if value > 100000:
        raise fail(stmt, f'"status_history" of {value} connections is too many (100000 at most)')
    return value


directive(
    "lifecycle",
    HS,
    1,
    1,
    _flag,
    default=True,
    syntax="lifecycle on | off;",
    default_text="on",
    doc="Record each connection's TCP lifecycle: the client's SYN "
    "(TCP_SAVE_SYN) and TCP_INFO at accept and at close. Off: nothing is read from the kernel "
    "(`$tcpinfo_*` log variables still read TCP_INFO when a line is written, as nginx's do).",
)
directive(
    "lifecycle_log",
    HS,
    1,
    1,
    _path,
    syntax="lifecycle_log PATH | off;",
    default_text="off",
    doc="One JSON line per connection at close: SYN, TCP_INFO at accept and close, who "
    "closed first, and its requests with their timings.",
)


directive(
    "lifecycle_capture",
    HS,
    1,
    1,
    _flag,
    default=False,
    syntax="lifecycle_capture on | off;",
    default_text="off",
    doc="Capture the handshake and close segments of the server's ports (an `AF_PACKET` "
    "socket with a kernel BPF filter: SYN, FIN, RST and zero-payload ACKs, never data) and "
    "add them to each connection's record as `wire`: the server's ISN, every segment's "
    "sequence and acknowledgement numbers and kernel receive time. Needs `CAP_NET_RAW`; "
    "without it one warning and the lifecycle works without it.",
)


def _request_tcpinfo(stmt: Statement, args: list[str]) -> int:
    if args[0] == "every":
        return 1
    if args[0] == "off":
        return 0
    return _positive_int(stmt, args)


directive(
    "lifecycle_request_tcpinfo",
    HS,
    1,
    1,
    _request_tcpinfo,
    default=0,
    syntax="lifecycle_request_tcpinfo every | N | off;",
    default_text="off",
    doc="TCP_INFO per request: read at its first byte and when its response has been handed "
    "to the kernel, kept as deltas (retransmits, bytes acked and received, segments) with the "
    "RTT and delivery rate at its end — for the first request of a connection, every Nth, and "
    "one known to be the last (`Connection: close`). Two getsockopt calls per such request.",
)
directive(
    "status_history",
    HS,
    1,
    1,
    _history,
    default=200,
    syntax="status_history N;",
    default_text="200",
    doc="How many closed connections the status page keeps.",
)
directive(
    "status",
    LOCATION,
    1,
    1,
    _flag,
    default=False,
    syntax="status on | off;",
    default_text="off",
    doc="A live page of open and recent connections (each drawn from "
    "SYN to close) and aggregate charts; JSON with `Accept: application/json` or `?format=json`.",
)
directive(
    "metrics",
    LOCATION,
    1,
    1,
    _flag,
    default=False,
    syntax="metrics on | off;",
    default_text="off",
    doc="Prometheus text exposition of connection, request and TCP metrics.",
)


# --- TLS (`listen ... ssl`): nginx's ngx_http_ssl_module names, contexts and defaults ------


def _ssl_file(stmt: Statement, args: list[str]) -> PathAt:
    return PathAt(args[0], stmt.file, stmt.line)


def _ssl_protocols(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    for name in args:
        if name not in TLS_PROTOCOLS:
            raise fail(stmt, f'invalid value "{name}" in "ssl_protocols" directive')
    return tuple(args)


def _ssl_ciphers(stmt: Statement, args: list[str]) -> str:
    import ssl  # (only a config that names ciphers pays for the import here)

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(args[0])
    except ssl.SSLError:
        raise fail(stmt, f'SSL_CTX_set_cipher_list("{args[0]}") failed') from None
    return args[0]


directive(
    "ssl_certificate",
    HS,
    1,
    1,
    _ssl_file,
    syntax="ssl_certificate FILE;",
    default_text="none",
    doc="The PEM certificate (with its chain after it) of the servers with `listen ... ssl`; "
    "checked at load with its key.",
)
directive(
    "ssl_certificate_key",
    HS,
    1,
    1,
    _ssl_file,
    syntax="ssl_certificate_key FILE;",
    default_text="none",
    doc="The PEM private key of `ssl_certificate` (not encrypted); a key that does not match "
    "its certificate is an error at load.",
)
directive(
    "ssl_protocols",
    HS,
    1,
    ANY,
    _ssl_protocols,
    default=("TLSv1.2", "TLSv1.3"),
    syntax="ssl_protocols [TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3];",
    default_text="TLSv1.2 TLSv1.3",
    doc="TLS versions accepted (from the lowest to the highest named).",
)
directive(
    "ssl_ciphers",
    HS,
    1,
    1,
    _ssl_ciphers,
    default="HIGH:!aNULL:!MD5",
    syntax="ssl_ciphers CIPHERS;",
    default_text="HIGH:!aNULL:!MD5",
    doc="OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are OpenSSL's).",
)
directive(
    "ssl_prefer_server_ciphers",
    HS,
    1,
    1,
    _flag,
    default=False,
    syntax="ssl_prefer_server_ciphers on | off;",
    default_text="off",
    doc="Pick the cipher by the server's order rather than the client's.",
)
directive(
    "ssl_session_timeout",
    HS,
    1,
    1,
    _time,
    default=300.0,
    syntax="ssl_session_timeout TIME;",
    default_text="5m",
    doc="How long a TLS session (ticket or session id) can be resumed.",
)
directive(
    "ssl_session_tickets",
    HS,
    1,
    1,
    _flag,
    default=True,
    syntax="ssl_session_tickets on | off;",
    default_text="on",
    doc="Resume sessions with tickets (their keys are shared by the workers, and new at "
    "each start and reload).",
)
