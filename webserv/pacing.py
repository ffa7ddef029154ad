"""limit_rate: a response body sent at most RATE bytes a second, as nginx's write filter paces.

nginx (ngx_http_write_filter_module.c) lets a response have, at any moment,
    RATE * (seconds since the request started + 1) - (bytes sent - limit_rate_after)
bytes more on the wire, and when that is used up waits until it is not. This is the same
sum, in float seconds, for file parts (sendfile while the socket takes it, else a chunk
through the transport) and bytes alike. It waits on the loop's timer and the writer's flow
control (`drain`), never in a busy loop; the task is the connection's, so a client that goes
away cancels it. Called only for a location with `limit_rate` (writer.send): the others
never come here. Never decides what to send, only when.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from typing import Any

from .http.response import FilePart

CHUNK = 64 * 1024  # at most one transport write at a time


async def send_paced(conn: Any, ex: Any, head: bytes, parts: list[Any], limit: tuple[int, int]):
    rate, after = limit
    transport = conn.transport
    transport.write(head)
    sent = len(head)  # nginx counts the header as sent bytes too
    start = ex.start
    index = 0
    try:
        for index, part in enumerate(parts):  # noqa: B007 (the finally needs it)
            is_file = type(part) is FilePart
            pos = 0
            remaining = part.length if is_file else len(part)
            while remaining:
                allowance = rate * (time.time() - start + 1) - (sent - after)
                if allowance < 1:
                    await asyncio.sleep(-allowance / rate + 0.001)
                    continue
                n = min(int(allowance), remaining, CHUNK)
                if is_file:
                    n = _file_chunk(conn, part, n)
                    if n < 0:
                        return
                else:
                    transport.write(part[pos : pos + n])
                    pos += n
                remaining -= n
                sent += n
                ex.body_bytes_sent += n
                ex.bytes_sent += n
                if conn.write_blocked:
                    await conn.drain()
            if is_file and part.owner is not None:
                part.owner.release()
                parts[index] = b""
    except asyncio.CancelledError:
        raise
    except ConnectionError:
        return
    finally:
        conn.release_parts(p for p in parts[index:] if p)
    conn.task = None
    conn.finish(ex)


def _file_chunk(conn: Any, part: FilePart, n: int) -> int:
    """N bytes (or fewer) of a file part onto the socket: sendfile while it takes them,
    else through the transport. -1 when the connection had to be aborted."""
    sent = -1
    if conn.sendfile and not conn.write_blocked:
        try:
            sent = os.sendfile(conn.fd, part.fd, part.offset, n)
        except BlockingIOError:
            sent = -1
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                conn.sendfile = False  # this pair cannot sendfile: copy from now on
                return _file_chunk(conn, part, n)
            conn.abort(f"sendfile() failed: {exc.strerror}")
            return -1
    if sent < 0:
        try:
            chunk = os.pread(part.fd, n, part.offset)
        except OSError as exc:
            conn.abort(f"pread() failed: {exc.strerror}")
            return -1
        sent = len(chunk)
        conn.transport.write(chunk)
    if sent == 0:
        conn.abort(f'"{getattr(part.owner, "path", "?")}" was truncated while being sent')
        return -1
    part.offset += sent
    part.length -= sent
    return sent
