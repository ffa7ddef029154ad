"""Directive rows for rate and connection limits: limit_req_zone, limit_req, limit_conn_zone,
limit_conn and their _status / _log_level / _dry_run, limit_rate, limit_rate_after
(nginx's ngx_http_limit_req_module, ngx_http_limit_conn_module and core).

Parses and registers, with nginx's wording for every error; the zones and the preaccess
phase objects are made by the builders below (limits.py decides, zones.py keeps the state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import limits, variables
from ..zones import MIN_SIZE
from .lexer import Statement
from .table import DIRECTIVES, HSL, HTTP, PREACCESS, _flag, directive, fail, phase_builder
from .values import parse_size

LOG_LEVELS = ("info", "notice", "warn", "error")


@dataclass(slots=True, frozen=True)
class ZoneDecl:
    kind: str  # "limit_req" or "limit_conn"
    name: str
    size: int
    key_text: str
    rate: int  # milli-requests a second (limit_req)


def _key(stmt: Statement, text: str) -> None:
    try:
        limits.compile_key(text)
    except variables.UnknownVariable as exc:
        raise fail(stmt, str(exc)) from None


def _zone_param(stmt: Statement, arg: str) -> tuple[str, int]:
    name, colon, size_text = arg[5:].partition(":")
    if not colon or not name:
        raise fail(stmt, f'invalid zone size "{arg}"')
    size = parse_size(size_text)
    if size is None:
        raise fail(stmt, f'invalid zone size "{arg}"')
    if size < MIN_SIZE:
        raise fail(stmt, f'zone "{arg}" is too small')
    return name, size


def _limit_req_zone(stmt: Statement, args: list[str]) -> ZoneDecl:
    _key(stmt, args[0])
    name, size, rate, scale = "", 0, 1, 1
    for arg in args[1:]:
        if arg.startswith("zone="):
            name, size = _zone_param(stmt, arg)
        elif arg.startswith("rate="):
            text = arg[5:]
            scale = 1
            if text.endswith("r/s"):
                text = text[:-3]
            elif text.endswith("r/m"):
                text, scale = text[:-3], 60
            rate = int(text) if text.isdigit() else 0
            if rate <= 0:
                raise fail(stmt, f'invalid rate "{arg}"')
        elif arg == "sync":
            continue  # nginx Plus: synchronised across a cluster; here: one server's workers
        else:
            raise fail(stmt, f'invalid parameter "{arg}"')
    if not name:
        raise fail(stmt, '"limit_req_zone" must have "zone" parameter')
    return ZoneDecl("limit_req", name, size, args[0], rate * 1000 // scale)


def _limit_conn_zone(stmt: Statement, args: list[str]) -> ZoneDecl:
    _key(stmt, args[0])
    name, size = "", 0
    for arg in args[1:]:
        if arg.startswith("zone="):
            name, size = _zone_param(stmt, arg)
        else:
            raise fail(stmt, f'invalid parameter "{arg}"')
    if not name:
        raise fail(stmt, '"limit_conn_zone" must have "zone" parameter')
    return ZoneDecl("limit_conn", name, size, args[0], 0)


def _limit_req(stmt: Statement, args: list[str]) -> tuple[str, int, int]:
    zone, burst, delay = "", 0, 0
    for arg in args:
        if arg.startswith("zone="):
            zone = arg[5:]
        elif arg.startswith("burst="):
            burst = int(arg[6:]) if arg[6:].isdigit() else 0
            if burst <= 0:
                raise fail(stmt, f'invalid burst value "{arg}"')
        elif arg.startswith("delay="):
            delay = int(arg[6:]) if arg[6:].isdigit() else 0
            if delay <= 0:
                raise fail(stmt, f'invalid delay value "{arg}"')
        elif arg == "nodelay":
            delay = limits.NODELAY // 1000
        else:
            raise fail(stmt, f'invalid parameter "{arg}"')
    if not zone:
        raise fail(stmt, '"limit_req" must have "zone" parameter')
    return zone, burst * 1000, delay * 1000


def _limit_conn(stmt: Statement, args: list[str]) -> tuple[str, int]:
    n = int(args[1]) if args[1].isdigit() else 0
    if n <= 0:
        raise fail(stmt, f'invalid number of connections "{args[1]}"')
    if n > 65535:
        raise fail(stmt, "connection limit must be less 65536")
    return args[0], n


def _status(stmt: Statement, args: list[str]) -> int:
    if not args[0].isdigit():
        raise fail(stmt, f'"{stmt.name}" directive invalid number')
    code = int(args[0])
    if not 400 <= code <= 599:
        raise fail(stmt, "value must be between 400 and 599")
    return code


def _log_level(stmt: Statement, args: list[str]) -> str:
    if args[0] not in LOG_LEVELS:
        raise fail(stmt, f'invalid value "{args[0]}"')
    return args[0]


def _rate_size(stmt: Statement, args: list[str]) -> int:
    size = parse_size(args[0])
    if size is None:
        raise fail(stmt, f'"{stmt.name}" directive invalid value')
    return size


_ZONE = "zone=NAME:SIZE"
directive(
    "limit_req_zone",
    HTTP,
    3,
    4,
    _limit_req_zone,
    multi=True,
    syntax=f"limit_req_zone KEY {_ZONE} rate=Nr/s|Nr/m [sync];",
    default_text="none",
    doc="A shared zone of SIZE bytes keeping a leaky bucket per value of KEY (variables: "
    "`$binary_remote_addr`, `$server_name`...; an empty value is not limited), drained at "
    "RATE requests a second (`r/s`) or a minute (`r/m`). Shared by every worker process, "
    "kept across reloads while its name, size and key stay. `sync` is accepted and "
    "changes nothing (nginx Plus: synchronised across a cluster).",
)
directive(
    "limit_req",
    HSL,
    1,
    3,
    _limit_req,
    multi=True,
    syntax="limit_req zone=NAME [burst=N] [nodelay | delay=N];",
    default_text="none",
    doc="Limit requests by the zone's key to its rate: up to N over it (`burst`) are "
    "delayed to the rate (the first `delay=N` of them answered at once; `nodelay`: all), "
    "more are refused with `limit_req_status`. Repeatable: every zone applies; a level "
    "with its own `limit_req` inherits none from the outer levels.",
)
directive(
    "limit_req_status",
    HSL,
    1,
    1,
    _status,
    default=503,
    syntax="limit_req_status CODE;",
    default_text="503",
    doc="The status a request refused by `limit_req` gets (400-599).",
)
directive(
    "limit_req_log_level",
    HSL,
    1,
    1,
    _log_level,
    default="error",
    syntax="limit_req_log_level info | notice | warn | error;",
    default_text="error",
    doc="The error log level of refusals; delays are logged one level lower.",
)
directive(
    "limit_req_dry_run",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="limit_req_dry_run on | off;",
    default_text="off",
    doc="Account and log (`, dry run`) as usual, but refuse and delay nothing.",
)
directive(
    "limit_conn_zone",
    HTTP,
    2,
    2,
    _limit_conn_zone,
    multi=True,
    syntax=f"limit_conn_zone KEY {_ZONE};",
    default_text="none",
    doc="A shared zone of SIZE bytes counting the requests being processed per value of "
    "KEY (an empty value is not limited). Shared by every worker process.",
)
directive(
    "limit_conn",
    HSL,
    2,
    2,
    _limit_conn,
    multi=True,
    syntax="limit_conn ZONE N;",
    default_text="none",
    doc="At most N requests of one key of ZONE processed at once (counted until the "
    "response is handed over or the client goes away); more get `limit_conn_status`. "
    "Repeatable, inherited as `limit_req`.",
)
directive(
    "limit_conn_status",
    HSL,
    1,
    1,
    _status,
    default=503,
    syntax="limit_conn_status CODE;",
    default_text="503",
    doc="The status a request refused by `limit_conn` gets (400-599).",
)
directive(
    "limit_conn_log_level",
    HSL,
    1,
    1,
    _log_level,
    default="error",
    syntax="limit_conn_log_level info | notice | warn | error;",
    default_text="error",
    doc="The error log level of `limit_conn` refusals.",
)
directive(
    "limit_conn_dry_run",
    HSL,
    1,
    1,
    _flag,
    default=False,
    syntax="limit_conn_dry_run on | off;",
    default_text="off",
    doc="Count and log (`, dry run,`) as usual, but refuse nothing.",
)
directive(
    "limit_rate",
    HSL,
    1,
    1,
    _rate_size,
    default=0,
    syntax="limit_rate RATE;",
    default_text="0",
    doc="Send response bodies at most RATE bytes a second (per request; 0: unlimited), "
    "files and bodies from memory alike, without holding the worker.",
)
directive(
    "limit_rate_after",
    HSL,
    1,
    1,
    _rate_size,
    default=0,
    syntax="limit_rate_after SIZE;",
    default_text="0",
    doc="The first SIZE bytes of a response go at full speed, then `limit_rate` applies.",
)


# --- the builders: zones once per load, then each location's phase objects -------------------


def _zones(s: dict[str, Any], loader: Any) -> dict[str, limits.ZoneSpec]:
    made = getattr(loader, "limit_zones", None)
    if made is not None:
        return made
    made = {}
    decls = [*s.get("limit_req_zone", ()), *s.get("limit_conn_zone", ())]
    decls.sort(key=lambda entry: (entry[1].file, entry[1].line))
    for decl, stmt in decls:
        old = made.get(decl.name)
        if old is not None:
            if old.kind != decl.kind:
                raise fail(
                    stmt, f'the shared memory zone "{decl.name}" is already declared for a '
                    "different use",
                )  # fmt: skip
            if old.size != decl.size:
                raise fail(
                    stmt, f'the size {decl.size} of shared memory zone "{decl.name}" '
                    f"conflicts with already declared size {old.size}",
                )  # fmt: skip
            raise fail(
                stmt, f'{decl.kind}_zone "{decl.name}" is already bound to key "{old.key_text}"'
            )
        made[decl.name] = limits.make_zone(
            decl.kind, decl.name, decl.size, decl.key_text, decl.rate
        )
    loader.limit_zones = made
    return made


def _value(s: dict[str, Any], name: str) -> Any:
    return s[name] if name in s else DIRECTIVES[name].default


def _spec(made: dict[str, limits.ZoneSpec], kind: str, name: str, stmt: Statement) -> Any:
    spec = made.get(name)
    if spec is None:
        raise fail(stmt, f'zero size shared memory zone "{name}"')
    if spec.kind != kind:
        raise fail(stmt, f'the shared memory zone "{name}" is already declared for a different use')
    return spec


def _build_req(s: dict[str, Any], loader: Any) -> limits.LimitReqPhase | None:
    made = _zones(s, loader)
    entries = s.get("limit_req")
    if not entries:
        return None
    built: list[limits.ReqLimit] = []
    for (name, burst, delay), stmt in entries:
        spec = _spec(made, "limit_req", name, stmt)
        if any(limit.spec is spec for limit in built):
            raise fail(stmt, '"limit_req" directive is duplicate')
        built.append(limits.ReqLimit(spec, burst, delay))
    return limits.LimitReqPhase(
        tuple(built),
        _value(s, "limit_req_status"),
        _value(s, "limit_req_log_level"),
        _value(s, "limit_req_dry_run"),
    )


def _build_conn(s: dict[str, Any], loader: Any) -> limits.LimitConnPhase | None:
    made = _zones(s, loader)
    entries = s.get("limit_conn")
    if not entries:
        return None
    built: list[limits.ConnLimit] = []
    for (name, n), stmt in entries:
        spec = _spec(made, "limit_conn", name, stmt)
        if any(limit.spec is spec for limit in built):
            raise fail(stmt, '"limit_conn" directive is duplicate')
        built.append(limits.ConnLimit(spec, n))
    return limits.LimitConnPhase(
        tuple(built),
        _value(s, "limit_conn_status"),
        _value(s, "limit_conn_log_level"),
        _value(s, "limit_conn_dry_run"),
    )


# nginx runs limit_req before limit_conn (a request limit_req refuses holds no connection)
phase_builder(PREACCESS, _build_req)
phase_builder(PREACCESS, _build_conn)
