"""Directive rows for the logs: error_log (files, stderr, syslog:), log_not_found,
access_log (buffer=, gzip=, flush=, if=, paths with variables, syslog:), log_format and
open_log_file_cache. Only parses and registers; load.py builds the logs (logs.py,
error_log.py, syslog.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import syslog, variables
from .lexer import Statement
from .table import ANY, HSL, HTTP, LOCATION, MAIN, SERVER, _flag, directive, fail
from .values import parse_size, parse_time

LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")


def _error_log(stmt: Statement, args: list[str]) -> tuple[str, str]:
    if args[0].startswith("memory:"):
        raise fail(stmt, f'webserv does not log to memory: "{args[0]}"')
    if syslog.is_syslog(args[0]):
        try:
            syslog.parse(args[0])  # (checked here for file:line; load.py makes the target)
        except syslog.SyslogError as exc:
            raise fail(stmt, str(exc)) from None
    level = args[1] if len(args) > 1 else "error"
    if level not in LOG_LEVELS:
        raise fail(stmt, f'invalid log level "{level}"')
    return (args[0], level)


@dataclass(slots=True, frozen=True)
class AccessLogSpec:
    path: str | None  # None: "off"
    format_name: str = "combined"
    buffer: int | None = None  # None: not given (webserv still buffers 64k, see the doc)
    flush: float | None = None
    condition: str | None = None  # if=TEMPLATE: no line when it is empty or "0"
    gzip: int | None = None  # gzip[=LEVEL]: 1 (fastest) to 9


def _access_log(stmt: Statement, args: list[str]) -> AccessLogSpec:
    if args[0] == "off":
        if len(args) > 1:
            raise fail(stmt, 'invalid parameter after "off" in "access_log" directive')
        return AccessLogSpec(None)
    if syslog.is_syslog(args[0]):
        try:
            syslog.parse(args[0])  # (checked here for file:line; load.py makes the target)
        except syslog.SyslogError as exc:
            raise fail(stmt, str(exc)) from None
    fmt, buffer, flush, condition, level = "combined", None, None, None, None
    for i, opt in enumerate(args[1:]):
        if opt.startswith("buffer="):
            size = parse_size(opt[7:])
            if size is None or size <= 0:
                raise fail(stmt, f'invalid buffer size "{opt[7:]}"')
            buffer = size
        elif opt.startswith("flush="):
            t = parse_time(opt[6:])
            if t is None or t <= 0:
                raise fail(stmt, f'invalid flush time "{opt[6:]}"')
            flush = t
        elif opt == "gzip":
            level = 1
        elif opt.startswith("gzip="):
            if not opt[5:].isdigit() or not 1 <= int(opt[5:]) <= 9:
                raise fail(stmt, f'invalid compression level "{opt[5:]}"')
            level = int(opt[5:])
        elif opt.startswith("if="):
            condition = opt[3:]
            try:
                variables.compile_template(condition, escape="none_raw")
            except variables.UnknownVariable as exc:
                raise fail(stmt, str(exc)) from None
        elif i == 0 and "=" not in opt:
            fmt = opt
        else:
            raise fail(stmt, f'invalid parameter "{opt}"')
    # (nginx: 'no buffer is defined' for flush= alone; webserv always buffers, so it is the
    # delay of its 64k buffer)
    if level is not None and buffer is None:
        buffer = 64 * 1024  # nginx: gzip alone buffers 64k
    if (buffer is not None or level is not None) and "$" in args[0]:
        raise fail(stmt, "buffered logs cannot have variables in name")
    if (buffer is not None or level is not None or flush is not None) and syslog.is_syslog(args[0]):
        raise fail(stmt, "logs to syslog cannot be buffered")
    return AccessLogSpec(args[0], fmt, buffer, flush, condition, level)


def _open_log_file_cache(stmt: Statement, args: list[str]) -> tuple[int, float, int, float] | None:
    """(max, inactive, min_uses, valid); None: off."""
    if args == ["off"]:
        return None
    found = {"max": 0, "inactive": 10.0, "min_uses": 1, "valid": 60.0}
    for opt in args:
        key, _, value = opt.partition("=")
        if key in ("max", "min_uses") and value.isdigit() and int(value) > 0:
            found[key] = int(value)
        elif key in ("inactive", "valid") and parse_time(value) is not None:
            found[key] = parse_time(value)
        else:
            raise fail(stmt, f'invalid "open_log_file_cache" parameter "{opt}"')
    if not found["max"]:
        raise fail(stmt, '"open_log_file_cache" must have "max" parameter')
    return (found["max"], found["inactive"], found["min_uses"], found["valid"])


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


directive(
    "log_not_found",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="log_not_found on | off;",
    default_text="on",
    doc="Log a file not found (a 404) in the location's error log, at `error` level, as "
    "nginx; `off`: no line for it (other client errors are logged at `info`).",
)
directive(
    "uninitialized_variable_warn",
    HSL,
    1,
    1,
    _flag,
    default=True,
    syntax="uninitialized_variable_warn on | off;",
    default_text="on",
    doc='Log `using uninitialized "NAME" variable` at `warn` when a request reads a `set` '
    "variable that no `set` gave a value (once a request and variable); `off`: no line.",
)
directive(
    "error_log",
    {MAIN, HTTP, SERVER, LOCATION},
    1,
    2,
    _error_log,
    multi=True,
    default=("stderr", "notice"),
    syntax="error_log PATH [LEVEL];",
    default_text="stderr notice",
    doc="Where errors go (a file or `stderr`) and the lowest level written: "
    + ", ".join(LOG_LEVELS)
    + " (`error` when omitted). Several lines all log, each at its level; a level with "
    "lines of its own does not inherit the outer ones. A request's messages go to its "
    "location's, the others (start, signals, reload) to main's.",
)
directive(
    "access_log",
    HSL,
    1,
    -1,
    _access_log,
    multi=True,
    syntax="access_log PATH [FORMAT [buffer=SIZE] [gzip[=LEVEL]] [flush=TIME] [if=CONDITION]]"
    " | off;",
    default_text="logs/access.log combined",
    doc="Where requests are logged and in which `log_format`. Lines are buffered and "
    "written when the buffer (`buffer=`, 64k) fills and `flush` (1s) after the first "
    "(nginx writes each line at once without `buffer=`/`gzip`). `gzip[=1-9]`: each "
    "written buffer is one gzip member (`zcat` reads the file). `if=`: no line for a "
    "request whose CONDITION (a template: `$arg_log`, `$http_x`) is empty or `0`. A PATH "
    "with variables is opened per line (see `open_log_file_cache`) and cannot be buffered.",
)
directive(
    "open_log_file_cache",
    HSL,
    1,
    4,
    _open_log_file_cache,
    default=None,
    syntax="open_log_file_cache max=N [inactive=TIME] [min_uses=N] [valid=TIME] | off;",
    default_text="off",
    doc="For access_log paths with variables: keep the descriptors of up to N files open "
    "once used `min_uses` times within `inactive` (10s), opened by name again after "
    "`valid` (60s). Paths without variables are opened once per generation regardless.",
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
