"""CGI (RFC 3875): being written — see issue 4."""

from __future__ import annotations

from typing import Any


def match(ex: Any) -> Any:
    return None


def precheck(ex: Any) -> Any:
    return None


async def run(ex: Any) -> Any:
    raise NotImplementedError
