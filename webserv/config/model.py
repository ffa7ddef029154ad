"""The typed, inherited configuration: frozen objects built once by load.py.

Everything a request needs is resolved here at load time — inheritance, absolute paths, the
location match order, compiled log formats — so the hot path only reads attributes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..error_log import error_log as process_error_log
from ..http.request import normalize_path
from .directives import ErrorPage, Return
from .values import ListenAddress

KEEPALIVE_MSIE6, KEEPALIVE_SAFARI = 1, 2  # keepalive_disable's browsers, as bits


@dataclass(slots=True, frozen=True, eq=False)
class Location:
    """Effective settings for requests that match one `location` (or a server's fallback)."""

    modifier: str  # "", "=", "^~", "~", "~*"; "server" for a server's own settings
    pattern: str
    regex: re.Pattern[str] | None
    file: str
    line: int
    root: str  # absolute, without a trailing slash
    root_real: str  # root with symlinks resolved: files must stay below it
    alias: str | None  # absolute; replaces `pattern` in the path
    alias_real: str | None
    index: tuple[Any, ...]  # a name, or a template f(ex) -> name for one with `$`
    autoindex: bool
    error_pages: Mapping[int, ErrorPage]
    client_max_body_size: int  # 0: unlimited
    allow_methods: frozenset[str]
    allow_header: str  # "GET, HEAD": the value of Allow on a 405
    keepalive_timeout: float
    keepalive_header: float | None
    client_body_timeout: float
    send_timeout: float
    access_logs: tuple[Any, ...]  # logs.AccessLog objects, shared per path
    types: Mapping[str, str]
    default_type: str
    server_tokens: bool
    open_file_cache: tuple[int, float] | None
    open_file_cache_valid: float
    return_: Return | None
    # add_header / expires (headers.HeaderFilter), None without either: the writer skips it
    header_filter: Any
    etag: bool
    if_modified_since: str  # "off", "exact" or "before"
    keepalive_requests: int  # the Nth request of a connection closes it
    keepalive_disable: int = 1  # KEEPALIVE_MSIE6 | KEEPALIVE_SAFARI bits (directives_headers)
    keepalive_safari: bool = False  # keepalive_disable safari (writer.py's one test)
    keepalive_time: float = 3600.0  # a request this long after the accept closes
    log_not_found: bool = True  # a 404 for a missing file logged at error level
    uninitialized_variable_warn: bool = True  # an unset `set` variable read: a warn line
    # absolute_redirect / server_name_in_redirect / port_in_redirect (redirects.py)
    absolute_redirect: bool = False
    server_name_in_redirect: bool = False
    port_in_redirect: bool = True
    add_trailers: Any = None  # add_trailer's AddHeaders (writer.trailer_section); None: none
    # later features: CGI, uploads, the lifecycle status page and metrics
    cgi: Mapping[str, str | None] = field(default_factory=dict)  # ".py" -> interpreter or None
    cgi_timeout: float = 30.0
    upload_store: str | None = None  # absolute
    upload_store_real: str | None = None
    status: bool = False
    metrics: bool = False
    error_type: bytes = b"text/html"  # the default error pages' type (with `charset`)
    # phases.py: rewrite, limits, access, try_files objects in nginx's order; None: no phase
    phases: tuple[Any, ...] | None = None
    # how many leading characters of a URI `alias` replaces: the length of the name of the
    # location that said `alias` (a nested location inheriting it keeps its parent's)
    alias_strip: int = 0
    # the locations nested in this one, in the same three tables as a Server's
    exact: Mapping[str, Location] = field(default_factory=dict)
    prefixes: tuple[Location, ...] = ()  # longest first
    regexes: tuple[Location, ...] = ()  # config order
    autoindex_format: str = "html"  # html | xml | json | jsonp
    # limit_rate, limit_rate_after (bytes a second, bytes at full speed); None: unlimited
    limit_rate: tuple[int, int] | None = None
    # gzip, gzip_static, brotli_static (compress.Compress); None: none of them, no cost
    compress: Any = None
    max_ranges: int | None = None  # None: unlimited; 0: no ranges, no Accept-Ranges
    # charset / source_charset recoding of static files (recode.Recoder); None: none
    recode: Any = None
    # dav_methods and its settings (directives_dav.Dav); None: dav_methods off, no cost
    dav: Any = None
    # error_log.ErrorLog for messages on a request's behalf: the process's own (main's
    # lines) unless http, server or location has error_log lines
    error_log: Any = process_error_log

    def describe(self) -> str:
        if self.modifier == "server":
            return f"server at {self.file}:{self.line}"
        mod = f"{self.modifier} " if self.modifier else ""
        return f"location {mod}{self.pattern} at {self.file}:{self.line}"


@dataclass(slots=True, frozen=True, eq=False)
class Server:
    names: tuple[str, ...]
    listens: tuple[ListenAddress, ...]
    file: str
    line: int
    client_header_timeout: float
    header_line_limit: int  # one request line or header field, bytes
    header_section_limit: int  # the whole header section, bytes
    fallback: Location  # the server's own settings, when no location matches
    exact: Mapping[str, Location]
    prefixes: tuple[Location, ...]  # longest first
    regexes: tuple[Location, ...]  # config order
    lifecycle: bool = True
    lifecycle_log: Any = None  # logs.LogFile, or None
    status_history: int = 200
    request_tcpinfo: int = 0  # lifecycle_request_tcpinfo: every Nth request (0: off)
    lifecycle_capture: bool | str = False  # capture.py: on (True), off, "userspace"
    tls: Any = None  # tls.TlsSettings when it has an ssl_certificate
    ssl_context: Any = None  # its ssl.SSLContext (what SNI switches a handshake to)
    real_ip: Any = None  # directives_proxy.RealIp: trusted balancers (set_real_ip_from)
    has_regex_name: bool = False  # a `server_name ~...`: its captures are variables
    merge_slashes: bool = True  # (read from an address's default server: ListenGroup)

    @property
    def primary_name(self) -> str:
        """$server_name: the first name, as written (nginx drops a `.name`'s dot)."""
        name = self.names[0] if self.names else ""
        return name[1:] if name.startswith(".") else name


@dataclass(slots=True, frozen=True, eq=False)
class ListenGroup:
    """The servers reachable through one address, and the one that answers unknown hosts."""

    address: ListenAddress
    servers: tuple[Server, ...]
    default: Server
    exact_names: Mapping[str, Server]
    wildcard_front: tuple[tuple[str, Server], ...]  # ("example.com", s) for "*.example.com"
    wildcard_back: tuple[tuple[str, Server], ...]  # ("www.", s) for "www.example.*"
    regex_names: tuple[tuple[re.Pattern[str], Server], ...]
    # the request path's normalisation, by the default server's merge_slashes (nginx
    # parses the target before Host chooses the server): request.normalize_path, or
    # http/merge_slashes.normalize_path_unmerged for `off`
    normalize_path: Callable[[bytes], str] = normalize_path


@dataclass(slots=True, frozen=True, eq=False)
class Listener:
    """One socket to bind. Several groups share it when a wildcard address covers them."""

    address: ListenAddress
    groups: Mapping[tuple[str, int], ListenGroup]  # by local (host, port); "" host = wildcard
    needs_local_address: bool  # True when groups differ by local address
    reuseport: bool = False  # one socket per worker (SO_REUSEPORT) instead of one shared
    lifecycle: bool = True  # a server behind it records the lifecycle: keep each SYN
    deferred: float = 0.0  # seconds of TCP_DEFER_ACCEPT (listen ... deferred); 0: off
    tls: Mapping[ListenGroup, Any] | None = None  # `listen ... ssl`: each group's SSLContext
    proxy_protocol: bool = False  # `listen ... proxy_protocol`: a PROXY header comes first

    @property
    def key(self) -> tuple[str, int, bool]:
        """What identifies the socket across reloads."""
        return (self.address.host, self.address.port, self.address.ipv6)


@dataclass(slots=True, frozen=True, eq=False)
class Config:
    path: str
    prefix: str
    worker_processes: int | str
    worker_connections: int
    master_process: bool
    worker_shutdown_timeout: float | None  # None: wait as long as requests progress
    error_log: tuple[str, str]
    pid: str | None
    servers: tuple[Server, ...]
    listeners: tuple[Listener, ...]
    access_logs: tuple[Any, ...]  # every distinct logs.AccessLog
    log_files: tuple[Any, ...] = ()  # every logs.LogFile: access and lifecycle logs
    # (and error_log.ErrorLogFile, logs.LogFileCache: what the cycle opens and reopens)
    main_error_log: Any = None  # error_log.ErrorLog of main's lines (the cycle `use`s it)
    # what nginx reports as [warn] and still accepts (a server name claimed twice)
    warnings: tuple[str, ...] = ()
