"""Time strings for headers and logs, computed at most once per second.

Formatting a date costs microseconds; a server answering 60k requests a second asks for the
same string 60k times, so each format is cached for the current second.
"""

from __future__ import annotations

import time
from email.utils import formatdate

_cache_second = -1
_http_date = ""
_http_date_bytes = b""
_time_local = ""
_iso8601 = ""


def _refresh(second: int) -> None:
    global _cache_second, _http_date, _http_date_bytes, _time_local, _iso8601
    _cache_second = second
    _http_date = formatdate(second, usegmt=True)
    _http_date_bytes = _http_date.encode("ascii")
    local = time.localtime(second)
    _time_local = time.strftime("%d/%b/%Y:%H:%M:%S %z", local)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", local)
    _iso8601 = iso[:-2] + ":" + iso[-2:]


def http_date_bytes_now() -> bytes:
    second = int(time.time())
    if second != _cache_second:
        _refresh(second)
    return _http_date_bytes


def http_date_now() -> str:
    second = int(time.time())
    if second != _cache_second:
        _refresh(second)
    return _http_date


def time_local_now() -> str:
    second = int(time.time())
    if second != _cache_second:
        _refresh(second)
    return _time_local


def iso8601_now() -> str:
    second = int(time.time())
    if second != _cache_second:
        _refresh(second)
    return _iso8601


_other_second = -1
_other_local = ""
_other_iso = ""


def _at(timestamp: float) -> tuple[str, str]:
    """time_local and iso8601 of another second than the current one (a line written late)."""
    global _other_second, _other_local, _other_iso
    second = int(timestamp)
    if second != _other_second:
        local = time.localtime(second)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", local)
        _other_second = second
        _other_local = time.strftime("%d/%b/%Y:%H:%M:%S %z", local)
        _other_iso = iso[:-2] + ":" + iso[-2:]
    return _other_local, _other_iso


def time_local_at(timestamp: float) -> str:
    """$time_local of a moment (0: now); the current second costs nothing."""
    if not timestamp:
        return time_local_now()
    if int(timestamp) == _cache_second:
        return _time_local  # (the hot case: a line of this second; no second clock read)
    return _at(timestamp)[0]


def iso8601_at(timestamp: float) -> str:
    if not timestamp:
        return iso8601_now()
    if int(timestamp) == _cache_second:
        return _iso8601
    return _at(timestamp)[1]


def http_date(timestamp: float) -> str:
    """RFC 9110 IMF-fixdate of any moment (Last-Modified)."""
    return formatdate(int(timestamp), usegmt=True)


def parse_http_date(text: str) -> float | None:
    """The three date forms RFC 9110 §5.6.7 asks a recipient to accept, or None."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
