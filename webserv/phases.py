"""nginx's request phases before the content handler: rewrite, limits, access, try_files.

A location's phases are built once, at config load, into `Location.phases`: load.py calls
every builder registered with `config.table.phase_builder(order, fn)` (a directives_*.py
section registers its own) and keeps what they return, sorted by order: a tuple of phase
objects in nginx's order (rewrite → preaccess: limit_req/limit_conn →
access: allow/deny, auth_basic → precontent: try_files), or None when the location has
none — then the hot path pays one `is None` and nothing else.

A phase object has two methods:
- `check(ex) -> HttpError | None`: a refusal decided from the header section alone, made
  before any body byte is read (403 from `deny` must not read an upload): called by
  dispatch.check_request when a body follows, and again just before `run`. Cheap and
  synchronous; a phase with nothing to say returns None.
- `run(ex)`: called when the request is answered, returns one of
  - None: go on to the next phase;
  - a Response: answer with it (nothing after runs);
  - REROUTE: the phase has changed `ex.path`/`ex.query`/`ex.location` (rewrite ... last,
    try_files' last argument) — the new location's phases run from the start, counted by
    dispatch's internal-redirect counter;
  - an awaitable of any of these, for a phase that must wait (a bcrypt check in a thread,
    limit_req's delay);
  or raises HttpError (401, 403, 503...).

This module owns the loop over phases and nothing else: it never parses config, never
touches sockets, never knows what a phase does.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .http.errors import HttpError
from .http.request import Exchange
from .http.response import Response

REROUTE = "reroute"  # a phase's answer: ex.location changed, start over


def check(ex: Exchange) -> HttpError | None:
    """The phases' refusals that need no waiting, before the body is read."""
    for phase in ex.location.phases:
        err = phase.check(ex)
        if err is not None:
            return err
    return None


def run(
    ex: Exchange, content: Callable[[Exchange], Response | Awaitable[Response]], reroute: Any
) -> Response | Awaitable[Response]:
    """Run ex.location's phases, then CONTENT. REROUTE calls `reroute(ex)` (dispatch's
    redirect counter) and starts over with the new location's phases."""
    while True:
        phases = ex.location.phases
        if phases is None:
            return content(ex)
        for i, phase in enumerate(phases):
            err = phase.check(ex)
            if err is not None:
                raise err
            result = phase.run(ex)
            if result is None:
                continue
            if result is REROUTE:
                reroute(ex)
                break
            if isinstance(result, Response):
                return result
            if inspect.isawaitable(result):
                return _finish(ex, result, phases, i, content, reroute)
            raise TypeError(f"phase {phase!r} answered {result!r}")
        else:
            return content(ex)


async def _finish(
    ex: Exchange,
    pending: Awaitable[Any],
    phases: tuple[Any, ...],
    index: int,
    content: Callable[[Exchange], Response | Awaitable[Response]],
    reroute: Any,
) -> Response:
    """The rest of the phases once one had to wait: the same rules, awaited."""
    while True:
        result = await pending
        while result is None and index + 1 < len(phases):
            index += 1
            err = phases[index].check(ex)
            if err is not None:
                raise err
            result = phases[index].run(ex)
        if result is None:
            answer = content(ex)
        elif result is REROUTE:
            reroute(ex)
            answer = run(ex, content, reroute)
        elif isinstance(result, Response):
            return result
        elif inspect.isawaitable(result):
            pending = result
            continue
        else:
            raise TypeError(f"phase {phases[index]!r} answered {result!r}")
        return answer if isinstance(answer, Response) else await answer
