"""The per-connection lifecycle record: accept → requests → close, with what the kernel knew.

At accept: the client's saved SYN (ISN, window, options, TTL) and TCP_INFO (handshake RTT,
MSS, window scales, time spent in the accept queue). Per request: five timestamps, status,
bytes — for every request up to SAMPLE_AFTER, then for every SAMPLE_EVERY-th and the last
(the counts and byte totals stay exact; the JSON says `requests_sampled`). At close, read while the socket still exists: TCP_INFO again (bytes acked/received,
segments, retransmits, delivery rate...) and who closed first. Raw kernel bytes are kept and
decoded only when somebody looks (the status page, the lifecycle log), so a connection pays
two or three getsockopt calls and no decoding on its way.

Owns the recent-connections ring, the open-connections table and the JSON shapes of both.
Never touches the socket beyond getsockopt, never decides anything about HTTP.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from typing import Any

import orjson

from . import savedsyn, synshape, tcpinfo
from .logs import LogFile

# per connection: a long keep-alive connection keeps its last ones (and counts them all)
MAX_REQUESTS_KEPT = 32
# the timeline of a long keep-alive connection is sampled: every request up to SAMPLE_AFTER,
# then every SAMPLE_EVERY-th, and always the last. Packing a request's entry was 7% of the
# instructions of a keep-alive request (callgrind); counts and bytes still see every one.
SAMPLE_AFTER = 32
SAMPLE_EVERY = 16


class Record:
    """One connection's kernel numbers and timeline. Creating and closing it is on the hot
    path (every connection pays it), so both only store raw bytes and references: decoding,
    derived numbers and JSON wait until somebody reads them."""

    __slots__ = (
        "id", "remote_addr", "remote_port", "listen_port", "accepted", "syn", "info_accept",
        "info_close", "requests", "request_count", "closed", "closed_by", "close_reason",
        "peer_eof", "reset_sent", "_syn_info", "bytes_out", "kept", "last", "tcp",
        "syn_missing", "tls", "wire", "proxy", "_syn_prints",
    )  # fmt: skip
    # wire: capture_match.Wire with `lifecycle_capture on;`, set only then (capture.attach)
    # proxy: the PROXY header's JSON (proxy_connection.py), set only on such a listener

    def __init__(self, conn: Any, sock: Any, now: float) -> None:
        self.id = conn.id
        self.remote_addr = conn.remote_addr
        self.remote_port = conn.remote_port
        self.listen_port = conn.listener.address.port
        self.accepted = now
        # the SYN first: the kernel holds it only until this read
        syn = self.syn = savedsyn.read_saved_syn(sock)
        if syn is None:  # why not, while the socket is here (syn_reason); set only then
            self.syn_missing = savedsyn.missing_syn(sock)
        self.info_accept = tcpinfo.read_tcp_info(sock)
        self.info_close: bytes | None = None
        # the last MAX_REQUESTS_KEPT requests kept (see _ENTRY), a ring once it is full
        self.requests: list[bytes] = []
        self.request_count = 0  # every request answered
        self.kept = 0  # entries ever put in the ring (request_count, unless sampled)
        self.last: Any = None  # a skipped request's exchange, kept if it stays the last
        self.closed = 0.0
        self.closed_by = ""
        self.close_reason = ""
        self.peer_eof = False
        self.reset_sent = False
        self.bytes_out = 0  # what the server wrote, by its own count
        self._syn_info: Any = False  # decoded on first use
        # lifecycle_request_tcpinfo: (TCP_INFO at first byte, once answered) or None for each
        # entry of `requests`, made with the first request that has them
        self.tcp: list[tuple[bytes | None, bytes | None] | None] | None = None
        self.tls: dict[str, Any] | None = None  # `listen ... ssl`: the handshake (tls_connection)

    def request_done(self, ex: Any) -> None:
        """Count a request; keep its timeline entry unless this one is sampled out."""
        count = self.request_count = self.request_count + 1
        self.bytes_out += ex.bytes_sent
        if count > SAMPLE_AFTER and count % SAMPLE_EVERY and ex.tcp_start is None:
            self.last = ex  # (see flush_last)
            return
        self.last = None
        self.keep(ex, count)

    def keep(self, ex: Any, number: int) -> None:
        """Keep what the timeline needs as one bytes object: numbers packed, then the method
        and the target. Bytes are invisible to the cyclic GC, where kept exchanges (or
        tuples of them) made every full collection longer (measured)."""
        requests = self.requests
        entry = _entry(ex, number)
        tcp = self.tcp
        if tcp is None and ex.tcp_start is not None:
            tcp = self.tcp = [None] * len(requests)
        pair = None if ex.tcp_start is None else (ex.tcp_start, getattr(ex, "tcp_end", None))
        if len(requests) < MAX_REQUESTS_KEPT:
            requests.append(entry)
            if tcp is not None:
                tcp.append(pair)
        else:
            requests[self.kept % MAX_REQUESTS_KEPT] = entry
            if tcp is not None:
                tcp[self.kept % MAX_REQUESTS_KEPT] = pair
        self.kept += 1

    def flush_last(self) -> None:
        """The connection has closed and its requests are counted: a last request that was
        sampled out is kept after all (it ends the timeline). This also drops the record's
        reference to the exchange (which refers to its connection, which refers to this)."""
        ex = self.last
        if ex is not None:
            self.last = None
            self.keep(ex, self.request_count)

    def kept_requests(self) -> list[bytes]:
        """The kept requests in the order they were answered (with the pending last one)."""
        out = self._in_order(self.requests)
        if self.last is not None:
            out.append(_entry(self.last, self.request_count))
        return out

    def kept_tcp(self) -> list[tuple[bytes | None, bytes | None] | None]:
        """kept_requests' TCP_INFO pairs (lifecycle_request_tcpinfo), in the same order."""
        out = self._in_order(self.tcp) if self.tcp is not None else [None] * len(self.requests)
        if self.last is not None:
            last = self.last
            pair = (
                None if last.tcp_start is None else (last.tcp_start, getattr(last, "tcp_end", None))
            )
            out.append(pair)
        return out

    def _in_order(self, ring: list[Any]) -> list[Any]:
        if len(ring) < MAX_REQUESTS_KEPT:
            return list(ring)
        turn = self.kept % MAX_REQUESTS_KEPT
        return ring[turn:] + ring[:turn]

    def close(self, conn: Any, sock: Any, now: float) -> None:
        self.info_close = tcpinfo.read_tcp_info(sock) if sock is not None else None
        self.closed = now
        self.closed_by = conn.closed_by
        self.close_reason = conn.close_reason
        self.peer_eof = conn.peer_eof
        self.reset_sent = conn.aborted

    @property
    def peer_fin(self) -> bool:
        """The client's FIN arrived (the loop may not have reported one the kernel holds)."""
        raw = self.info_close
        return self.peer_eof or (raw is not None and raw[0] in _PEER_FIN_STATES)

    def data_bytes(self) -> tuple[int | None, int | None, int | None]:
        """(payload bytes in, payload bytes out, segments retransmitted) at close, from
        TCP_INFO, with the FINs taken out of the kernel's byte counts."""
        raw = self.info_close
        if raw is None:
            return None, None, None
        state, retrans, acked, received, sent, resent = tcpinfo.close_fields(raw)
        fin = self.peer_eof or state in _PEER_FIN_STATES
        data_in, data_out = _data_bytes(received, acked, sent, resent, fin)
        return data_in, data_out, retrans

    # --- reading it ---------------------------------------------------------------------

    def _requests_json(self, t0: float) -> list[dict[str, Any]]:
        out = [_request_json(entry, t0) for entry in self.kept_requests()]
        if self.tcp is not None or (self.last is not None and self.last.tcp_start is not None):
            for request, pair in zip(out, self.kept_tcp(), strict=True):
                if pair is not None:
                    request["tcp"] = tcpinfo.request_deltas(*pair)
        return out

    def syn_info(self) -> dict[str, Any] | None:
        if self._syn_info is False:
            # decoded once per shape of SYN (synshape.py), with its fingerprints
            self._syn_info, self._syn_prints = synshape.decode(self.syn)
        return self._syn_info

    def syn_prints(self) -> tuple[str, str, str, str] | None:
        """(options_text, ja4t, signature, os_family) of the SYN; None without one."""
        return self._syn_prints if self.syn_info() is not None else None

    def syn_reason(self) -> str | None:
        """Why the record has no SYN to show (savedsyn.SYN_REASONS), None when it has one."""
        if self.syn is not None:
            return None if self.syn_info() is not None else "undecodable"
        rtt = snd_mss = None
        usec_ts = False
        if self.info_accept:
            fields = tcpinfo.handshake_fields(self.info_accept)
            rtt, snd_mss, usec_ts = fields[0], fields[2], "usec_ts" in (fields[7] or ())
        # (a record made with its SYN never sets syn_missing: the slot stays empty)
        evidence = getattr(self, "syn_missing", None)
        return savedsyn.no_syn_reason(evidence, ":" in self.remote_addr, rtt, snd_mss, usec_ts)

    def handshake_rtt_us(self) -> int | None:
        return tcpinfo.hot_fields(self.info_accept)[0] if self.info_accept else None

    def accept_queue_ms(self) -> int | None:
        return tcpinfo.hot_fields(self.info_accept)[7] if self.info_accept else None

    def to_json(self, live: Any = None) -> dict[str, Any]:
        """Everything about the connection, decoded; `live` is the open connection, if any.

        Called for every record the lifecycle log writes and the status page shows, so only
        the TCP_INFO shown whole (the latest) is decoded whole: the handshake's few fields
        come from one unpack of the accept-time buffer."""
        syn = self.syn_info()
        info_now = self.info_close
        if live is not None:
            info_now = tcpinfo.read_tcp_info(live) or info_now
        close = tcpinfo.decode_tcp_info(info_now) if info_now else None
        t0 = self.accepted
        closed = self.closed
        peer_fin = self.peer_fin
        out = {
            "id": self.id,
            "open": live is not None,
            "family": "ipv6" if ":" in self.remote_addr else "ipv4",
            "client": {"addr": self.remote_addr, "port": self.remote_port},
            # the SYN was addressed to the server: its destination is our local address
            "server": {
                "addr": syn["dst"] if syn else None,
                "port": syn["dst_port"] if syn else self.listen_port,
            },
            "accepted_at": t0,
            "closed_at": closed or None,
            "duration_ms": _ms(closed - t0) if closed else None,
            "syn": None if syn is None else _syn_json(syn, self._syn_prints),
            "syn_reason": None if syn else self.syn_reason(),
            "handshake": _handshake_json(self.info_accept),
            "tls": _tls_json(self.tls, t0),
            "requests": self._requests_json(t0),
            "request_count": self.request_count,
            "requests_sampled": None
            if self.request_count <= SAMPLE_AFTER
            else {"after": SAMPLE_AFTER, "every": SAMPLE_EVERY, "last": True},
            "close": None
            if not closed
            else {
                "closed_by": self.closed_by,
                "reason": self.close_reason,
                "client_fin_received": peer_fin,
                "server_sent_reset": self.reset_sent,
            },
            "tcp_info": close,
            "sequence": _sequence_json(syn, close, peer_fin, self.bytes_out),
            "wire": None if getattr(self, "wire", None) is None else self.wire.to_json(t0),
        }
        proxy = getattr(self, "proxy", None)
        if proxy is not None:
            # `listen ... proxy_protocol`: the visitor as the balancer reports it; `client`,
            # `syn`, `handshake` and `tcp_info` are the balancer's hop, accepted by webserv
            out["proxy"] = proxy
        return out


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


# one request of the timeline: five timestamps (0.0: none taken), status, HTTP minor
# version, bytes in and out, its number on the connection (1, 2, ...); the method and the
# target follow as "METHOD target"
_ENTRY = struct.Struct("=5dHBqqI")
_VERSIONS = tuple(f"HTTP/1.{minor}" for minor in range(256))  # the minor version is a byte


def _entry(ex: Any, number: int) -> bytes:
    return b"".join((
        _ENTRY.pack(
            ex.start, ex.t_headers, ex.t_body, ex.t_response, ex.t_done, ex.status, ex.minor,
            ex.request_length, ex.bytes_sent, number,
        ),
        ex.method.encode("latin-1"), b" ", ex.raw_target,
    ))  # fmt: skip


def _request_json(entry: bytes, t0: float) -> dict[str, Any]:
    begin, headers, body, response, done, status, minor, bytes_in, bytes_out, number = (
        _ENTRY.unpack_from(entry)
    )
    # latin-1 maps each byte to one character: decoding the whole tail once splits the same
    method, _, target = entry[_ENTRY.size :].decode("latin-1").partition(" ")
    # a stage that took no timestamp of its own happened with the one before it
    headers = headers or begin
    body = body or headers
    response = response or body
    return {
        "n": number,
        "method": method,
        "target": target,
        "version": _VERSIONS[minor],
        "status": status,
        "t_begin_ms": _ms(begin - t0),
        "t_headers_ms": _ms(headers - t0),
        "t_body_ms": _ms(body - t0),
        "t_response_ms": _ms(response - t0),
        "t_done_ms": _ms(done - t0),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


# Below this, doubles hold every half-integer exactly (and every integer).
_EXACT = 2.0**52


def _ms(seconds: float) -> float:
    """round(seconds * 1000, 3), bit for bit, at a third of its cost: round(x, 3) converts to
    decimal and back. Multiplying by 1000 again rounds to the nearest double, which can land
    on a half-integer but never carry a value across one (below _EXACT they are doubles), so
    unless it lands on one, rounding it to an int gives the thousandths that exact decimal
    rounding gives, and dividing that (exact) int by 1000, correctly rounded, the double that
    reading them back gives. Halves, zero (whose sign round keeps), huge values, inf and nan
    are left to round itself."""
    ms = seconds * 1000
    us = ms * 1000
    k = round(us) if -_EXACT < us < _EXACT else 0
    if k and abs(us - k) != 0.5:
        return k / 1000
    return round(ms, 3)


def _syn_json(syn: dict[str, Any], prints: tuple[str, str, str, str]) -> dict[str, Any]:
    text, ja4t, signature, os_family = prints
    return {
        **syn,
        "options_text": text,
        "ja4t": ja4t,
        "signature": signature,
        "os_family": os_family,
    }


def _tls_json(info: dict[str, Any] | None, t0: float) -> dict[str, Any] | None:
    """The TLS handshake (None on a plain connection); times in ms since the accept (the
    ClientHello's is negative when it arrived before the accept, in the queue)."""
    if info is None:
        return None
    out = dict(info)
    hello, done = out.pop("client_hello_at", None), out.pop("done_at", None)
    out["client_hello_ms"] = _ms(hello - t0) if hello else None
    out["done_ms"] = _ms(done - t0) if done else None
    return out


def _handshake_json(raw: bytes | None) -> dict[str, Any] | None:
    """The accept-time TCP_INFO's handshake numbers (last_ack_recv: ms in the accept queue)."""
    if not raw:
        return None
    rtt, rttvar, snd_mss, rcv_mss, advmss, snd_wscale, rcv_wscale, options, queue_ms, state = (
        tcpinfo.handshake_fields(raw)
    )
    return {
        "rtt_us": rtt,
        "rttvar_us": rttvar,
        "snd_mss": snd_mss,
        "rcv_mss": rcv_mss,
        "advmss": advmss,
        "snd_wscale": snd_wscale,
        "rcv_wscale": rcv_wscale,
        "options": options,
        "accept_queue_ms": queue_ms,
        "state": state,
    }


def _sequence_json(
    syn: dict[str, Any] | None, info: dict[str, Any] | None, fin: bool, sent: int
) -> dict[str, Any]:
    """The seed diagram's numbers: the client's are absolute (from its SYN), the server's are
    relative to its own ISN y, which an unprivileged socket cannot read."""
    if info:
        fin = fin or info["state"] in _PEER_FIN_STATES  # an open, half-closed connection
        data_in, acked = _data_bytes(
            info["bytes_received"], info["bytes_acked"], info["bytes_sent"],
            info["bytes_retrans"], fin,
        )  # fmt: skip
    else:
        data_in = acked = None
    out: dict[str, Any] = {
        "client_isn": syn["isn"] if syn else None,
        "client_data_bytes": data_in,
        "server_isn_visible": False,
        "server_data_bytes_acked": acked,
        "server_data_bytes_sent": sent,  # by webserv's own count: what its FIN follows
    }
    if syn and syn["isn"] is not None and data_in is not None:  # (a SYN cut before its ISN)
        isn = syn["isn"]
        out["client_first_seq"] = (isn + 1) % 2**32
        out["client_next_seq"] = (isn + 1 + data_in) % 2**32
    return out


class Lifecycle:
    """Recent connections of one worker (open ones are the worker's own connections)."""

    def __init__(self, history: int, stats: Any = None) -> None:
        self.recent: deque[Record] = deque(maxlen=history)
        self.stats = stats
        self.started = time.time()
        self.accepted = 0

    def retire(self, batch: list[tuple[Record, LogFile | None]]) -> None:
        """Closed connections' records (their kernel numbers already read) are done: kept
        among the recent ones, counted, and written to their lifecycle log if any."""
        recent = self.recent
        for record, log in batch:
            record.flush_last()
            recent.append(record)
            if log is not None:
                # orjson: 2-3 µs for a record's ~200 keys, where json.dumps took 22
                log.write(orjson.dumps(record.to_json(), option=orjson.OPT_APPEND_NEWLINE).decode())
        if self.stats is not None:
            self.stats.records_closed(batch)

    def snapshot(self, connections: Any, limit: int | None = None) -> dict[str, Any]:
        recent = list(self.recent)[-limit:] if limit else list(self.recent)
        live = [
            conn.record.to_json(live=conn.raw_socket())
            for conn in connections
            if conn.record is not None and not conn.closed
        ]
        return {
            "server": {"started_at": self.started, "now": time.time(), "accepted": self.accepted},
            "open": live,
            "recent": [record.to_json() for record in reversed(recent)],
        }
