"""htpasswd user files (auth_basic_user_file): reading them, and checking a password.

A file is parsed as nginx does (`user:hash[:comment]` lines, `#` comments, the first line of
a user wins) and re-read when it changes: `UserFile.current()` looks at the file's identity
(inode, size, mtime) at most once a second, so an edited file is seen within a second and a
request costs no system call. The hash formats are those htpasswd writes and nginx reads:
  - `$2y$` / `$2a$` / `$2b$` bcrypt (`htpasswd -B`), with the `bcrypt` package — slow on
    purpose: `Entry.slow` tells the caller to run it in a thread, never on the event loop;
  - `$apr1$` (`htpasswd -m`) and `$1$`: MD5-crypt, written out below (no maintained library
    does it: passlib is unmaintained);
  - `{SHA}` (`htpasswd -s`), `{SSHA}`, `{PLAIN}`;
  - anything else is handed to the platform's crypt(3) (libcrypt through ctypes: DES from
    `htpasswd -d`, `$5$`, `$6$`, `$y$`...), slow too; where there is no libcrypt such a user
    is refused with a 500 and an error-log line saying why.
Comparisons are constant-time (hmac.compare_digest). Never touches sockets or requests.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import threading
import time
from typing import Any

import bcrypt

RECHECK = 1.0  # seconds between two looks at a user file's identity
_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BCRYPT_PREFIXES = (b"$2y$", b"$2a$", b"$2b$")


class Entry:
    """One user's line: its stored hash, and how to check a password against it."""

    __slots__ = ("hash", "scheme", "slow")

    def __init__(self, stored: bytes) -> None:
        self.hash = stored
        if stored.startswith(BCRYPT_PREFIXES):
            self.scheme, self.slow = "bcrypt", True
        elif stored.startswith(b"$apr1$"):
            self.scheme, self.slow = "apr1", False
        elif stored.startswith(b"$1$"):
            self.scheme, self.slow = "md5", False
        elif stored.startswith(b"{PLAIN}"):
            self.scheme, self.slow = "plain", False
        elif stored.startswith(b"{SHA}"):
            self.scheme, self.slow = "sha", False
        elif stored.startswith(b"{SSHA}"):
            self.scheme, self.slow = "ssha", False
        else:
            self.scheme, self.slow = "crypt", True

    def verify(self, password: bytes) -> bool:
        """Whether PASSWORD matches (raises CryptUnavailable for a crypt(3) hash where the
        platform has no libcrypt). A slow entry must be checked off the event loop."""
        stored, scheme = self.hash, self.scheme
        if scheme == "bcrypt":
            # bcrypt reads 72 bytes at most (libcrypt and htpasswd truncate silently; the
            # bcrypt package >= 5 refuses longer ones instead)
            try:
                return bcrypt.checkpw(password[:72], stored)
            except ValueError:  # a malformed hash in the file
                return False
        if scheme == "apr1" or scheme == "md5":
            magic = b"$apr1$" if scheme == "apr1" else b"$1$"
            salt = stored[len(magic) :].split(b"$", 1)[0]
            return hmac.compare_digest(md5_crypt(password, salt, magic), stored)
        if scheme == "plain":
            return hmac.compare_digest(password, stored[7:])
        if scheme == "sha":
            digest = base64.b64encode(hashlib.sha1(password).digest())
            return hmac.compare_digest(digest, stored[5:])
        if scheme == "ssha":
            try:
                raw = base64.b64decode(stored[6:], validate=True)
            except ValueError:
                return False
            if len(raw) < 20:
                return False
            return hmac.compare_digest(hashlib.sha1(password + raw[20:]).digest(), raw[:20])
        result = libc_crypt(password, stored)
        return result is not None and hmac.compare_digest(result, stored)


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> bytes:
    """Poul-Henning Kamp's MD5-crypt (`$1$`), Apache's `$apr1$` with another magic."""
    salt = salt[:8]
    ctx = hashlib.md5(password + magic + salt)
    final = hashlib.md5(password + salt + password).digest()
    n = len(password)
    while n > 0:
        ctx.update(final[: min(16, n)])
        n -= 16
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for i in range(1000):
        step = hashlib.md5(password if i & 1 else final)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(password)
        step.update(final if i & 1 else password)
        final = step.digest()
    out = bytearray()
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        _to64(out, (final[a] << 16) | (final[b] << 8) | final[c], 4)
    _to64(out, final[11], 2)
    return magic + salt + b"$" + bytes(out)


def _to64(out: bytearray, value: int, count: int) -> None:
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6


# --- crypt(3), where the platform has it -----------------------------------------------------
# Python's `crypt` module is deprecated in 3.11 and gone in 3.13 (PEP 594): libcrypt's
# reentrant crypt_r is called directly, with one work area per thread.


class CryptUnavailable(Exception):
    pass


_CRYPT_DATA_SIZE = 256 * 1024  # > glibc's struct crypt_data (131232) and libxcrypt's (32768)
_crypt_state = threading.local()
_crypt_r = None


def _load_crypt():  # -> the crypt_r function or None
    name = ctypes.util.find_library("crypt")
    for candidate in (name, "libcrypt.so.1", "libcrypt.so.2"):
        if not candidate:
            continue
        try:
            lib = ctypes.CDLL(candidate)
            function = lib.crypt_r
        except (OSError, AttributeError):
            continue
        function.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
        function.restype = ctypes.c_char_p
        return function
    return None


def crypt_available() -> bool:
    global _crypt_r
    if _crypt_r is None:
        _crypt_r = _load_crypt() or False
    return bool(_crypt_r)


def libc_crypt(password: bytes, setting: bytes) -> bytes | None:
    """crypt(3) of PASSWORD with SETTING (a stored hash); None when it refuses the setting."""
    if not crypt_available():
        raise CryptUnavailable("crypt(3) is not available on this platform")
    if b"\0" in password or b"\0" in setting:
        return None
    data = getattr(_crypt_state, "data", None)
    if data is None:
        data = _crypt_state.data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = _crypt_r(password, setting, data)
    if not result or result.startswith(b"*"):  # libxcrypt's failure tokens "*0" / "*1"
        return None
    return result


# --- the file ----------------------------------------------------------------------------------


def parse(text: bytes) -> dict[bytes, Entry]:
    """nginx's reading of a user file: `user:hash[:anything]`, `#` comment lines; the first
    line naming a user is the one that counts."""
    users: dict[bytes, Entry] = {}
    for line in text.replace(b"\r", b"\n").split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        user, colon, rest = line.partition(b":")
        if not colon or not user or user in users:
            continue
        users[user] = Entry(rest.split(b":", 1)[0])
    return users


class UserFile:
    """One auth_basic_user_file, shared by every location of a config that names it."""

    __slots__ = ("path", "users", "error", "identity", "checked")

    def __init__(self, path: str) -> None:
        self.path = path
        self.users: dict[bytes, Entry] = {}
        self.error: str | None = None  # why the file could not be read (answered with 500)
        self.identity: tuple[int, int, int] | None = None
        self.checked = -RECHECK
        self.refresh(time.monotonic())

    def current(self, ex: Any = None) -> UserFile:
        now = time.monotonic()
        if now - self.checked >= RECHECK:
            self.refresh(now)
        return self

    def refresh(self, now: float) -> None:
        self.checked = now
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.users, self.identity = {}, None
            self.error = f'open() "{self.path}" failed ({exc.errno}: {exc.strerror})'
            return
        try:
            st = os.fstat(fd)  # the open file's identity: never a mix of two files
            identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            if identity == self.identity:
                return
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError as exc:
            self.users, self.identity = {}, None
            self.error = f'read() "{self.path}" failed ({exc.errno}: {exc.strerror})'
            return
        finally:
            os.close(fd)
        self.users, self.identity, self.error = parse(b"".join(chunks)), identity, None


class UserFilePerRequest:
    """`auth_basic_user_file` with variables (`$arg_f`, `$host`...): the path is rendered for
    each request (relative to the config file's folder, as a fixed one), and each path's
    UserFile is kept (USER_FILES_KEPT at most, the oldest dropped first) and looked at again
    within a second of a change, as a fixed one is."""

    __slots__ = ("render", "base", "files")

    def __init__(self, render: Any, base: str) -> None:
        self.render = render
        self.base = base
        self.files: dict[str, UserFile] = {}

    def current(self, ex: Any = None) -> UserFile:
        name = self.render(ex)
        path = os.path.normpath(os.path.join(self.base, name)) if name else ""
        file = self.files.get(path)
        if file is None:
            if len(self.files) >= USER_FILES_KEPT:
                del self.files[next(iter(self.files))]
            file = self.files[path] = UserFile(path) if path else _NoFile(path)
            return file
        return file.current()


class _NoFile(UserFile):
    """What an empty rendered path names: nothing, answered with 500 as a missing file is."""

    def refresh(self, now: float) -> None:
        self.checked = now
        self.users, self.identity = {}, None
        self.error = "auth_basic_user_file is empty for this request"


USER_FILES_KEPT = 64  # files named by variables, kept per location
