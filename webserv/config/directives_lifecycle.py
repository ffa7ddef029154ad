"""Directive rows for the instrumented lifecycle, the status page and metrics. Only parses
and registers; lifecycle.py, capture.py and stats.py act on the values.
"""

from __future__ import annotations

from .lexer import Statement
from .table import HS, LOCATION, _flag, _path, _positive_int, directive, fail
from .values import parse_flag


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


def _capture(stmt: Statement, args: list[str]) -> bool | str:
    if args[0] == "userspace":
        return "userspace"
    value = parse_flag(args[0])
    if value is None:
        raise fail(
            stmt,
            f'invalid value "{args[0]}" in "{stmt.name}" directive, '
            'it must be "on", "off" or "userspace"',
        )
    return value


directive(
    "lifecycle_capture",
    HS,
    1,
    1,
    _capture,
    default=False,
    syntax="lifecycle_capture on | off | userspace;",
    default_text="off",
    doc="Capture the handshake and close segments of the server's ports and add them to "
    "each connection's record as `wire`: the server's ISN, every segment's sequence and "
    "acknowledgement numbers and kernel receive time. `on`: an eBPF program on an "
    "`AF_PACKET` tap keeps each connection's segments in a kernel map that the worker reads "
    "once, after the close (Linux 5.12+, `CAP_BPF` or `CAP_SYS_ADMIN`); where that is refused, "
    "as `userspace`: a classic BPF filter passes SYN, FIN, RST and zero-payload ACKs (never "
    "data) to each worker, which matches them. Needs `CAP_NET_RAW`; without it one warning and "
    "the lifecycle works without it.",
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
