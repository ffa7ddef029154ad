"""A 200 MiB upload streamed in chunks: the server's resident memory stays flat.

The body is never whole in memory: RequestBody pauses the socket once HIGH_WATER bytes wait
for the disk, and writes run in a thread. The test samples the server's RSS (psutil) while
it sends, and checks the stored bytes by hash. Nothing here is timed.
"""

from __future__ import annotations

import hashlib

import psutil
import pytest
from bodies_support import head, temp_files
from support import RawConn

MIB = 1024 * 1024
TOTAL = 200 * MIB
SEND = 256 * 1024
# headroom over idle (5 MiB measured): thread stacks, buffered chunks, allocator slack;
# with flow control off (HIGH_WATER 1 GiB) the PUT grew by 68 MiB and the form by 22
ALLOWED_GROWTH = 20 * MIB


def _blocks():
    """TOTAL bytes in SEND-sized pieces, each different (a counter in front)."""
    base = bytes(range(256)) * (SEND // 256)
    for i in range(TOTAL // SEND):
        yield i.to_bytes(8, "big") + base[8:]


def _file_sha256(path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@pytest.mark.parametrize("framing", ["content-length", "chunked-form"])
def test_200_mib_upload_keeps_memory_flat(server, framing):
    proc = psutil.Process(server.worker_pid())  # the worker serves; the master only waits
    with RawConn(server.port) as conn:  # warm up: the thread pool, the code paths
        conn.send(head("PUT", "/big/warm.bin", {"Content-Length": 4}) + b"warm")
        assert conn.response()[0] in (201, 204)
    idle = proc.memory_info().rss

    digest = hashlib.sha256()
    samples = []
    boundary = b"mem-boundary-7Q"
    with RawConn(server.port) as conn:
        if framing == "content-length":
            name = "mem-put.bin"
            conn.send(head("PUT", f"/big/{name}", {"Content-Length": TOTAL}))
            wrap = lambda block: block  # noqa: E731
        else:
            name = "mem-form.bin"
            conn.send(
                head(
                    "POST",
                    "/big/",
                    {
                        "Transfer-Encoding": "chunked",
                        "Content-Type": "multipart/form-data; boundary=" + boundary.decode(),
                    },
                )
            )
            part = (
                b"--"
                + boundary
                + b'\r\nContent-Disposition: form-data; name="f"; filename="'
                + name.encode()
                + b'"\r\n\r\n'
            )
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            wrap = lambda block: b"%x\r\n%s\r\n" % (len(block), block)  # noqa: E731
        for i, block in enumerate(_blocks()):
            digest.update(block)
            conn.send(wrap(block))
            if i % 32 == 0:  # every 8 MiB
                samples.append(proc.memory_info().rss)
        if framing != "content-length":
            end = b"\r\n--" + boundary + b"--\r\n"
            conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))
        status, headers, _ = conn.response()
        samples.append(proc.memory_info().rss)
    assert status == 201
    assert headers["location"] == f"/big/{name}"
    assert _file_sha256(server.big / name) == (TOTAL, digest.hexdigest())
    assert not temp_files(server.big)
    peak = max(samples)
    assert peak - idle < ALLOWED_GROWTH, (
        f"RSS grew from {idle / MIB:.1f} MiB to {peak / MIB:.1f} MiB during a "
        f"{TOTAL // MIB} MiB upload"
    )
    (server.big / name).unlink()
