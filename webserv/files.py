"""Opening served files safely, and the open file cache.

A file is opened first and then `fstat`ed through its descriptor, so the metadata and the
bytes sent always belong to the same file (aiohttp#8013 served a mix after stat-then-open).
An upload's temporary file (UPLOAD_TEMP_PREFIX) is never opened for a client. After
opening, the descriptor's real path (/proc/self/fd) must lie below the location's real root: a symlink that points out of the root is refused, without a race between the
check and the open. The cache keeps descriptors and their header lines for
`open_file_cache_valid` seconds; writes made through webserv invalidate entries at once.
A cached file of at most SMALL_FILE bytes also keeps its bytes, read once when it is opened:
its answer is one write of header and body, where sendfile would cost a second system call
(and more time than the copy) for so few bytes. They are revalidated with the descriptor.
One FileCache per generation: the cycle owns it (a reload starts with an empty one).
"""

from __future__ import annotations

import errno
import os
import stat
import time

from .http.dates import http_date
from .http.errors import HttpError

UPLOAD_TEMP_PREFIX = ".webserv-upload-"  # an upload being written (handlers/upload.py)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_PROC_FD = "/proc/self/fd/" if os.path.isdir("/proc/self/fd") else None
# files up to this size are answered from memory once cached (see FileCache.get): for 1 KiB
# one write instead of send + sendfile was -7% instructions a request (README "Speed"); a
# 64 KiB file keeps sendfile (at 1.03x nginx's requests per CPU-second)
SMALL_FILE = 16 * 1024


class OpenFile:
    """An open regular file (or a directory's metadata) with its precomputed validators."""

    __slots__ = (
        "base_ok",
        "path",
        "fd",
        "size",
        "mtime",
        "ino",
        "dev",
        "mtime_ns",
        "is_dir",
        "etag",
        "last_modified",
        "checked",
        "used",
        "users",
        "cached",
        "fields",
        "fields_types",
        "real",
        "data",
    )

    def __init__(self, path: str, fd: int, st: os.stat_result, now: float) -> None:
        self.path = path
        self.fd = fd
        self.size = st.st_size
        self.mtime = int(st.st_mtime)
        self.mtime_ns = st.st_mtime_ns
        self.ino = st.st_ino
        self.dev = st.st_dev
        self.is_dir = stat.S_ISDIR(st.st_mode)
        # nginx's shape: last-modified seconds and size in hex; strong (same bytes, same tag)
        self.etag = f'"{self.mtime:x}-{self.size:x}"'
        self.last_modified = http_date(self.mtime)
        self.checked = now
        self.used = now
        self.users = 0  # responses still sending from fd
        self.cached = False
        self.fields = b""  # header lines for a 200, built for the location in fields_types
        self.fields_types: object = None
        self.real = path  # where the descriptor really points (symlinks resolved)
        self.base_ok: str | None = None
        self.data: bytes | None = None  # the whole file, for a cached small one

    def release(self) -> None:
        """A response is done with fd: close it unless the cache still holds it."""
        self.users -= 1
        if self.users <= 0 and not self.cached and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def contained(real: str, base_real: str) -> bool:
    return real == base_real or real.startswith(
        base_real if base_real.endswith("/") else base_real + "/"
    )


def open_file(path: str, base_real: str, now: float) -> OpenFile:
    """Open PATH for serving; HttpError 404/403 when it is missing, unreadable or outside."""
    if "\x00" in path:
        raise HttpError(404, "NUL in path")
    if UPLOAD_TEMP_PREFIX in path and os.path.basename(path).startswith(UPLOAD_TEMP_PREFIX):
        raise HttpError(404, f'"{path}" is an upload in progress')  # its bytes are not whole
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _http_error(exc, path) from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise HttpError(403, f'"{path}" is not a regular file')
        # O_NONBLOCK (which keeps a FIFO from hanging the open) stays: on a regular file
        # it changes nothing for pread and sendfile (benchmarks/bench_sendfile.py: 0.95–1.05)
        real = os.readlink(_PROC_FD + str(fd)) if _PROC_FD else os.path.realpath(path)
        if not contained(real, base_real):
            raise HttpError(403, f'"{path}" resolves to "{real}", outside "{base_real}"')
    except BaseException:
        os.close(fd)
        raise
    entry = OpenFile(path, fd, st, now)
    entry.real = real
    entry.base_ok = base_real
    return entry


def _http_error(exc: OSError, path: str) -> HttpError:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
        return HttpError(404, f'open() "{path}" failed ({exc.errno}: {exc.strerror})')
    if exc.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
        return HttpError(403, f'open() "{path}" failed ({exc.errno}: {exc.strerror})')
    return HttpError(500, f'open() "{path}" failed ({exc.errno}: {exc.strerror})')


class FileCache:
    """path → OpenFile, revalidated with one `stat` every `valid` seconds."""

    def __init__(self) -> None:
        self.entries: dict[str, OpenFile] = {}
        self.last_sweep = 0.0

    def get(
        self, path: str, base_real: str, limits: tuple[int, float] | None, valid: float
    ) -> OpenFile:
        now = time.monotonic()
        if limits is None:
            entry = open_file(path, base_real, now)
            entry.users = 1  # closed by release() when its response is done
            return entry
        entry = self.entries.get(path)
        if entry is not None:
            if now - entry.checked <= valid or self._still_same(entry, now):
                # one path can be reached through locations with different roots (alias):
                # an entry opened for one must still stay inside this one's root
                if entry.base_ok is not base_real:
                    if not contained(entry.real, base_real):
                        raise HttpError(
                            403, f'"{path}" resolves to "{entry.real}", outside "{base_real}"'
                        )
                    entry.base_ok = base_real  # the last root it was checked against
                entry.used = now
                entry.users += 1
                return entry
            self._drop(path)
        entry = open_file(path, base_real, now)
        max_entries, inactive = limits
        if now - self.last_sweep > min(inactive, 10.0):
            self.sweep(now, inactive)
        if len(self.entries) >= max_entries:
            self._drop(next(iter(self.entries)))  # the oldest inserted: cheap, close to LRU
        entry.cached = True
        entry.users = 1
        if 0 < entry.size <= SMALL_FILE and not entry.is_dir:
            try:
                data = os.pread(entry.fd, entry.size, 0)
            except OSError:
                data = None
            if data is not None and len(data) == entry.size:  # (else it is changing: sendfile)
                entry.data = data
        self.entries[path] = entry
        return entry

    def _still_same(self, entry: OpenFile, now: float) -> bool:
        try:
            st = os.stat(entry.path)
        except OSError:
            return False
        if (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) != (
            entry.ino,
            entry.dev,
            entry.size,
            entry.mtime_ns,
        ):
            return False
        entry.checked = now
        return True

    def _drop(self, path: str) -> None:
        entry = self.entries.pop(path, None)
        if entry is not None:
            entry.cached = False
            if entry.users <= 0 and entry.fd >= 0:
                os.close(entry.fd)
                entry.fd = -1

    def forget(self, path: str) -> None:
        """webserv itself changed PATH (PUT, DELETE, upload): never serve the old one."""
        self._drop(path)
        parent = os.path.dirname(path.rstrip("/"))
        self._drop(parent)
        self._drop(parent + "/")

    def sweep(self, now: float, inactive: float) -> None:
        self.last_sweep = now
        for path in [p for p, e in self.entries.items() if now - e.used > inactive]:
            self._drop(path)

    def clear(self) -> None:
        for path in list(self.entries):
            self._drop(path)
