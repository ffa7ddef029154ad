"""The capture socket's receive ring: `PACKET_RX_RING` with `TPACKET_V3`, and the parsing of
its blocks into segments for the 4-tuple table (capture_match.WireTable.add).

With a ring, the kernel copies each segment the filter passes into an mmap'd block, with its
receive time in the packet's `tpacket3_hdr`, and wakes the reader once per block: when the
block is full or when it has been open RETIRE_MS milliseconds. The reader walks the blocks
the kernel handed over (block_status & TP_STATUS_USER), hands each back (TP_STATUS_KERNEL),
and never makes a system call per segment: no recvmsg, no ancillary data, no sockaddr_ll
(CPython's recvmsg asks the kernel for the interface's name, SIOCGIFNAME, at every call).

What this changes: a segment reaches the table up to RETIRE_MS after the kernel saw it (its
time is the kernel's, so the times do not change); a record closed meanwhile waits in the
table's `held` list until its close is complete (capture_match.WireTable.settle).

Owns the ring's layout (linux/if_packet.h), its set-up and `parse_block`, a pure function
of a buffer and an offset (the unit tests give it crafted blocks). No ring (an old kernel,
a refused setsockopt or mmap): OSError, and capture.py reads with recvmsg as before.
"""

from __future__ import annotations

import mmap
import socket
import struct
from collections.abc import Callable
from typing import Any

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
BLOCK_SIZE = 1 << 18  # 256 KiB: ~1600 segments (a frame is ~150 bytes)
BLOCK_NR = 16  # 4 MiB in all, as the recvmsg path's receive buffer
FRAME_SIZE = 1 << 11  # (V3 packs frames by their length; this only sizes tp_frame_nr)
RETIRE_MS = 4  # a block not full is handed over after this long (tp_retire_blk_tov)

# struct tpacket_req3 { block_size, block_nr, frame_size, frame_nr, retire_blk_tov,
#                       sizeof_priv, feature_req_word }
_REQ3 = struct.Struct("=7I")
# struct tpacket_block_desc { version, offset_to_priv, tpacket_hdr_v1 { block_status,
#                             num_pkts, offset_to_first_pkt, blk_len, seq_num, ts... } }
_STATUS = struct.Struct("=I")
STATUS_AT = 8
_BLOCK = struct.Struct("=III")  # block_status, num_pkts, offset_to_first_pkt (at 8)
# struct tpacket3_hdr { next_offset, sec, nsec, snaplen, len, status, u16 mac, u16 net, ... }
_PACKET = struct.Struct("=IIII10xH")  # next_offset, sec, nsec, snaplen, (…), net


def _fast4(buf: Any, off: int, count: int, ports: Any, add: Add) -> tuple[int, int]:
    """The leading frames of a block that are FRAME4 bytes of IPv4 TCP without options (all
    of them, as a rule), walked by struct.iter_unpack; (frames done, segments given). It
    stops before the first other frame: parse_block's per-frame walk takes it from there."""
    view = memoryview(buf)[off : off + count * FRAME4]
    done = n = 0
    try:
        heads, ips, ports4 = (_HEAD4.iter_unpack(view), _IP4F.iter_unpack(view),
                              _PORTS4F.iter_unpack(view))  # fmt: skip
        for (nxt, sec, nsec, snap, net), ip, (sport, dport) in zip(heads, ips, ports4, strict=True):
            if net != NET or snap != FRAME4 - NET or (nxt != FRAME4 and done != count - 1):
                break  # not a frame of this shape: the slow walk
            vi, total, proto, key, seq, ack, offset, flags = ip
            if nxt != FRAME4 and nxt:
                break
            done += 1
            if vi != 0x45 or proto != 6:
                if vi == 0x45:
                    continue  # (not TCP: only before the filter was attached)
                done -= 1
                break
            if dport in ports:
                add(key, sec + nsec * 1e-9, False, flags, seq, ack, total - 20 - (offset >> 4) * 4)
                n += 1
            elif sport in ports:
                key = key[4:8] + key[:4] + key[10:12] + key[8:10]
                add(key, sec + nsec * 1e-9, True, flags, seq, ack, total - 20 - (offset >> 4) * 4)
                n += 1
            if not nxt:
                done = count  # the block's last frame
                break
    finally:
        del heads, ips, ports4
        view.release()
    return done, n


# IPv4 without options + the TCP header's first 14 bytes: version/IHL, total length, ports,
# seq, ack, data offset, flags
_IP4_TCP = struct.Struct("!BxH16xHHIIBB")
_TCP = struct.Struct("!HHIIBB")  # ports, seq, ack, data offset, flags
Add = Callable[[bytes, float, bool, int, int, int, int], Any]


def setup(sock: socket.socket) -> mmap.mmap:
    """Turn `sock` (AF_PACKET, filter attached) into a TPACKET_V3 ring socket; its mmap.
    OSError if the kernel refuses (the socket is then as it was: no ring)."""
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    req = _REQ3.pack(BLOCK_SIZE, BLOCK_NR, FRAME_SIZE, BLOCK_SIZE * BLOCK_NR // FRAME_SIZE,
                     RETIRE_MS, 0, 0)  # fmt: skip
    sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
    try:
        return mmap.mmap(sock.fileno(), BLOCK_SIZE * BLOCK_NR, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
    except (OSError, ValueError) as exc:
        raise OSError(getattr(exc, "errno", 0) or 0, f"mmap of the ring: {exc}") from None


class Ring:
    """The blocks of one ring, read in order (the kernel fills them round-robin)."""

    def __init__(self, buf: Any, block_size: int = BLOCK_SIZE, block_nr: int = BLOCK_NR):
        self.buf = buf
        self.block_size = block_size
        self.block_nr = block_nr
        self.next = 0  # the block the kernel hands over next
        self.bad_blocks = 0  # blocks whose headers did not add up (skipped)

    def read(self, ports: Any, add: Add, limit: int) -> int:
        """Every block handed over (up to `limit`), parsed and handed back; segments read."""
        buf, size, status, unpack = self.buf, self.block_size, _STATUS, _STATUS.unpack_from
        n = 0
        for _ in range(min(limit, self.block_nr)):
            start = self.next * size
            if not unpack(buf, start + STATUS_AT)[0] & TP_STATUS_USER:
                break
            try:
                n += parse_block(buf, start, size, ports, add)
            except (struct.error, IndexError, ValueError):
                self.bad_blocks += 1
            status.pack_into(buf, start + STATUS_AT, TP_STATUS_KERNEL)
            self.next = (self.next + 1) % self.block_nr
        return n

    def close(self) -> None:
        try:
            self.buf.close()
        except (BufferError, ValueError):
            pass


NET = 96  # tp_net of SOCK_DGRAM: TPACKET_ALIGN(tpacket3_hdr + sockaddr_ll) + 16
FRAME4 = 136  # a frame of IPv4 without options, cut to 40 bytes (V3 aligns frames to 8)
# one frame of FRAME4 bytes, three ways (struct.iter_unpack walks a block in C):
_HEAD4 = struct.Struct(f"=IIII10xH{FRAME4 - 28}x")  # next_offset, sec, nsec, snaplen, net
_IP4F = struct.Struct(f"!{NET}xBxH5xB2x12sIIBB{FRAME4 - NET - 34}x")
_PORTS4F = struct.Struct(f"!{NET + 20}xHH{FRAME4 - NET - 24}x")


def parse_block(buf: Any, start: int, size: int, ports: Any, add: Add) -> int:
    """The segments of the block at `start` (of `size` bytes) to `add(key, time, from_server,
    flags, seq, ack, payload length)`, as capture.decode reads them; how many were given.
    A packet that is not TCP to or from `ports` is skipped; headers pointing outside the
    block raise ValueError (the caller skips the block)."""
    _, count, off = _BLOCK.unpack_from(buf, start + STATUS_AT)
    end = start + size
    off += start
    n = 0
    if count and off + count * FRAME4 <= end:
        done, n = _fast4(buf, off, count, ports, add)
        count -= done
        off += done * FRAME4
    unpack_pkt, unpack_ip4 = _PACKET.unpack_from, _IP4_TCP.unpack_from
    for _ in range(count):
        if off + 48 > end:
            raise ValueError("a packet header past the block's end")
        nxt, sec, nsec, snap, net = unpack_pkt(buf, off)
        p = off + net
        if p + snap > end:
            raise ValueError("a packet past the block's end")
        if snap >= 40 and buf[p] == 0x45:  # IPv4 without options: decode() inline
            _, total, sport, dport, seq, ack, offset, flags = unpack_ip4(buf, p)
            if buf[p + 9] == 6:
                length = total - 20 - (offset >> 4) * 4
                if dport in ports:
                    add(buf[p + 12 : p + 24], sec + nsec * 1e-9, False, flags, seq, ack, length)
                    n += 1
                elif sport in ports:
                    k = buf[p + 12 : p + 24]
                    key = k[4:8] + k[:4] + k[10:12] + k[8:10]
                    add(key, sec + nsec * 1e-9, True, flags, seq, ack, length)
                    n += 1
        else:
            seg = decode(bytes(buf[p : p + snap]), ports)
            if seg is not None:
                key, srv, flags, seq, ack, length = seg
                add(key, sec + nsec * 1e-9, srv, flags, seq, ack, length)
                n += 1
        if not nxt:
            break  # the block's last packet
        off += nxt
    return n


def decode(data: bytes, ports: Any) -> tuple[bytes, bool, int, int, int, int] | None:
    """(key, from_server, flags, seq, ack, payload length) of an IP + TCP header to or from
    one of `ports`, None otherwise. The key is the 4-tuple as the client's SYN carries it:
    client address, server address, client port, server port (network byte order)."""
    if len(data) < 40:
        return None
    version = data[0] >> 4
    if version == 4:
        ihl = (data[0] & 15) * 4
        if data[9] != 6 or ihl < 20 or len(data) < ihl + 20:
            return None
        sport, dport, seq, ack, offset, flags = _TCP.unpack_from(data, ihl)
        length = ((data[2] << 8) | data[3]) - ihl - (offset >> 4) * 4
        if dport in ports:
            return data[12:20] + data[ihl : ihl + 4], False, flags, seq, ack, length
        if sport in ports:
            key = data[16:20] + data[12:16] + data[ihl + 2 : ihl + 4] + data[ihl : ihl + 2]
            return key, True, flags, seq, ack, length
        return None
    if version == 6 and data[6] == 6 and len(data) >= 60:
        sport, dport, seq, ack, offset, flags = _TCP.unpack_from(data, 40)
        length = ((data[4] << 8) | data[5]) - (offset >> 4) * 4
        if dport in ports:
            return data[8:44], False, flags, seq, ack, length
        if sport in ports:
            key = data[24:40] + data[8:24] + data[42:44] + data[40:42]
            return key, True, flags, seq, ack, length
    return None
