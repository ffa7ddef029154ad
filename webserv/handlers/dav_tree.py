"""WebDAV's file-system work (for dav.py): directories opened inside a base, PUT's final
rename, recursive removal, and COPY/MOVE of files and trees. Blocking: called in a thread.

Nothing half-made is ever visible under its final name. A copied file or tree is built
under a hidden temporary name (upload's prefix: never served, never listed) in the
destination's directory and renamed into place; a replaced destination is first renamed
aside and removed only once the new one is in place, so a failure (a full disk, a
permission) leaves the old destination as it was and removes the temporary copy. Every step
works relative to directory descriptors whose real path was checked to lie in the base.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat

from ..files import UPLOAD_TEMP_PREFIX, contained
from ..http.errors import HttpError

TEMP_PREFIX = UPLOAD_TEMP_PREFIX
_PROC_FD = "/proc/self/fd/" if os.path.isdir("/proc/self/fd") else None
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def dav_error(exc: OSError, not_found: int, what: str, path: str) -> HttpError:
    """nginx's ngx_http_dav_error: the status an errno means (NOT_FOUND for a missing one)."""
    err = exc.errno
    reason = f'{what} "{path}" failed ({exc.strerror})'
    if err in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
        return HttpError(not_found, reason)
    if err in (errno.EACCES, errno.EPERM):
        return HttpError(403, reason)
    if err == errno.EEXIST:
        return HttpError(405, reason)
    if err in (errno.ENOSPC, errno.EDQUOT):
        return HttpError(507, reason)
    return HttpError(500, reason)


def _real(fd: int, path: str) -> str:
    return os.readlink(_PROC_FD + str(fd)) if _PROC_FD else os.path.realpath(path)


def open_dir(directory: str, base: str, missing_status: int) -> int:
    """An O_DIRECTORY descriptor of DIRECTORY, which must resolve inside BASE (else 403);
    MISSING_STATUS when it does not exist or is not a directory."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError as exc:
        raise dav_error(exc, missing_status, "open()", directory) from None
    if not contained(_real(fd, directory), base):
        os.close(fd)
        raise HttpError(403, f'"{directory}" resolves outside "{base}"')
    return fd


def open_parent(directory: str, base: str, create: bool) -> tuple[int, list[str]]:
    """The deepest existing directory on the way to DIRECTORY and the names still missing
    below it (none unless CREATE: create_full_put_path; else a missing one is a 409)."""
    if not create:
        return open_dir(directory, base, 409), []
    missing: list[str] = []
    current = directory
    while True:
        try:
            fd = open_dir(current, base, 409)
            return fd, missing[::-1]
        except HttpError as exc:
            parent, name = os.path.split(current)
            if exc.status != 409 or not name:
                raise
            if os.path.lexists(current):
                raise  # there, but not a directory
            missing.append(name)
            current = parent


def place_file(temp: str, parent_fd: int, missing: list[str], name: str, dir_mode: int) -> bool:
    """Create the MISSING directories below PARENT_FD, then rename TEMP (in PARENT_FD) to
    NAME in the last of them; True when NAME did not exist before."""
    fd = parent_fd
    try:
        for part in missing:
            try:
                os.mkdir(part, dir_mode, dir_fd=fd)
            except FileExistsError:
                pass  # another request made it meanwhile
            inner = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            if fd != parent_fd:
                os.close(fd)
            fd = inner
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise HttpError(409, f'"{name}" could not be created (is a directory)')
            created = False
        except FileNotFoundError:
            created = True
        os.replace(temp, name, src_dir_fd=parent_fd, dst_dir_fd=fd)
        os.fsync(fd)
        return created
    finally:
        if fd != parent_fd:
            os.close(fd)


def remove(dir_fd: int, name: str, is_dir: bool) -> None:
    if is_dir:
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def forget(ex, path: str) -> None:
    """The open file cache must not serve what was at PATH, or below it."""
    files = ex.conn.worker.files
    files.forget(path)
    below = path + "/"
    for cached in [p for p in getattr(files, "entries", {}) if p.startswith(below)]:
        files.forget(cached)


def _temp_name() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"


def _copy_file(src_fd: int, name: str, dst_fd: int, dst_name: str) -> None:
    """A regular file's bytes, mode and mtime into a new DST_NAME (never an existing one)."""
    fd_in = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        st = os.fstat(fd_in)
        fd_out = os.open(
            dst_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
            stat.S_IMODE(st.st_mode),
            dir_fd=dst_fd,
        )
        try:
            left = st.st_size
            while left > 0:
                sent = os.sendfile(fd_out, fd_in, None, min(left, 1 << 30))
                if sent == 0:
                    break
                left -= sent
            os.fchmod(fd_out, stat.S_IMODE(st.st_mode))
            os.utime(fd_out, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _copy_tree(src_fd: int, dst_fd: int) -> None:
    """Every file and directory of SRC_FD into the empty DST_FD. Symbolic links and special
    files are skipped (nginx skips special files; a link could lead outside the base)."""
    with os.scandir(src_fd) as entries:
        items = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    for name, st in items:
        if name.startswith(TEMP_PREFIX):
            continue
        if stat.S_ISREG(st.st_mode):
            _copy_file(src_fd, name, dst_fd, name)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=dst_fd)
            inner_src = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=src_fd)
            try:
                inner_dst = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dst_fd)
                try:
                    _copy_tree(inner_src, inner_dst)
                    os.chmod(inner_dst, stat.S_IMODE(st.st_mode))
                    os.utime(inner_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(inner_dst)
            finally:
                os.close(inner_src)


class Job:
    """One COPY or MOVE, checked and carried out in a thread (`run`): True for 201 (a
    collection), False for 204 (a file, as nginx answers whether or not it existed)."""

    __slots__ = ("move", "src", "dst", "base", "collection", "overwrite", "shallow")

    def __init__(
        self,
        move: bool,
        src: str,
        dst: str,
        base: str,
        collection: bool,
        overwrite: bool,
        shallow: bool,
    ) -> None:
        self.move, self.src, self.dst, self.base = move, src, dst, base
        self.collection, self.overwrite, self.shallow = collection, overwrite, shallow

    def run(self) -> bool:
        src_dir, src_name = os.path.split(self.src)
        dst_dir, dst_name = os.path.split(self.dst)
        src_fd = open_dir(src_dir, self.base, 404)
        try:
            try:
                dst_fd = open_dir(dst_dir, self.base, 409)
            except HttpError as exc:
                if exc.status != 409:
                    raise
                # RFC 4918 §9.8.5: a missing parent is a 409, once the source is known
                self._check_source(src_fd, src_name)
                raise
            try:
                return self._run(src_fd, src_name, dst_fd, dst_name)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)

    def _check_source(self, src_fd: int, src_name: str) -> os.stat_result:
        try:
            src_st = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
        except OSError as exc:
            raise dav_error(exc, 404, "lstat()", self.src) from None
        is_dir = stat.S_ISDIR(src_st.st_mode)
        if is_dir != self.collection:
            if is_dir:
                raise HttpError(400, f'"{self.src}" is a collection (its URI needs a "/")')
            raise HttpError(404, f'"{self.src}" is not a directory')
        return src_st

    def _run(self, src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> bool:
        try:
            dst_st = os.stat(dst_name, dir_fd=dst_fd, follow_symlinks=False)
        except FileNotFoundError:
            dst_st = None
        except OSError as exc:
            raise dav_error(exc, 404, "lstat()", self.dst) from None
        # nginx's order of checks and its answers (ngx_http_dav_copy_move_handler)
        if dst_st is not None:
            # (a collection may replace a file, as in nginx: "dst/" is looked up as "dst")
            if stat.S_ISDIR(dst_st.st_mode) and not self.collection:
                raise HttpError(409, f'"{self.dst}" is a collection')
            if not self.overwrite:
                raise HttpError(412, f'"{self.dst}" exists and Overwrite is F')
        src_st = self._check_source(src_fd, src_name)
        is_dir = stat.S_ISDIR(src_st.st_mode)
        if not is_dir and not stat.S_ISREG(src_st.st_mode) and not self.move:
            raise HttpError(403, f'"{self.src}" is not a regular file')
        aside = _temp_name() if dst_st is not None else None
        try:
            if self.move:
                self._move(src_fd, src_name, dst_fd, dst_name, is_dir, aside)
            else:
                self._copy(src_fd, src_name, dst_fd, dst_name, is_dir, src_st, aside)
        except OSError as exc:
            raise dav_error(exc, 500, "copy", self.dst) from None
        if aside is not None:
            try:
                remove(dst_fd, aside, stat.S_ISDIR(dst_st.st_mode))
            except OSError:
                pass
        os.fsync(dst_fd)
        return is_dir

    def _swap_in(self, made_fd: int, made: str, dst_fd: int, dst_name: str, aside) -> None:
        if aside is not None:
            os.rename(dst_name, aside, src_dir_fd=dst_fd, dst_dir_fd=dst_fd)
            try:
                os.rename(made, dst_name, src_dir_fd=made_fd, dst_dir_fd=dst_fd)
            except OSError:
                os.rename(aside, dst_name, src_dir_fd=dst_fd, dst_dir_fd=dst_fd)
                raise
        else:
            os.rename(made, dst_name, src_dir_fd=made_fd, dst_dir_fd=dst_fd)

    def _move(self, src_fd, src_name, dst_fd, dst_name, is_dir, aside) -> None:
        try:
            self._swap_in(src_fd, src_name, dst_fd, dst_name, aside)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # another file system: a copy, then the source goes
            st = os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
            self._copy(src_fd, src_name, dst_fd, dst_name, is_dir, st, aside)
            remove(src_fd, src_name, is_dir)

    def _copy(self, src_fd, src_name, dst_fd, dst_name, is_dir, src_st, aside) -> None:
        temp = _temp_name()
        try:
            if is_dir:
                os.mkdir(temp, 0o700, dir_fd=dst_fd)
                if not self.shallow:  # Depth: 0 copies the collection, not its members
                    inner_src = os.open(src_name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=src_fd)
                    try:
                        inner_dst = os.open(temp, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dst_fd)
                        try:
                            _copy_tree(inner_src, inner_dst)
                        finally:
                            os.close(inner_dst)
                    finally:
                        os.close(inner_src)
                os.chmod(temp, stat.S_IMODE(src_st.st_mode), dir_fd=dst_fd)
                os.utime(temp, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), dir_fd=dst_fd)
            else:
                _copy_file(src_fd, src_name, dst_fd, temp)
            self._swap_in(dst_fd, temp, dst_fd, dst_name, aside)
            temp = None
        finally:
            if temp is not None:
                try:
                    remove(dst_fd, temp, is_dir)
                except OSError:
                    pass
