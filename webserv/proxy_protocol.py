"""The PROXY protocol header a balancer sends before anything else (HAProxy's spec, v1 and v2).

    v1  "PROXY TCP4|TCP6 SRC DST SRCPORT DSTPORT\\r\\n" or "PROXY UNKNOWN ...\\r\\n",
        at most 107 bytes with its CRLF
    v2  the 12-byte signature, version/command, family/transport, a 16-bit length, then
        the addresses (INET: 12 bytes, INET6: 36) and TLVs (type, 16-bit length, value)

`parse(data)` is given the bytes received so far and answers a ProxyHeader (with how many
bytes it took), None while the header may still be incomplete, or raises
ProxyProtocolError: bad bytes are refused as soon as they are seen, and no header may grow
past V1_MAX (v1) or V2_MAX_LENGTH (v2's length field), so a client cannot make anyone buffer
more. Any input, however broken, ends in one of those three answers (hypothesis-fuzzed).

Pure: no sockets, no config, no logging. The connection stage is proxy_connection.py.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the spec's longest v1 line, CRLF included ("PROXY UNKNOWN" + two IPv6...)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER = 16  # signature, version/command, family/transport, length
# nginx reads the header into its client_header_buffer_size (1k) buffer; HAProxy's largest
# (every TLV, a long certificate CN) stays well under this
V2_MAX_LENGTH = 4096

# v2 TLV types (HAProxy's proxy-protocol.txt, 2.2)
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}
PP2_TYPE_NETNS = 0x30
UNIQUE_ID_MAX = 128  # the spec's limit


class ProxyProtocolError(ValueError):
    """A header that is not one: `reason` says why (for the error log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True, frozen=True)
class ProxyHeader:
    """What the balancer said. Addresses are None for v1 UNKNOWN, v2 LOCAL, and v2 families
    other than INET/INET6 (UNIX, UNSPEC) or transports other than STREAM: nginx keeps no
    address then, and neither does webserv."""

    version: int  # 1 or 2
    command: str  # "PROXY" or "LOCAL" (v1 UNKNOWN is LOCAL: a balancer's own check)
    family: str  # "TCP4", "TCP6", "UNKNOWN" (v1); "INET", "INET6", "UNIX", "UNSPEC" (v2)
    src_addr: str | None
    src_port: int | None
    dst_addr: str | None
    dst_port: int | None
    length: int  # bytes of the header: the request (or ClientHello) starts after them
    tlvs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "command": self.command,
            "family": self.family,
            "client": None
            if self.src_addr is None
            else {"addr": self.src_addr, "port": self.src_port},
            "server": None
            if self.dst_addr is None
            else {"addr": self.dst_addr, "port": self.dst_port},
            "tlvs": self.tlvs or None,
        }


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`, None if more bytes are needed, or raises."""
    if not data:
        return None
    first = data[0]
    if first == 0x50:  # "P"
        if len(data) < len(V1_PREFIX):
            if not V1_PREFIX.startswith(data):
                raise ProxyProtocolError("broken header")
            return None
        if not data.startswith(V1_PREFIX):
            raise ProxyProtocolError("broken header")
        return _parse_v1(data)
    if first == 0x0D:
        if len(data) < len(V2_SIGNATURE):
            if not V2_SIGNATURE.startswith(data):
                raise ProxyProtocolError("broken header")
            return None
        if not data.startswith(V2_SIGNATURE):
            raise ProxyProtocolError("broken header")
        return _parse_v2(data)
    raise ProxyProtocolError("broken header")


# --- v1 ---------------------------------------------------------------------------------


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyProtocolError("broken header")  # (nginx's word for a line too long)
        if b"\n" in data or b"\r" in data[:-1]:
            raise ProxyProtocolError("broken header")
        return None
    line = data[len(V1_PREFIX) : end]
    parts = line.split(b" ")
    proto = parts[0]
    if proto == b"UNKNOWN":  # the rest is ignored, as the spec says
        return ProxyHeader(1, "LOCAL", "UNKNOWN", None, None, None, None, end + 2)
    if proto not in (b"TCP4", b"TCP6") or len(parts) != 5:
        raise ProxyProtocolError("broken header")
    version = 4 if proto == b"TCP4" else 6
    src = _v1_address(parts[1], version)
    dst = _v1_address(parts[2], version)
    src_port = _v1_port(parts[3])
    dst_port = _v1_port(parts[4])
    return ProxyHeader(1, "PROXY", proto.decode(), src, src_port, dst, dst_port, end + 2)


def _v1_address(raw: bytes, version: int) -> str:
    # inet_pton/ntop, not ipaddress: a quarter of the cost (measured), the same answers
    family = _AF_INET if version == 4 else _AF_INET6
    try:
        return _ntop(family, _pton(family, raw.decode("ascii")))
    except (UnicodeDecodeError, ValueError, OSError):
        raise ProxyProtocolError("broken header") from None


def _v1_port(raw: bytes) -> int:
    # decimal, no sign, no leading zero (the spec), 0..65535
    if not raw or len(raw) > 5 or not raw.isdigit() or (raw[0] == 0x30 and len(raw) > 1):
        raise ProxyProtocolError("broken header")
    port = int(raw)
    if port > 65535:
        raise ProxyProtocolError("broken header")
    return port


# --- v2 ---------------------------------------------------------------------------------

_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_pton, _ntop = socket.inet_pton, socket.inet_ntop
_V2_FIXED = struct.Struct("!BBH")
_INET = struct.Struct("!4s4sHH")
_INET6 = struct.Struct("!16s16sHH")
_FAMILIES = {0x0: "UNSPEC", 0x1: "INET", 0x2: "INET6", 0x3: "UNIX"}


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_HEADER:
        return None
    ver_cmd, fam, length = _V2_FIXED.unpack_from(data, 12)
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"unknown PROXY protocol version: {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command > 1:
        raise ProxyProtocolError("unknown PROXY protocol command")
    if length > V2_MAX_LENGTH:
        raise ProxyProtocolError("header is too large")
    family = _FAMILIES.get(fam >> 4)
    transport = fam & 0x0F
    if family is None or transport > 2:
        raise ProxyProtocolError("unknown PROXY protocol address family")
    total = V2_HEADER + length
    if len(data) < total:
        return None
    body = data[V2_HEADER:total]
    src = dst = None
    src_port = dst_port = None
    offset = 0
    # a LOCAL header's address block is ignored whatever it holds (the spec); a PROXY one
    # must hold its family's addresses
    size = {"INET": _INET.size, "INET6": _INET6.size, "UNIX": 216}.get(family, 0)
    if length < size and command == 1 and family != "UNIX":
        raise ProxyProtocolError("header is too short")
    offset = min(size, length)
    if command == 0:
        return ProxyHeader(2, "LOCAL", family, None, None, None, None, total)
    if transport == 1 and family in ("INET", "INET6"):
        if family == "INET":
            s, d, src_port, dst_port = _INET.unpack_from(body)
            src, dst = _ntop(_AF_INET, s), _ntop(_AF_INET, d)
        else:
            s, d, src_port, dst_port = _INET6.unpack_from(body)
            src, dst = _ntop(_AF_INET6, s), _ntop(_AF_INET6, d)
    tlvs = _parse_tlvs(body, offset) if offset < length else {}
    return ProxyHeader(2, "PROXY", family, src, src_port, dst, dst_port, total, tlvs)


def _tlv_items(body: bytes, offset: int) -> list[tuple[int, bytes]]:
    items = []
    end = len(body)
    while offset < end:
        if offset + 3 > end:
            raise ProxyProtocolError("broken TLV")
        kind = body[offset]
        size = (body[offset + 1] << 8) | body[offset + 2]
        offset += 3
        if offset + size > end:
            raise ProxyProtocolError("broken TLV")
        items.append((kind, body[offset : offset + size]))
        offset += size
    return items


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _parse_tlvs(body: bytes, offset: int) -> dict[str, Any]:
    """The TLVs by name: alpn, authority, unique_id (hex), crc32c (hex, not checked),
    netns, ssl {client, verify, version, cn, cipher, ...}; any other type as "0xNN": hex."""
    out: dict[str, Any] = {}
    for kind, value in _tlv_items(body, offset):
        if kind == PP2_TYPE_NOOP:
            continue
        if kind == PP2_TYPE_ALPN:
            out["alpn"] = _text(value)
        elif kind == PP2_TYPE_AUTHORITY:
            out["authority"] = _text(value)
        elif kind == PP2_TYPE_UNIQUE_ID:
            if len(value) > UNIQUE_ID_MAX:
                raise ProxyProtocolError("broken TLV")
            out["unique_id"] = value.hex()
        elif kind == PP2_TYPE_CRC32C:
            out["crc32c"] = value.hex()
        elif kind == PP2_TYPE_NETNS:
            out["netns"] = _text(value)
        elif kind == PP2_TYPE_SSL:
            out["ssl"] = _parse_ssl(value)
        else:
            out[f"0x{kind:02x}"] = value.hex()
    return out


def _parse_ssl(value: bytes) -> dict[str, Any]:
    if len(value) < 5:
        raise ProxyProtocolError("broken TLV")
    client, verify = value[0], int.from_bytes(value[1:5], "big")
    ssl: dict[str, Any] = {
        "client": client,  # PP2_CLIENT_SSL 0x01, _CERT_CONN 0x02, _CERT_SESS 0x04
        "verify": verify,  # 0: the client's certificate (if any) was verified
    }
    for kind, sub in _tlv_items(value, 5):
        ssl[PP2_SUBTYPE_SSL.get(kind, f"0x{kind:02x}")] = _text(sub)
    return ssl


# --- building headers (tests, and anyone who speaks it to webserv) ---------------------------


def v1_header(src: str, dst: str, src_port: int, dst_port: int) -> bytes:
    proto = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {proto} {src} {dst} {src_port} {dst_port}\r\n".encode()


def v2_header(
    src: str | None = None,
    dst: str | None = None,
    src_port: int = 0,
    dst_port: int = 0,
    tlvs: list[tuple[int, bytes]] = (),  # type: ignore[assignment]
    local: bool = False,
) -> bytes:
    if local or src is None or dst is None:
        body, fam = b"", 0x00
    elif ":" in src:
        body = _INET6.pack(
            ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed, src_port, dst_port
        )
        fam = 0x21
    else:
        body = _INET.pack(
            ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed, src_port, dst_port
        )
        fam = 0x11
    for kind, value in tlvs:
        body += bytes((kind,)) + len(value).to_bytes(2, "big") + value
    ver_cmd = 0x20 if local else 0x21
    return V2_SIGNATURE + _V2_FIXED.pack(ver_cmd, fam, len(body)) + body
