"""Files being written: a hidden temporary file in its final directory that becomes a real
one only when whole (PendingFile), and the thread calls that write it. Shared by uploads
(upload.py) and WebDAV's PUT (dav.py).

A temporary file's name starts with TEMP_PREFIX and the writing process's pid: hidden from
autoindex, never served or deleted over HTTP, removed on every failure, and by the master
for a worker that was killed. Every name is relative to an open directory descriptor.
"""

from __future__ import annotations

import errno
import os
import secrets
from typing import Any

from ..blocking import in_thread
from ..files import UPLOAD_TEMP_PREFIX
from ..http.errors import HttpError

TEMP_PREFIX = UPLOAD_TEMP_PREFIX


class PendingFile:
    """A temporary file in its final directory; blocking calls are made from a thread."""

    __slots__ = ("dir_fd", "temp", "fd", "size", "client_name")

    def __init__(self, dir_fd: int, client_name: str = "") -> None:
        self.dir_fd = dir_fd
        self.temp = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        self.fd = os.open(
            self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=dir_fd
        )
        self.size = 0
        self.client_name = client_name

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def seal(self) -> None:
        """Flush to the disk and close: the bytes are safe before the file gets a name."""
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1

    def link_new(self, name: str) -> str:
        """Give the file NAME, or NAME-1, NAME-2... if taken; never replace anything."""
        stem, ext = os.path.splitext(name)
        for attempt in range(1000):
            candidate = name if attempt == 0 else f"{stem}-{attempt}{ext}"
            try:
                os.link(
                    self.temp,
                    candidate,
                    src_dir_fd=self.dir_fd,
                    dst_dir_fd=self.dir_fd,
                    follow_symlinks=False,
                )
            except FileExistsError:
                continue
            os.unlink(self.temp, dir_fd=self.dir_fd)
            return candidate
        raise HttpError(409, f'no free name for "{name}"')

    def replace(self, name: str) -> bool:
        """Atomically put the file at NAME; True when NAME did not exist before."""
        try:
            os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False)
            created = False
        except FileNotFoundError:
            created = True
        os.replace(self.temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        return created

    def discard(self) -> None:
        """Close and remove the temp file; called in the event loop, not in a thread.

        Awaiting a thread job here could itself be cancelled: on a graceful stop the
        handler is cancelled twice (connection lost, then the loop's own shutdown), which
        interrupted the job before it started and left the temp file behind. Closing and
        unlinking are quick, and this is the failure path only.
        """
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.temp, dir_fd=self.dir_fd)
        except OSError:
            pass


def _disk_error(exc: OSError) -> HttpError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HttpError(507, f"no space left for the upload ({exc.strerror})")
    return HttpError(500, f"writing the upload failed ({exc.strerror})")


async def _in_thread(func: Any, *args: Any) -> Any:
    """A blocking file call in a thread (blocking.in_thread: a cancellation waits for it to
    end, so PendingFile.discard never closes a descriptor a thread still writes to); a
    disk error becomes the HTTP error it means."""
    try:
        return await in_thread(func, *args)
    except OSError as exc:
        raise _disk_error(exc) from None
