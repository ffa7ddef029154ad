"""nginx's access phase: allow/deny rules by client address, auth_basic, and `satisfy`.

`Rules` is one level's allow/deny list compiled at load into integers and masks, one tuple
per address family as nginx keeps them (rules, rules6, rules_un): an address is checked
against its own family's rules in order, the first match decides; no match lets it through.
An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is checked against the IPv4 rules when there
are any, as nginx does. `AccessPhase` is the phases.py object of a location that has rules
or auth_basic (a location with neither has no phase: it pays nothing), combining them as
`satisfy all` (both must let the request through; the rules are asked first) or
`satisfy any` (either is enough).

The client address is read in one place, `client(ex)`: `ex.conn.remote_addr` (the address
real_ip or the PROXY protocol may have replaced). Never parses config, never touches sockets.
"""

from __future__ import annotations

import asyncio
import socket
from functools import lru_cache
from typing import Any

from .auth_basic import PENDING, AuthBasic
from .http.errors import HttpError

V4, V6, UNIX = 4, 6, 0
MAPPED_PREFIX = 0xFFFF  # ::ffff:0:0/96, shifted right by 32


def client(ex) -> str:
    """The client address access control decides on (the one place it is read)."""
    return ex.conn.remote_addr


@lru_cache(maxsize=4096)
def address_key(text: str) -> tuple[int, int]:
    """(family, address as an int) of a client address; (UNIX, 0) for anything that is not
    an IP address (a unix-domain peer). Memoised: a busy site sees the same clients."""
    try:
        return V4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text.partition("%")[0])
    except OSError:
        return UNIX, 0
    return V6, int.from_bytes(packed, "big")


class Rules:
    """One level's allow/deny rules: (network, mask, allow) tuples per family."""

    __slots__ = ("v4", "v6", "unix")

    def __init__(
        self,
        v4: tuple[tuple[int, int, bool], ...],
        v6: tuple[tuple[int, int, bool], ...],
        unix: tuple[bool, ...],
    ) -> None:
        self.v4, self.v6, self.unix = v4, v6, unix

    def decide(self, address: str) -> bool | None:
        """True: allowed by a rule, False: denied by one, None: no rule matched."""
        family, value = address_key(address)
        if family == V6:
            if self.v4 and value >> 32 == MAPPED_PREFIX:
                family, value = V4, value & 0xFFFFFFFF
            else:
                for network, mask, allow in self.v6:
                    if value & mask == network:
                        return allow
                return None
        if family == V4:
            for network, mask, allow in self.v4:
                if value & mask == network:
                    return allow
            return None
        return self.unix[0] if self.unix else None


FORBIDDEN = "access forbidden by rule"


class AccessPhase:
    """The ACCESS phase of one location (phases.py): rules, auth_basic, satisfy, and
    auth_delay (a 401 answered that many seconds late, as nginx's; a request with a body
    is answered at once, before any of it is read, as every refusal of this phase)."""

    __slots__ = ("rules", "auth", "any", "last", "delay")

    def __init__(
        self, rules: Rules | None, auth: AuthBasic | None, satisfy_any: bool, delay: float = 0.0
    ) -> None:
        self.rules, self.auth, self.any = rules, auth, satisfy_any
        self.delay = delay if auth is not None else 0.0
        # (exchange, answer) of the last check(): phases.run calls run() right after it, in
        # the same tick, and need not decide twice (a different exchange decides afresh)
        self.last: tuple[Any, Any] | None = None

    def decide(self, ex) -> HttpError | str | None:
        """None: let it through; an HttpError; PENDING: auth_basic has a slow hash to check."""
        verdict = self.rules.decide(client(ex)) if self.rules is not None else None
        if verdict is False and not self.any:
            return HttpError(403, FORBIDDEN)
        if verdict is True and self.any:
            return None
        if self.auth is None:
            return HttpError(403, FORBIDDEN) if verdict is False else None
        # satisfy any with a deny: auth_basic's answer stands (its 401 wins over the 403)
        return self.auth.quick(ex)

    def check(self, ex) -> HttpError | None:
        answer = self.decide(ex)
        self.last = (ex, answer)
        if answer is PENDING or (self.delay and _unauthorized(answer) and not _has_body(ex)):
            return None  # decided in run(): a slow hash, or a 401 that auth_delay holds back
        return answer  # type: ignore[return-value]

    def run(self, ex):
        last = self.last
        self.last = None
        answer = last[1] if last is not None and last[0] is ex else self.decide(ex)
        if answer is None:
            return None
        if answer is PENDING:
            return self.verify_later(ex) if self.delay else self.auth.verify(ex)  # type: ignore[union-attr]
        if self.delay and _unauthorized(answer):
            return self.refuse_later(answer)
        raise answer  # type: ignore[misc]

    async def verify_later(self, ex) -> None:
        try:
            await self.auth.verify(ex)  # type: ignore[union-attr]
        except HttpError as err:
            if _unauthorized(err):
                await asyncio.sleep(self.delay)
            raise

    async def refuse_later(self, answer: HttpError) -> None:
        await asyncio.sleep(self.delay)
        raise answer


def _unauthorized(answer: Any) -> bool:
    return type(answer) is HttpError and answer.status == 401


def _has_body(ex) -> bool:
    headers = ex.headers
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() != b"0")
