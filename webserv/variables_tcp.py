"""The TCP lifecycle's variables ($tcpinfo_*, $syn_*, $handshake_rtt, ...): kernel numbers
in log lines, for variables.py's templates.

$tcpinfo_NAME reads TCP_INFO when the line is written (once per line, however many fields
it names), as nginx's $tcpinfo_rtt does; the others come from the connection's record.
The field's reader is named in the compiled template itself (`_tcpi_FIELD`), so nothing
here grows as templates are compiled (at every load and reload). Defines names and the
functions their expressions call; never compiles a template (variables.py does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import tcpinfo

# name -> (expression on x, safe), as variables._VARIABLES
VARIABLES: dict[str, tuple[str, bool]] = {
    "handshake_rtt": ("_record(x, 'handshake_rtt')", True),
    "accept_queue_ms": ("_record(x, 'accept_queue_ms')", True),
    "syn_isn": ("_record(x, 'isn')", True),
    "syn_ttl": ("_record(x, 'ttl')", True),
    "syn_options": ("_record(x, 'options')", False),
    "ja4t": ("_record(x, 'ja4t')", True),
    "syn_signature": ("_record(x, 'signature')", True),
    "syn_os": ("_record(x, 'os')", False),  # "macOS/iOS": no space, but say so anyway
    "syn_reason": ("_record(x, 'syn_reason')", True),  # why no SYN: "syncookie", ...
    "closed_by": ("(x.conn.closed_by or '-')", True),
    # lifecycle_request_tcpinfo: this request's own TCP numbers, "-" when not sampled
    "request_tcp_rtt": ("_request_tcp(x, 'rtt_us')", True),
    "request_tcp_retransmits": ("_request_tcp(x, 'retransmits')", True),
    "request_tcp_bytes_acked": ("_request_tcp(x, 'bytes_acked')", True),
    "request_tcp_bytes_received": ("_request_tcp(x, 'bytes_received')", True),
    "request_tcp_delivery_rate": ("_request_tcp(x, 'delivery_rate')", True),
}

_TCPINFO_FIELD = re.compile(r"\b_tcpi_([A-Za-z0-9_]+)\b")


def tcpinfo_variable(field: str) -> tuple[str, bool] | None:
    """$tcpinfo_FIELD (the `tcpinfo_` prefix's resolver), None for a field TCP_INFO lacks."""
    if tcpinfo.field_reader(field) is None:
        return None
    return (f"_tcpi(x, _tcpi_{field})", True)


def _tcpi(x: Any, reader: Callable[[bytes | None], int | None]) -> Any:
    raw = x.tcp_sample
    if raw is None:
        conn = x.conn
        sock = conn.raw if conn.closed else conn.raw_socket()  # (never one made after close)
        raw = x.tcp_sample = tcpinfo.read_tcp_info(sock) if sock is not None else None
    value = reader(raw)
    return "-" if value is None else value


def _record(x: Any, what: str) -> Any:
    record = x.conn.record
    if record is None:
        return "-"
    if what == "handshake_rtt":
        value = record.handshake_rtt_us()
    elif what == "accept_queue_ms":
        value = record.accept_queue_ms()
    elif what == "syn_reason":
        value = record.syn_reason()  # None ("-") when the SYN is there
    else:
        syn = record.syn_info()
        if syn is None:
            return "-"
        if what in _SYN_PRINTS:  # (decoded once per record, per shape of SYN: synshape.py)
            value = record.syn_prints()[_SYN_PRINTS[what]]
            if what == "options":
                value = value.replace(" ", "_") or "-"
        else:
            value = {"isn": syn["isn"], "ttl": syn["ttl"]}.get(what)
    return "-" if value is None else value


# where Record.syn_prints() has each: (options_text, ja4t, signature, os_family)
_SYN_PRINTS = {"options": 0, "ja4t": 1, "signature": 2, "os": 3}


def _request_tcp(x: Any, key: str) -> Any:
    """One of this request's TCP numbers (lifecycle_request_tcpinfo), "-" if not sampled."""
    if x.tcp_start is None:
        return "-"
    value = tcpinfo.request_deltas(x.tcp_start, getattr(x, "tcp_end", None))[key]
    return "-" if value is None else int(value)


# what the expressions above call, for a compiled template's namespace
NAMESPACE: dict[str, Any] = {"_tcpi": _tcpi, "_record": _record, "_request_tcp": _request_tcp}


def field_readers(source: str) -> dict[str, Any]:
    """The `_tcpi_FIELD` readers a template's compiled SOURCE names."""
    return {f"_tcpi_{name}": tcpinfo.field_reader(name) for name in _TCPINFO_FIELD.findall(source)}
