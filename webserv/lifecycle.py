"""The per-connection lifecycle record: accept → requests → close, with what the kernel knew.

At accept: the client's saved SYN (ISN, window, options, TTL) and TCP_INFO (handshake RTT,
MSS, window scales, time spent in the accept queue). Per request: five timestamps, status,
bytes. At close, read while the socket still exists: TCP_INFO again (bytes acked/received,
segments, retransmits, delivery rate...) and who closed first. Raw kernel bytes are kept and
decoded only when somebody looks (the status page, the lifecycle log), so a connection pays
two or three getsockopt calls and no decoding on its way.

Owns the recent-connections ring, the open-connections table and the JSON shapes of both.
Never touches the socket beyond getsockopt, never decides anything about HTTP.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from . import tcpinfo
from .logs import LogFile

MAX_REQUESTS_KEPT = 100  # per connection; a long keep-alive connection keeps its last ones


class Record:
    __slots__ = (
        "id",
        "remote_addr",
        "remote_port",
        "local_addr",
        "local_port",
        "family",
        "accepted",
        "t0",
        "syn",
        "info_accept",
        "info_close",
        "requests",
        "request_count",
        "closed",
        "duration",
        "closed_by",
        "close_reason",
        "peer_fin",
        "hot_close",
        "_syn_info",
        "data_in",
        "data_out",
    )

    def __init__(self, conn: Any, sock: Any) -> None:
        self.id = conn.id
        self.remote_addr = conn.remote_addr
        self.remote_port = conn.remote_port
        local = conn.local_address
        self.local_addr, self.local_port = local
        self.family = "ipv6" if ":" in self.remote_addr else "ipv4"
        self.accepted = self.t0 = time.time()
        # the SYN first: the kernel holds it only until this read
        self.syn = tcpinfo.read_saved_syn(sock)
        self.info_accept = tcpinfo.read_tcp_info(sock)
        self.info_close: bytes | None = None
        # (begin, headers, body, response, done, method, target, version, status, in, out)
        self.requests: deque[tuple[Any, ...]] = deque(maxlen=MAX_REQUESTS_KEPT)
        self.request_count = 0
        self.closed = 0.0
        self.duration = 0.0
        self.closed_by = ""
        self.close_reason = ""
        self.peer_fin = False
        self.hot_close: tuple[int | None, ...] | None = None
        self.data_in: int | None = None  # payload bytes: bytes_received/acked without FINs
        self.data_out: int | None = None
        self._syn_info: Any = False  # decoded on first use

    def request_done(self, ex: Any, now: float) -> None:
        """Keep what the timeline needs, not the exchange (it holds headers and more)."""
        headers = ex.t_headers or now
        self.requests.append(
            (
                ex.start,
                headers,
                ex.t_body or headers,
                ex.t_response or headers,
                now,
                ex.method,
                ex.raw_target,
                ex.version,
                ex.status,
                ex.request_length,
                ex.bytes_sent,
            )
        )
        self.request_count += 1

    def close(self, conn: Any, sock: Any) -> None:
        self.info_close = tcpinfo.read_tcp_info(sock) if sock is not None else None
        self.hot_close = tcpinfo.hot_fields(self.info_close)
        self.closed = time.time()
        self.duration = self.closed - self.t0
        self.closed_by = conn.closed_by
        self.close_reason = conn.close_reason
        raw = self.info_close
        # the kernel may hold the client's FIN that the loop has not reported yet
        self.peer_fin = conn.peer_eof or (raw is not None and raw[0] in _PEER_FIN_STATES)
        hot = self.hot_close
        self.data_in, self.data_out = _data_bytes(
            hot[6], hot[5], _BYTES_SENT(raw), _BYTES_RETRANS(raw), self.peer_fin
        )

    # --- reading it ---------------------------------------------------------------------

    def syn_info(self) -> dict[str, Any] | None:
        if self._syn_info is False:
            self._syn_info = tcpinfo.decode_syn(self.syn)
        return self._syn_info

    def handshake_rtt_us(self) -> int | None:
        return tcpinfo.hot_fields(self.info_accept)[0] if self.info_accept else None

    def accept_queue_ms(self) -> int | None:
        return tcpinfo.hot_fields(self.info_accept)[7] if self.info_accept else None

    def to_json(self, live: Any = None) -> dict[str, Any]:
        """Everything about the connection, decoded; `live` is the open connection, if any."""
        syn = self.syn_info()
        accept = tcpinfo.decode_tcp_info(self.info_accept) if self.info_accept else None
        info_now = self.info_close
        if live is not None:
            info_now = tcpinfo.read_tcp_info(live) or info_now
        close = tcpinfo.decode_tcp_info(info_now) if info_now else None
        t0 = self.t0
        requests = [
            {
                "method": method,
                "target": target.decode("latin-1"),
                "version": version,
                "status": status,
                "t_begin_ms": _ms(begin - t0),
                "t_headers_ms": _ms(headers - t0),
                "t_body_ms": _ms(body - t0),
                "t_response_ms": _ms(response - t0),
                "t_done_ms": _ms(done - t0),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
            }
            for begin, headers, body, response, done, method, target, version, status, bytes_in, bytes_out in self.requests
        ]
        return {
            "id": self.id,
            "open": live is not None,
            "family": self.family,
            "client": {"addr": self.remote_addr, "port": self.remote_port},
            "server": {"addr": self.local_addr, "port": self.local_port},
            "accepted_at": self.accepted,
            "closed_at": self.closed or None,
            "duration_ms": _ms(self.duration) if self.closed else None,
            "syn": _syn_json(syn),
            "handshake": _handshake_json(accept),
            "requests": requests,
            "request_count": self.request_count,
            "close": None
            if not self.closed
            else {
                "closed_by": self.closed_by,
                "reason": self.close_reason,
                "client_fin_received": self.peer_fin,
            },
            "tcp_info": close,
            "sequence": _sequence_json(syn, close, self.peer_fin),
        }


# states in which the peer's FIN has been received (CLOSE is ambiguous: reset, or LAST_ACK done)
_PEER_FIN_STATES = frozenset((6, 8, 9, 11))  # TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING
_BYTES_SENT = tcpinfo.field_reader("bytes_sent")
_BYTES_RETRANS = tcpinfo.field_reader("bytes_retrans")


def _data_bytes(
    received: int | None, acked: int | None, sent: int | None, retrans: int | None, fin: bool
) -> tuple[int | None, int | None]:
    """Payload bytes in and out. A FIN takes a sequence number, so the kernel counts the
    client's FIN in bytes_received and, once ACKed, the server's own FIN in bytes_acked;
    bytes_sent counts payload only (retransmissions too, hence minus bytes_retrans)."""
    data_in = None if received is None else received - (1 if fin and received else 0)
    data_out = acked
    if acked is not None and sent is not None and retrans is not None:
        data_out = min(acked, sent - retrans)
    return data_in, data_out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _syn_json(syn: dict[str, Any] | None) -> dict[str, Any] | None:
    if syn is None:
        return None
    out = dict(syn)
    out["options_text"] = tcpinfo.options_text(syn)
    return out


def _handshake_json(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "rtt_us": info["rtt"],
        "rttvar_us": info["rttvar"],
        "snd_mss": info["snd_mss"],
        "rcv_mss": info["rcv_mss"],
        "advmss": info["advmss"],
        "snd_wscale": info["snd_wscale"],
        "rcv_wscale": info["rcv_wscale"],
        "options": info["options_names"],
        "accept_queue_ms": info["last_ack_recv"],
        "state": info["state_name"],
    }


def _sequence_json(
    syn: dict[str, Any] | None, info: dict[str, Any] | None, fin: bool
) -> dict[str, Any]:
    """The seed diagram's numbers: the client's are absolute (from its SYN), the server's are
    relative to its own ISN y, which an unprivileged socket cannot read."""
    if info:
        fin = fin or info["state"] in _PEER_FIN_STATES  # an open, half-closed connection
        fields = ("bytes_received", "bytes_acked", "bytes_sent", "bytes_retrans")
        data_in, acked = _data_bytes(*(info[f] for f in fields), fin)
    else:
        data_in = acked = None
    out: dict[str, Any] = {
        "client_isn": syn["isn"] if syn else None,
        "client_data_bytes": data_in,
        "server_isn_visible": False,
        "server_data_bytes_acked": acked,
    }
    if syn and data_in is not None:
        isn = syn["isn"]
        out["client_first_seq"] = (isn + 1) % 2**32
        out["client_next_seq"] = (isn + 1 + data_in) % 2**32
    return out


class Lifecycle:
    """Open and recent connections of one worker, and where finished records go."""

    def __init__(self, history: int, stats: Any = None) -> None:
        self.open: dict[int, tuple[Record, Any]] = {}
        self.recent: deque[Record] = deque(maxlen=history)
        self.stats = stats
        self.started = time.time()
        self.accepted = 0

    def opened(self, conn: Any, sock: Any) -> Record:
        record = Record(conn, sock)
        self.open[conn.id] = (record, sock)
        self.accepted += 1
        if self.stats is not None:
            self.stats.connection_opened(record)
        return record

    def closed(self, conn: Any, sock: Any, log: LogFile | None) -> None:
        record = conn.record
        self.open.pop(conn.id, None)
        record.close(conn, sock)
        self.recent.append(record)
        if self.stats is not None:
            self.stats.connection_closed(record)
        if log is not None:
            log.write(json.dumps(record.to_json(), separators=(",", ":")) + "\n")

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        recent = list(self.recent)[-limit:] if limit else list(self.recent)
        return {
            "server": {"started_at": self.started, "now": time.time(), "accepted": self.accepted},
            "open": [record.to_json(live=sock) for record, sock in self.open.values()],
            "recent": [record.to_json() for record in reversed(recent)],
        }
