"""The client's SYN as the kernel saved it: TCP_SAVE_SYN on a listening socket, the one read
of TCP_SAVED_SYN per accepted connection, decoding those IP + TCP header bytes, and, for a
connection without one, why (a SYN cookie, a listener that did not ask, ...).

This module only sets and reads socket options and decodes bytes; it keeps no state beyond
precompiled structs and tables. Everything degrades to None instead of raising: off Linux,
on a socket without a saved SYN, on malformed bytes. Fingerprints of the SYN are
synprint.py's; TCP_INFO is tcpinfo.py's.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any, TypedDict

from .tcpinfo import HasSockopt

_LINUX = sys.platform.startswith("linux")
# The stdlib lacks these; use the Linux uapi values only where they mean that.
TCP_SAVE_SYN: int | None = getattr(socket, "TCP_SAVE_SYN", 27 if _LINUX else None)
TCP_SAVED_SYN: int | None = getattr(socket, "TCP_SAVED_SYN", 28 if _LINUX else None)
# getsockopt allocates the whole buffer before the kernel fills it: ask for what can come.
# A saved SYN is an IP header (IPv6: 40 bytes, plus rare extension headers) and a TCP header
# (60 at most); a buffer shorter than what the kernel saved fails (EINVAL), so keep room.
_SYN_BUFLEN = 256


def enable_save_syn(listen_sock: socket.socket, on: bool = True) -> bool:
    """Ask the kernel to keep each incoming SYN's IP+TCP headers (mode 1: no MAC header);
    `on=False` stops it (a reload that turned the lifecycle off).

    Each accepted connection then pins those bytes until read_saved_syn() reads them or the
    socket closes.
    """
    if TCP_SAVE_SYN is None:
        return False
    try:
        listen_sock.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1 if on else 0)
    except OSError:
        return False
    return True


def read_saved_syn(sock: HasSockopt) -> bytes | None:
    """The accepted connection's SYN headers. The kernel frees them on the first successful
    read, so later reads (and sockets without a saved SYN) yield None."""
    if TCP_SAVED_SYN is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, _SYN_BUFLEN)
    except OSError:
        return None
    return raw or None


# --- when there is none: why ------------------------------------------------------------
# The kernel saves a SYN only when it makes a request socket for it (tcp_conn_request calls
# tcp_reqsk_record_syn only `if (!want_cookie)`); a SYN answered with a SYN cookie leaves
# nothing, and the connection that cookie_v4_check / cookie_v6_check makes at the ACK has
# no saved SYN. The connection is a clone of its listener (sk_clone_lock), so its own
# TCP_SAVE_SYN says whether the listener asked for SYNs when the kernel made it.
SYN_REASONS: tuple[str, ...] = (
    "syncookie",  # asked for, none kept, and TCP_INFO looks like a cookie's connection
    "not_saved",  # asked for, none kept, and TCP_INFO rules a cookie out (see no_syn_reason)
    "save_syn_off",  # the listener had no TCP_SAVE_SYN when the connection was made
    "unreadable",  # getsockopt(TCP_SAVED_SYN) failed
    "unsupported",  # no TCP_SAVED_SYN on this system
    "undecodable",  # saved, but its bytes are no IP + TCP header
)
NO_SAVED_SYN_OPTION = -2  # missing_syn(): the system has no TCP_SAVED_SYN
SAVED_SYN_FAILED = -1  # missing_syn(): getsockopt(TCP_SAVED_SYN) failed
# The largest MSS a SYN cookie can carry: the last of msstab in net/ipv4/syncookies.c
# (536, 1300, 1440, 1460) and net/ipv6/syncookies.c (1280-60, 1480-60, 1500-60, 9000-60).
# A cookie's connection takes its MSS from that table, so its tcpi_snd_mss is at most that.
COOKIE_MSS_MAX = {4: 1460, 6: 9000 - 60}


def missing_syn(sock: HasSockopt) -> int:
    """What the kernel says when read_saved_syn() found nothing — asked only then, so a
    connection with its SYN pays nothing for this: the accepted socket's own TCP_SAVE_SYN
    (0: its listener asked for no SYN; 1 or 2: it did, and the kernel kept none),
    SAVED_SYN_FAILED when reading TCP_SAVED_SYN fails rather than reads empty, or
    NO_SAVED_SYN_OPTION off Linux."""
    if TCP_SAVED_SYN is None or TCP_SAVE_SYN is None:
        return NO_SAVED_SYN_OPTION
    try:
        # again: an empty answer reads empty again, a failure fails again (EINVAL: too long)
        sock.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, _SYN_BUFLEN)
    except OSError:
        return SAVED_SYN_FAILED
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN))
    except OSError:
        return SAVED_SYN_FAILED


def no_syn_reason(
    evidence: int | None, ipv6: bool, rtt_us: int | None, snd_mss: int | None, usec_ts: bool
) -> str:
    """Why a connection has no saved SYN (one of SYN_REASONS but "undecodable"), from what
    missing_syn() found at accept (None: nothing found) and the accept-time TCP_INFO.

    "syncookie" needs the listener to have asked for SYNs (the kernel then keeps one for
    every SYN it answers from its SYN queue) and TCP_INFO to be what a cookie leaves:
    - tcpi_snd_mss at most COOKIE_MSS_MAX: a cookie encodes one of four MSS values;
    - tcpi_rtt 0 or whole milliseconds: a cookie's request socket has no SYN-ACK send time
      (snt_synack 0), so the kernel's only handshake RTT sample comes from the ACK's echoed
      timestamp, in TCP timestamp units (1 ms), and none without timestamps — unless the
      connection uses microsecond timestamps (TCPI_OPT_USEC_TS).
    A connection that fails either is "not_saved": its SYN came through the SYN queue but
    none was kept (it arrived before TCP_SAVE_SYN was set, or the kernel's allocation
    failed)."""
    if evidence is None:
        return "not_saved"
    if evidence == NO_SAVED_SYN_OPTION:
        return "unsupported"
    if evidence == SAVED_SYN_FAILED:
        return "unreadable"
    if evidence == 0:
        return "save_syn_off"
    if snd_mss is not None and snd_mss > COOKIE_MSS_MAX[6 if ipv6 else 4]:
        return "not_saved"
    if rtt_us and rtt_us % 1000 and not usec_ts:
        return "not_saved"
    return "syncookie"


class SynOptions(TypedDict):
    mss: int | None
    wscale: int | None
    sack_perm: bool
    timestamps: bool
    tsval: int | None
    tsecr: int | None
    fastopen: bool
    fastopen_cookie: str | None  # hex; None for a cookie request or no TFO
    option_kinds: list[str]  # tcpdump's names, wire order
    # the option kinds as numbers, wire order: EOL (0) and every byte after it (the padding)
    # included, as JA4T lists them; a malformed option ends the list (and sets malformed)
    kinds: list[int]
    malformed: bool


class SynInfo(TypedDict):
    ip_version: int
    ttl: int
    src: str
    dst: str
    src_port: int | None
    dst_port: int | None
    isn: int | None
    window: int | None  # as sent: SYN windows are never scaled
    flags: list[str]
    options: SynOptions
    # the rest of the headers, for fingerprints (webserv/synprint.py): IPv4's ID, DF and
    # must-be-zero flag bits and option bytes; IPv6's flow label; both's ECN bits; the TCP
    # ACK number and urgent pointer a SYN should leave at 0; bytes of data the SYN carried
    ip_id: int | None
    df: bool
    ip_mbz: bool
    ip_options_len: int
    flow_label: int | None
    ip_ecn: int
    ack: int | None
    urgent_ptr: int | None
    payload_len: int | None


_TCP_FLAGS = (
    (0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"),
    (0x10, "ACK"), (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR"),
)  # fmt: skip
# tcpdump's print-tcp.c names; anything else prints as unknown-<kind>.
_OPT_NAMES = {
    0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
    7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "ccecho", 19: "md5", 20: "scps",
    28: "uto", 29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp",
}  # fmt: skip
_IPV6_EXT = frozenset((0, 43, 44, 51, 60))  # hop-by-hop, routing, fragment, AH, dest opts
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")
_PORTS = struct.Struct("!HH")
_TS = struct.Struct("!II")


def _ip_header(raw: bytes) -> tuple[int, int, str, str, int, int] | None:
    """(version, ttl, src, dst, next protocol, offset of the transport header)."""
    version = raw[0] >> 4
    if version == 4 and len(raw) >= 20:
        ihl = (raw[0] & 0x0F) * 4
        if ihl < 20:
            return None
        src = socket.inet_ntop(socket.AF_INET, raw[12:16])
        return 4, raw[8], src, socket.inet_ntop(socket.AF_INET, raw[16:20]), raw[9], ihl
    if version == 6 and len(raw) >= 40:
        nh, off = raw[6], 40
        # Walk extension headers; a malformed chain just ends the walk on a non-TCP protocol.
        for _ in range(8):
            if nh not in _IPV6_EXT or off + 2 > len(raw):
                break
            if nh == 44:
                hlen = 8
            elif nh == 51:
                hlen = (raw[off + 1] + 2) * 4
            else:
                hlen = (raw[off + 1] + 1) * 8
            nh, off = raw[off], off + hlen
        src = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return 6, raw[7], src, socket.inet_ntop(socket.AF_INET6, raw[24:40]), nh, off
    return None


def _parse_options(opts: bytes, out: SynOptions) -> None:
    kinds, numbers, i, end = out["option_kinds"], out["kinds"], 0, len(opts)
    while i < end:
        kind = opts[i]
        if kind == 1:
            kinds.append("nop")
            numbers.append(1)
            i += 1
            continue
        if kind == 0:
            kinds.append("eol")
            numbers.extend(opts[i:])  # the EOL and the padding after it
            return
        if i + 1 >= end or opts[i + 1] < 2 or i + opts[i + 1] > end:
            out["malformed"] = True
            return  # truncated or lying length byte: the rest can't be trusted
        numbers.append(kind)
        olen = opts[i + 1]
        body = opts[i + 2 : i + olen]
        name = _OPT_NAMES.get(kind, f"unknown-{kind}")
        if kind == 2 and olen == 4:
            out["mss"] = _BE16.unpack(body)[0]
        elif kind == 3 and olen == 3:
            out["wscale"] = body[0]
        elif kind == 4:
            out["sack_perm"] = True
        elif kind == 8 and olen == 10:
            out["timestamps"] = True
            out["tsval"], out["tsecr"] = _TS.unpack(body)
        elif kind == 34 or (kind == 254 and body[:2] == b"\xf9\x89"):
            if kind == 254:  # pre-RFC 7413 experimental TFO, as tcpdump labels it
                name, body = "exp-tfo", body[2:]
            out["fastopen"] = True
            out["fastopen_cookie"] = body.hex() or None
        elif kind == 254 and len(body) >= 2:
            name = f"exp-{body[:2].hex()}"  # RFC 6994 experiment id, as tcpdump prints it
        kinds.append(name)
        i += olen


def decode_syn(raw: bytes | None) -> SynInfo | None:
    """Decode saved SYN headers (IPv4 or IPv6 + TCP). Never raises on bad input: returns
    None when no IP header can be read, and None/empty TCP fields past a truncation."""
    if not raw:
        return None
    try:
        return _decode_syn(bytes(raw))
    except (IndexError, ValueError, struct.error):  # belt and braces: the parser checks lengths
        return None


def _decode_syn(raw: bytes) -> SynInfo | None:
    ip = _ip_header(raw)
    if ip is None:
        return None
    version, ttl, src, dst, proto, off = ip
    tcp = raw[off:] if proto == 6 else b""
    options: SynOptions = {
        "mss": None, "wscale": None, "sack_perm": False, "timestamps": False,
        "tsval": None, "tsecr": None, "fastopen": False, "fastopen_cookie": None,
        "option_kinds": [], "kinds": [], "malformed": False,
    }  # fmt: skip
    info: SynInfo = {
        "ip_version": version, "ttl": ttl, "src": src, "dst": dst,
        "src_port": None, "dst_port": None, "isn": None, "window": None,
        "flags": [], "options": options,
        "ip_id": None, "df": False, "ip_mbz": False, "ip_options_len": 0, "flow_label": None,
        "ip_ecn": 0, "ack": None, "urgent_ptr": None, "payload_len": None,
    }  # fmt: skip
    if version == 4:
        info["ip_id"] = _BE16.unpack_from(raw, 4)[0]
        info["df"] = bool(raw[6] & 0x40)
        info["ip_mbz"] = bool(raw[6] & 0x80)
        info["ip_options_len"] = off - 20
        info["ip_ecn"] = raw[1] & 0x03
        total = _BE16.unpack_from(raw, 2)[0]
    else:
        word = _BE32.unpack_from(raw)[0]
        info["flow_label"] = word & 0xFFFFF
        info["ip_ecn"] = (word >> 20) & 0x03
        total = 40 + _BE16.unpack_from(raw, 4)[0]
    n = len(tcp)
    if n >= 4:
        info["src_port"], info["dst_port"] = _PORTS.unpack_from(tcp)
    if n >= 8:
        info["isn"] = _BE32.unpack_from(tcp, 4)[0]
    if n >= 14:
        info["flags"] = [name for bit, name in _TCP_FLAGS if tcp[13] & bit]
        if tcp[12] & 0x01:  # AE (RFC 9768 AccECN; formerly NS)
            info["flags"].append("AE")
    if n >= 16:
        info["window"] = _BE16.unpack_from(tcp, 14)[0]
    if n >= 12:
        info["ack"] = _BE32.unpack_from(tcp, 8)[0]
    if n >= 20:
        info["urgent_ptr"] = _BE16.unpack_from(tcp, 18)[0]
        doff = (tcp[12] >> 4) * 4
        _parse_options(tcp[20:doff], options)
        if proto == 6 and total >= off + doff:
            info["payload_len"] = total - off - doff
    return info


def options_text(decoded: SynInfo | SynOptions | None) -> str:
    """tcpdump's rendering of the option list, e.g. "mss 65495,sackOK,TS val 1 ecr 0,nop,wscale 7".

    Accepts decode_syn()'s result or its "options" dict.
    """
    if not decoded:
        return ""
    opts: Any = decoded.get("options", decoded)
    parts = []
    for kind in opts.get("option_kinds", ()):
        # A malformed mss/wscale/TS still appears in option_kinds but has no value to show.
        if kind == "mss" and opts["mss"] is not None:
            parts.append(f"mss {opts['mss']}")
        elif kind == "wscale" and opts["wscale"] is not None:
            parts.append(f"wscale {opts['wscale']}")
        elif kind == "TS" and opts["tsval"] is not None:
            parts.append(f"TS val {opts['tsval']} ecr {opts['tsecr']}")
        elif kind in ("tfo", "exp-tfo"):
            cookie = opts.get("fastopen_cookie")
            parts.append(f"{kind} cookie {cookie}" if cookie else f"{kind} cookiereq")
        else:
            parts.append(kind)
    return ",".join(parts)
