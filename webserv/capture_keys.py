"""A connection's key in lifecycle_capture's 4-tuple table (capture_match.py's WireTable):
client address, server address, client port, server port, as the wire carries them —
from the saved SYN's headers (with the client's ISN), or else from the socket's addresses
(an IPv4 client of an IPv6 socket is IPv4 on the wire). Pure functions: never opens a
socket, never reads a packet.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

_PORTS = struct.Struct("!HH")
_ISN = struct.Struct("!I")
_V4MAPPED = b"\0" * 10 + b"\xff\xff"


def syn_key(syn: bytes | None) -> tuple[bytes, int] | None:
    """(key, client ISN) from the saved SYN's headers, the cheap way to a connection's key."""
    if not syn or len(syn) < 40:
        return None
    if syn[0] >> 4 == 4:
        ihl = (syn[0] & 15) * 4
        if len(syn) >= ihl + 8:
            return syn[12:20] + syn[ihl : ihl + 4], _ISN.unpack_from(syn, ihl + 4)[0]
    elif syn[0] >> 4 == 6 and syn[6] == 6 and len(syn) >= 48:
        return syn[8:44], _ISN.unpack_from(syn, 44)[0]
    return None


def record_key(record: Any, conn: Any) -> tuple[bytes, int | None] | None:
    """(key, client ISN or None) of an accepted connection: from its record's saved SYN,
    else from its socket's addresses; None if neither says."""
    found = syn_key(record.syn)
    if found is not None:
        return found
    try:
        return address_key((conn.remote_addr, conn.remote_port), conn.local_address), None
    except (OSError, ValueError, TypeError):
        return None


def address_key(client: tuple[str, int], server: tuple[str, int]) -> bytes:
    """The key from socket addresses (an IPv4 client of an IPv6 socket is IPv4 on the wire)."""
    return _ip(client[0]) + _ip(server[0]) + _PORTS.pack(client[1], server[1])


def _ip(addr: str) -> bytes:
    addr = addr.partition("%")[0]
    if ":" not in addr:
        return socket.inet_pton(socket.AF_INET, addr)
    packed = socket.inet_pton(socket.AF_INET6, addr)
    return packed[12:] if packed[:12] == _V4MAPPED else packed
