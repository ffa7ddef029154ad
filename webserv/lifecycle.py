"""The per-connection lifecycle record: accept → requests → close, with what the kernel knew.

At accept: the client's saved SYN (ISN, window, options, TTL) and TCP_INFO (handshake RTT,
MSS, window scales, time spent in the accept queue). Per request: five timestamps, status,
bytes — for every request up to SAMPLE_AFTER, then for every SAMPLE_EVERY-th and the last
(the counts and byte totals stay exact; the JSON says `requests_sampled`). At close, read while the socket still exists: TCP_INFO again (bytes acked/received,
segments, retransmits, delivery rate...) and who closed first. Raw kernel bytes are kept and
decoded only when somebody looks (the status page, the lifecycle log), so a connection pays
two or three getsockopt calls and no decoding on its way.

Owns the record, the recent-connections ring and what the open and recent ones look like
as JSON (to_json, snapshot), assembled from lifecycle_json's pure shapes and formats.
Never touches the socket beyond getsockopt, never decides anything about HTTP.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson

from . import savedsyn, synshape, tcpinfo
from .lifecycle_json import (
    PEER_FIN_STATES,
    data_bytes,
    handshake_json,
    ms,
    pack_entry,
    request_json,
    sequence_json,
    syn_json,
    tls_json,
)
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
        # the last MAX_REQUESTS_KEPT requests kept (lifecycle_json.ENTRY), a ring once full
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
        entry = pack_entry(ex, number)
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
            out.append(pack_entry(self.last, self.request_count))
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
        return self.peer_eof or (raw is not None and raw[0] in PEER_FIN_STATES)

    def data_bytes(self) -> tuple[int | None, int | None, int | None]:
        """(payload bytes in, payload bytes out, segments retransmitted) at close, from
        TCP_INFO, with the FINs taken out of the kernel's byte counts."""
        raw = self.info_close
        if raw is None:
            return None, None, None
        state, retrans, acked, received, sent, resent = tcpinfo.close_fields(raw)
        fin = self.peer_eof or state in PEER_FIN_STATES
        data_in, data_out = data_bytes(received, acked, sent, resent, fin)
        return data_in, data_out, retrans

    # --- reading it ---------------------------------------------------------------------

    def _requests_json(self, t0: float) -> list[dict[str, Any]]:
        out = [request_json(entry, t0) for entry in self.kept_requests()]
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
            "duration_ms": ms(closed - t0) if closed else None,
            "syn": None if syn is None else syn_json(syn, self._syn_prints),
            "syn_reason": None if syn else self.syn_reason(),
            "handshake": handshake_json(self.info_accept),
            "tls": tls_json(self.tls, t0),
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
            "sequence": sequence_json(syn, close, peer_fin, self.bytes_out),
            "wire": None if getattr(self, "wire", None) is None else self.wire.to_json(t0),
        }
        proxy = getattr(self, "proxy", None)
        if proxy is not None:
            # `listen ... proxy_protocol`: the visitor as the balancer reports it; `client`,
            # `syn`, `handshake` and `tcp_info` are the balancer's hop, accepted by webserv
            out["proxy"] = proxy
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
