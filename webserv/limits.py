"""limit_req and limit_conn as preaccess phases (phases.py), and their /metrics counters.

nginx's ngx_http_limit_req_module and ngx_http_limit_conn_module, decision for decision:
- limit_req: the leaky bucket of ngx_http_limit_req_lookup/_account. Per key an `excess`
  in milli-requests and the time of the `last` request; a request adds 1000 and the time
  since `last` drains `rate` a second. Over `burst`: refused with limit_req_status (503);
  over `delay` (0 unless `delay=N`; `nodelay`: never): delayed by (excess - delay) / rate,
  asynchronously (the phase answers an awaitable). Several limits on a location are all
  checked, the last one accounted first, the others after it passed; the longest delay wins.
- limit_conn: requests being processed per key, counted when the phase passes and released
  when the exchange ends (Exchange.cleanup: the connection calls it when the answer is
  handed over, and when the client goes away before that).
Both apply once per request (an internal redirect does not count it again), an empty key
is not limited, and each logs its refusals with nginx's wording at its log level.

The state lives in zones.py's shared tables; this module compiles the keys, decides,
logs and renders the counters. Never touches sockets; never parses config (the
directives_limits.py section does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily

from . import variables, zones
from .http.errors import HttpError
from .zones import AGAIN, BUSY, FULL, PASSED, RESULTS, Zone

# nginx: a request is delayed at one level below the one refusals are logged at
DELAY_LEVEL = {"info": "debug", "notice": "info", "warn": "notice", "error": "warn"}
NODELAY = 10**18  # milli-requests: never delayed (nginx: NGX_MAX_INT_T_VALUE / 1000)
_ms = time.monotonic  # CLOCK_MONOTONIC: one clock for every process of the server


def compile_key(text: str) -> Callable[[Any], bytes]:
    """A zone's KEY template as a function of the exchange, returning the key's bytes."""
    if text == "$binary_remote_addr":
        return _binary_remote_addr
    render = variables.compile_template(text, escape="none_raw")
    return lambda ex: render(ex).encode("utf-8", "surrogateescape")


def _binary_remote_addr(ex: Any) -> bytes:
    return variables.binary_addr(ex.conn.remote_addr)


@dataclass(slots=True, frozen=True, eq=False)
class ZoneSpec:
    """`limit_req_zone` / `limit_conn_zone`: one declared zone, its shared table made."""

    kind: str
    name: str
    size: int
    key_text: str
    key: Callable[[Any], bytes]
    rate: int  # limit_req: milli-requests a second (nginx's ctx->rate); 0 for limit_conn
    zone: Zone


@dataclass(slots=True, frozen=True)
class ReqLimit:
    spec: ZoneSpec
    burst: int  # milli-requests
    delay: int  # milli-requests


@dataclass(slots=True, frozen=True)
class ConnLimit:
    spec: ZoneSpec
    conn: int


class LimitState:
    """Exchange.cleanup for a limited exchange: what limit_req and limit_conn decided
    ($limit_req_status, $limit_conn_status) and the counts to give back at its end."""

    __slots__ = ("req_status", "conn_status", "held")

    def __init__(self) -> None:
        self.req_status = ""
        self.conn_status = ""
        self.held: list[tuple[Zone, bytes]] = []

    def __call__(self) -> None:
        held = self.held
        while held:
            zone, key = held.pop()
            zone.conn_release(key)


def _state(ex: Any) -> LimitState:
    state = ex.cleanup
    if state is None:
        state = ex.cleanup = LimitState()
    return state


def _context(ex: Any) -> str:
    server = ex.server.primary_name if ex.server is not None else ""
    return (
        f', client: {ex.conn.remote_addr}, server: {server}, request: "{ex.request_line}"'
        f', host: "{ex.host}"'
    )


def _excess(value: int) -> str:
    return f"{value // 1000}.{value % 1000:03d}"


class LimitReqPhase:
    """The limit_req lines of one location (inherited as nginx's: the innermost level that
    has any)."""

    __slots__ = ("limits", "status", "level", "delay_level", "dry_run")

    def __init__(self, limits: tuple[ReqLimit, ...], status: int, level: str, dry: bool):
        self.limits = limits
        self.status = status
        self.level = level
        self.delay_level = DELAY_LEVEL[level]
        self.dry_run = dry

    def check(self, ex: Any) -> None:
        return None  # decided once, in run: a lookup is an accounting

    def run(self, ex: Any) -> Any:
        state = ex.cleanup
        if state is not None and state.req_status:
            return None  # once per request, as nginx's r->main->limit_req_status
        now = int(_ms() * 1000)
        limits = self.limits
        last = len(limits) - 1
        dry = self.dry_run
        rc = -1
        excess = 0
        looked: list[tuple[ReqLimit, bytes]] = []
        limit = limits[last]
        for i, limit in enumerate(limits):
            spec = limit.spec
            key = spec.key(ex)
            if not key:
                continue
            if len(key) > 65535:
                ex.location.error_log.error(
                    f'the value of the "{spec.key_text}" key is more than 65535 bytes'
                    + _context(ex),
                    ex.conn.id,
                )
                continue
            rc, excess = spec.zone.req_lookup(
                key, now, spec.rate, limit.burst, limit.delay, i == last, dry
            )
            if rc != AGAIN:
                break
            looked.append((limit, key))
        if rc < 0:
            return None  # no key: not limited
        state = _state(ex)
        if rc == BUSY:
            if ex.location.error_log.enabled(self.level):
                ex.location.error_log.log(
                    self.level,
                    f"limiting requests{', dry run' if dry else ''}, excess: {_excess(excess)}"
                    f' by zone "{limit.spec.name}"' + _context(ex),
                    ex.conn.id,
                )
            if dry:
                state.req_status = "REJECTED_DRY_RUN"
                return None
            state.req_status = "REJECTED"
            raise HttpError(self.status)
        if rc == AGAIN:
            excess = 0
        delay = self._account(looked, now, excess, limit)
        if delay is None:
            state.req_status = "PASSED"
            return None
        ms, excess, limit = delay
        if ex.location.error_log.enabled(self.delay_level):
            ex.location.error_log.log(
                self.delay_level,
                f"delaying request{', dry run' if dry else ''}, excess: {_excess(excess)}, "
                f'by zone "{limit.spec.name}"' + _context(ex),
                ex.conn.id,
            )
        if dry:
            state.req_status = "DELAYED_DRY_RUN"
            return None
        state.req_status = "DELAYED"
        return asyncio.sleep(ms / 1000)  # answers None: the next phase runs after it

    def _account(
        self, looked: list[tuple[ReqLimit, bytes]], now: int, excess: int, limit: ReqLimit
    ) -> tuple[int, int, ReqLimit] | None:
        """ngx_http_limit_req_account: store the limits only checked so far, and the
        longest delay any of them asks for (ms, its excess, its limit), or None."""
        best = None
        if excess > limit.delay:
            best = ((excess - limit.delay) * 1000 // limit.spec.rate, excess, limit)
        for other, key in reversed(looked):
            spec = other.spec
            e = spec.zone.req_account(key, now, spec.rate, other.delay, self.dry_run)
            if e <= other.delay:
                continue
            ms = (e - other.delay) * 1000 // spec.rate
            if best is None or ms > best[0]:
                best = (ms, e, other)
        return best if best is not None and best[0] > 0 else None


class LimitConnPhase:
    """The limit_conn lines of one location."""

    __slots__ = ("limits", "status", "level", "dry_run")

    def __init__(self, limits: tuple[ConnLimit, ...], status: int, level: str, dry: bool):
        self.limits = limits
        self.status = status
        self.level = level
        self.dry_run = dry

    def check(self, ex: Any) -> None:
        return None

    def run(self, ex: Any) -> None:
        state = _state(ex)
        if state.conn_status:
            return None  # once per request
        dry = self.dry_run
        for limit in self.limits:
            spec = limit.spec
            key = spec.key(ex)
            if not key:
                continue
            if len(key) > 255:
                ex.location.error_log.error(
                    f'the value of the "{spec.key_text}" key is more than 255 bytes' + _context(ex),
                    ex.conn.id,
                )
                continue
            result = spec.zone.conn_acquire(key, limit.conn, dry)
            if result == PASSED:
                state.held.append((spec.zone, key))
                continue
            if result != FULL and ex.location.error_log.enabled(self.level):
                ex.location.error_log.log(
                    self.level,
                    f"limiting connections{', dry run,' if dry else ''} by zone "
                    f'"{spec.name}"' + _context(ex),
                    ex.conn.id,
                )
            elif result == FULL:
                ex.location.error_log.log("alert", f'could not allocate node in zone "{spec.name}"')
            state()  # nginx's cleanup_all: what this request holds goes back
            if dry:
                state.conn_status = "REJECTED_DRY_RUN"
                return None
            state.conn_status = "REJECTED"
            raise HttpError(self.status)
        state.conn_status = "PASSED"
        return None


# --- /metrics ---------------------------------------------------------------------------

REQ_RESULTS = RESULTS[:5]
CONN_RESULTS = ("passed", "rejected", "rejected_dry_run", "full")


def config_zones(config: Any) -> list[ZoneSpec]:
    """The zones a configuration's locations use, once each, by kind and name."""
    from .cycle import all_locations

    found: dict[tuple[str, str], ZoneSpec] = {}
    for loc in all_locations(config):
        for phase in loc.phases or ():
            if isinstance(phase, LimitReqPhase | LimitConnPhase):
                for limit in phase.limits:
                    found.setdefault((limit.spec.kind, limit.spec.name), limit.spec)
    return [found[k] for k in sorted(found)]


class LimitsCollector:
    """webserv_limit_req_total{zone,result} and webserv_limit_conn_total{zone,result}: read
    from the shared zones, so every worker answers with the whole server's counts."""

    def __init__(self, specs: list[ZoneSpec]) -> None:
        self.specs = specs

    def collect(self) -> Iterator[Any]:
        req = CounterMetricFamily(
            "webserv_limit_req", "Requests limit_req decided on, by zone and result",
            labels=["zone", "result"],
        )  # fmt: skip
        conn = CounterMetricFamily(
            "webserv_limit_conn", "Requests limit_conn decided on, by zone and result",
            labels=["zone", "result"],
        )  # fmt: skip
        for spec in self.specs:
            counts = spec.zone.counters()
            family, results = (
                (req, REQ_RESULTS) if spec.kind == "limit_req" else (conn, CONN_RESULTS)
            )
            for result in results:
                family.add_metric([spec.name, result], counts[result])
        yield req
        yield conn


def add_metrics(registry: Any, config: Any) -> None:
    """Register the zones' counters in a /metrics registry (nothing without zones)."""
    specs = config_zones(config)
    if specs:
        registry.register(LimitsCollector(specs))


def make_zone(kind: str, name: str, size: int, key_text: str, rate: int) -> ZoneSpec:
    return ZoneSpec(
        kind, name, size, key_text, compile_key(key_text), rate,
        zones.zone(kind, name, size, key_text),
    )  # fmt: skip
