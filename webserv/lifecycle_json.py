"""The lifecycle record's formats: a request's packed timeline entry and the JSON shapes.

lifecycle.Record keeps raw bytes on the hot path; what they mean is decoded here, when
somebody reads a record (the status page, the lifecycle log): the timeline entry (packed by
pack_entry once a request is done, read back by request_json), the handshake numbers of the
accept-time TCP_INFO, the SYN with its fingerprints, the TLS handshake, the seed diagram's
sequence numbers, the payload bytes with the FINs taken out, and milliseconds rounded as
round(x, 3) rounds them. Pure functions of their arguments: never reads a socket, never
keeps state.
"""

from __future__ import annotations

import struct
from typing import Any

from . import tcpinfo

# states in which the peer's FIN has been received (CLOSE is ambiguous: reset, or LAST_ACK done)
PEER_FIN_STATES = frozenset((6, 8, 9, 11))  # TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING


def data_bytes(
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
ENTRY = struct.Struct("=5dHBqqI")
_VERSIONS = tuple(f"HTTP/1.{minor}" for minor in range(256))  # the minor version is a byte


def pack_entry(ex: Any, number: int) -> bytes:
    return b"".join((
        ENTRY.pack(
            ex.start, ex.t_headers, ex.t_body, ex.t_response, ex.t_done, ex.status, ex.minor,
            ex.request_length, ex.bytes_sent, number,
        ),
        ex.method.encode("latin-1"), b" ", ex.raw_target,
    ))  # fmt: skip


def request_json(entry: bytes, t0: float) -> dict[str, Any]:
    begin, headers, body, response, done, status, minor, bytes_in, bytes_out, number = (
        ENTRY.unpack_from(entry)
    )
    # latin-1 maps each byte to one character: decoding the whole tail once splits the same
    method, _, target = entry[ENTRY.size :].decode("latin-1").partition(" ")
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
        "t_begin_ms": ms(begin - t0),
        "t_headers_ms": ms(headers - t0),
        "t_body_ms": ms(body - t0),
        "t_response_ms": ms(response - t0),
        "t_done_ms": ms(done - t0),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


# Below this, doubles hold every half-integer exactly (and every integer).
_EXACT = 2.0**52


def ms(seconds: float) -> float:
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


def syn_json(syn: dict[str, Any], prints: tuple[str, str, str, str]) -> dict[str, Any]:
    text, ja4t, signature, os_family = prints
    return {
        **syn,
        "options_text": text,
        "ja4t": ja4t,
        "signature": signature,
        "os_family": os_family,
    }


def tls_json(info: dict[str, Any] | None, t0: float) -> dict[str, Any] | None:
    """The TLS handshake (None on a plain connection); times in ms since the accept (the
    ClientHello's is negative when it arrived before the accept, in the queue)."""
    if info is None:
        return None
    out = dict(info)
    hello, done = out.pop("client_hello_at", None), out.pop("done_at", None)
    out["client_hello_ms"] = ms(hello - t0) if hello else None
    out["done_ms"] = ms(done - t0) if done else None
    return out


def handshake_json(raw: bytes | None) -> dict[str, Any] | None:
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


def sequence_json(
    syn: dict[str, Any] | None, info: dict[str, Any] | None, fin: bool, sent: int
) -> dict[str, Any]:
    """The seed diagram's numbers: the client's are absolute (from its SYN), the server's are
    relative to its own ISN y, which an unprivileged socket cannot read."""
    if info:
        fin = fin or info["state"] in PEER_FIN_STATES  # an open, half-closed connection
        data_in, acked = data_bytes(
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
