"""The directive table: the single place a directive is defined, validated and documented.

Each row names the contexts a directive may appear in, its argument count, the function that
turns its arguments into a typed value, its default and how an inner context inherits it.
This module holds the core rows (processes, the http, server and location blocks,
listening and server names, error pages, return, server_tokens, CGI); directives_files.py
and directives_requests.py hold the rest of the core (a location's files; what a request
may be and its timeouts), the sections directives_*.py theirs (logs, headers, TLS...), and
table.py the machinery. Importing this module registers them all. load.py walks the
statement tree against DIRECTIVES; README's directive reference is generated from it
(`python -m webserv --directives`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import variables
from ..server_names import compile_name_regex
from .lexer import Statement
from .table import (
    ANY,
    DIRECTIVES,
    EVENTS,
    HS,
    HSL,
    HTTP,
    LOCATION,
    MAIN,
    SERVER,
    Directive,
    _flag,
    _path,
    _positive_int,
    _time,
    directive,
    fail,
)
from .values import ListenAddress, parse_listen_address

__all__ = ["ANY", "DIRECTIVES", "EVENTS", "HS", "HSL", "HTTP", "LOCATION", "MAIN", "SERVER"]
__all__ += ["Directive", "directive", "fail"]

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def _worker_processes(stmt: Statement, args: list[str]) -> int | str:
    return "auto" if args[0] == "auto" else _positive_int(stmt, args)


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


def _listen(stmt: Statement, args: list[str]) -> ListenAddress | tuple[ListenAddress, ...]:
    """One address, or with a range of ports (`listen 8000-8002;`) one for each, in order."""
    parsed = parse_listen_address(args[0])
    if isinstance(parsed, str):
        raise fail(stmt, f'{parsed} in "listen" directive')
    host, port, ipv6, last = parsed
    default_server = reuseport = deferred = ssl = proxy_protocol = False
    for option in args[1:]:
        if option in ("default_server", "default"):
            default_server = True
        elif option == "reuseport":
            reuseport = True
        elif option == "deferred":
            deferred = True
        elif option == "ssl":
            ssl = True
        elif option == "proxy_protocol":
            proxy_protocol = True
        else:
            raise fail(stmt, f'invalid parameter "{option}"')
    options = (default_server, reuseport, deferred, ssl, proxy_protocol)
    if last != port:
        return tuple(ListenAddress(host, p, ipv6, *options) for p in range(port, last + 1))
    return ListenAddress(host, port, ipv6, *options)


def _server_tokens(stmt: Statement, args: list[str]) -> bool:
    return True if args[0] == "build" else _flag(stmt, args)


def _server_name(stmt: Statement, args: list[str]) -> tuple[str, ...]:
    for name in args:
        if name.startswith("~"):
            try:
                compile_name_regex(name[1:])
            except re.error as exc:
                raise fail(stmt, f'invalid server_name regex "{name}": {exc}') from None
        elif name.count("*") > 1 or (
            "*" in name and not (name.startswith("*.") or name.endswith(".*"))
        ):
            raise fail(stmt, f'invalid server name or wildcard "{name}"')
    # host names compare lower-cased; a regex keeps its case ("\\D" is not "\\d"), it is
    # matched case-insensitively instead
    return tuple(name if name.startswith("~") else name.lower() for name in args)


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
    {SERVER, LOCATION},
    1,
    2,
    None,
    block=True,
    syntax="location [ = | ~ | ~* | ^~ ] PATTERN { ... }",
    doc="Settings for request URIs that match: exact `=`, then the longest prefix "
    "(a `^~` prefix stops the search), then regexes (`~`, `~*` case-insensitive) in order. "
    "May nest: an inner prefix must start with the outer one's, a regex may be inside any "
    "but `=`; inner locations are searched within the outer one that matched, and inherit "
    "its settings but `return`.",
)
directive(
    "listen",
    SERVER,
    1,
    ANY,  # as nginx: an unknown word is an "invalid parameter", however many there are
    _listen,
    multi=True,
    syntax="listen [HOST:]PORT [default_server] [ssl] [proxy_protocol] [reuseport] [deferred];",
    default_text="*:80",
    doc="An address to accept connections on; IPv6 as `[::1]:8080`; a range of ports "
    "(`127.0.0.1:8000-8002`) is one address for each, as nginx. "
    "The first server of an address, or the one marked `default_server`, answers requests "
    "whose Host matches no `server_name`. `reuseport`: one socket per worker "
    "(`SO_REUSEPORT`), the kernel spreads connections among them. `deferred`: the kernel "
    "hands a connection over only once its first bytes have arrived (`TCP_DEFER_ACCEPT`, "
    "for `client_header_timeout`), so one that never sends is never accepted. `ssl`: "
    "connections to this address speak TLS (HTTPS): see `ssl_certificate`. "
    "`proxy_protocol`: every connection starts with a PROXY protocol v1 or v2 header (from "
    "a balancer; before the TLS ClientHello with `ssl`); one without a valid header is "
    "closed: see `set_real_ip_from`.",
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
    multi=True,
    doc="Host names of this virtual server: exact, `*.example.com`, `www.example.*`, "
    "`.example.com` (both), `~regex` (PCRE syntax, caseless; its captures are variables: "
    "`$1`, `$name`). Several lines add up; the first name is `$server_name`.",
)
directive(
    "merge_slashes",
    HS,
    1,
    1,
    _flag,
    default=True,
    syntax="merge_slashes on | off;",
    default_text="on",
    doc="Repeated slashes in a request path are merged into one before the location search "
    "and `$uri`; `off` keeps them. As nginx, an address's default server decides (the "
    "path is parsed before the Host header chooses a server).",
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
    "server_tokens",
    HSL,
    1,
    1,
    _server_tokens,
    default=True,
    syntax="server_tokens on | off | build;",
    default_text="on",
    doc="Show webserv's version in `Server` and error pages; `build` is `on` (nginx adds "
    "its build name, webserv has none).",
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


# the sections register their rows on import, in this order in the reference: the core's
# own two first, so that their rows follow the ones above
from . import directives_files, directives_requests  # noqa: E402, F401, I001
from . import (  # noqa: E402, F401
    directives_access,
    directives_charset,
    directives_compat,
    directives_compress,
    directives_dav,
    directives_headers,
    directives_lifecycle,
    directives_limits,
    directives_logs,
    directives_proxy,
    directives_rewrite,
    directives_tls,
)
