"""Types shared by NetPath and its relay process, and just enough IPv4/IPv6 + TCP header
parsing to aim drop rules and record what went by."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Literal, NamedTuple

Direction = Literal["c2s", "s2c"]
DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")
_FLAG_NAMES = "FSRPAUEC"  # TCP flag bits, least significant first


class TcpView(NamedTuple):
    """TCP fields are None for packets that are not TCP."""

    proto: int
    flags: str | None  # e.g. 'S', 'SA', 'A', 'PA', 'FA'
    seq: int | None
    payload: int | None  # TCP payload length in bytes

    @property
    def is_data(self) -> bool:
        return bool(self.payload)


class Packet(NamedTuple):
    """One packet the relay saw, kept when NetPath(record=True)."""

    t: float  # time.monotonic() when read from the sending side's TUN
    direction: Direction
    size: int
    dropped: bool
    proto: int
    flags: str | None
    seq: int | None
    payload: int | None


NOT_IP = TcpView(-1, None, None, None)


def parse_tcp(pkt: bytes) -> TcpView:
    # IPv6 extension headers are not followed: nothing in these tests sends them.
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        hdr, proto = (pkt[0] & 0x0F) * 4, pkt[9]
        ip_payload = int.from_bytes(pkt[2:4], "big") - hdr
    elif len(pkt) >= 40 and pkt[0] >> 4 == 6:
        hdr, proto, ip_payload = 40, pkt[6], int.from_bytes(pkt[4:6], "big")
    else:
        return NOT_IP
    if proto != socket.IPPROTO_TCP or len(pkt) < hdr + 20:
        return TcpView(proto, None, None, None)
    bits = pkt[hdr + 13]
    flags = "".join(name for i, name in enumerate(_FLAG_NAMES) if bits & (1 << i))
    seq = int.from_bytes(pkt[hdr + 4 : hdr + 8], "big")
    return TcpView(proto, flags, seq, ip_payload - (pkt[hdr + 12] >> 4) * 4)


@dataclass
class DirectionStats:
    forwarded: int = 0
    dropped: int = 0
    bytes: int = 0  # forwarded bytes, IP headers included
    max_packet: int = 0  # > MTU would mean GSO super-packets reach the relay
    write_errors: int = 0
