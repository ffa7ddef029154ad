"""auth_basic: the `Authorization: Basic` credentials of a request, checked against a user file.

`credentials(ex)` reads the header as nginx's ngx_http_auth_basic_user does (also behind
$remote_user); `AuthBasic` is one location's realm and user file, used by access.py's phase:
`quick(ex)` decides what needs no waiting — no or malformed credentials, an unknown user, a
cheap hash, a recent success — and says PENDING for a slow one (bcrypt, crypt(3)), which
`verify(ex)` then checks in a small thread pool, never on the event loop.

Recent successes are remembered (SUCCESS_CACHE entries per location, keyed by a SHA-256 of
the stored hash and the credentials, never the password itself), so a browser that sends the
same credentials with every request pays for bcrypt once, not per request. A failure is never
remembered: every wrong guess costs the full hash. Changing a user's hash in the file changes
the key, so a changed password is never accepted from the cache.

Never parses config, never touches sockets.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from .htpasswd import CryptUnavailable, Entry, UserFile, UserFilePerRequest
from .http.errors import HttpError

SUCCESS_CACHE = 256  # remembered successful checks per location
POOL_THREADS = 2  # bcrypt/crypt(3) checks at once, per worker process
POOL_QUEUE = 256  # checks waiting for a thread beyond which the answer is 503
PENDING = "pending"  # quick(): only a slow hash can tell


def credentials(ex) -> tuple[bytes, bytes] | None:
    """(user, password) of the request's `Authorization: Basic`, or None — as nginx reads
    it: "Basic " (any case) then spaces, base64 up to the first "=" with every character
    valid, a non-empty user before the first colon."""
    value = ex.headers.get(b"authorization")
    if value is None or len(value) < 6 or value[:6].lower() != b"basic ":
        return None
    encoded = value[6:].strip(b" \t")  # (the field's trailing blanks are no part of it)
    end = encoded.find(b"=")
    if end >= 0:
        encoded = encoded[:end]
    if not encoded or len(encoded) % 4 == 1:
        return None
    try:
        decoded = binascii.a2b_base64(encoded + b"=" * (-len(encoded) % 4), strict_mode=True)
    except binascii.Error:
        return None
    user, colon, password = decoded.partition(b":")
    if not colon or not user:
        return None
    # nginx hands C strings to crypt: a password ends at its first NUL (user names do not)
    return user, password.partition(b"\0")[0]


def remote_user(ex) -> str:
    """$remote_user: the user name the client sent, checked or not (as nginx)."""
    found = credentials(ex)
    return found[0].decode("utf-8", "surrogateescape") if found is not None else ""


def shown(user: bytes) -> str:
    """A user name as the error log shows it: control bytes and quotes escaped (a name is
    client input: it must not start a new log line)."""
    text = user.decode("utf-8", "backslashreplace")
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c not in '"\\' else repr(c)[1:-1] for c in text)


class AuthBasic:
    """One location's `auth_basic REALM` with its `auth_basic_user_file`."""

    __slots__ = ("realm", "file", "challenge", "successes")

    def __init__(self, realm: str, file: UserFile | UserFilePerRequest) -> None:
        self.realm = realm
        self.file = file
        self.challenge = f'WWW-Authenticate: Basic realm="{realm}"\r\n'.encode(
            "utf-8", "surrogateescape"
        )
        self.successes: OrderedDict[bytes, None] = OrderedDict()

    def refuse(self, reason: str) -> HttpError:
        return HttpError(401, reason, fields=self.challenge)

    def quick(self, ex) -> HttpError | str | None:
        """None: the credentials are right; an HttpError (401, or 500 for a file that cannot
        be read); PENDING: a slow hash must be checked by `verify`."""
        found = credentials(ex)
        if found is None:
            return self.refuse("no user/password was provided for basic authentication")
        file = self.file.current(ex)
        if file.error is not None:
            return HttpError(500, file.error)
        user, password = found
        entry = file.users.get(user)
        if entry is None:
            return self.refuse(f'user "{shown(user)}" was not found in "{file.path}"')
        scheme = entry.scheme
        if scheme == "plain" or scheme == "sha" or scheme == "ssha":
            return None if entry.verify(password) else self.mismatch(user)
        key = _key(entry, user, password)
        if key in self.successes:
            self.successes.move_to_end(key)
            return None
        if entry.slow:
            return PENDING
        if not entry.verify(password):  # MD5-crypt: half a millisecond, as nginx on its loop
            return self.mismatch(user)
        self.remember(key)
        return None

    def mismatch(self, user: bytes) -> HttpError:
        return self.refuse(f'user "{shown(user)}": password mismatch')

    def remember(self, key: bytes) -> None:
        successes = self.successes
        successes[key] = None
        if len(successes) > SUCCESS_CACHE:
            successes.popitem(last=False)

    async def verify(self, ex) -> None:
        """The slow check quick() left PENDING, in the pool; raises 401 on a mismatch."""
        answer = self.quick(ex)  # again: the file may have changed since
        if answer is not PENDING:
            if answer is not None:
                raise answer
            return None
        user, password = credentials(ex)  # type: ignore[misc]
        file = self.file.current(ex)
        entry = file.users[user]
        if POOL.waiting >= POOL_QUEUE:
            raise HttpError(503, "too many password checks waiting for a thread")
        try:
            ok = await POOL.run(entry, password)
        except CryptUnavailable as exc:
            raise HttpError(500, f'user "{shown(user)}": {exc} (in "{file.path}")') from None
        if not ok:
            raise self.mismatch(user)
        self.remember(_key(entry, user, password))
        return None


def _key(entry: Entry, user: bytes, password: bytes) -> bytes:
    material = b"%d:%b:%d:%b:%b" % (len(entry.hash), entry.hash, len(user), user, password)
    return hashlib.sha256(material).digest()


class _Pool:
    """The worker's threads for slow hashes: started on first use (after the fork)."""

    __slots__ = ("executor", "waiting", "pid")

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.waiting = 0
        self.pid = 0

    async def run(self, entry: Entry, password: bytes) -> bool:
        if self.executor is None or self.pid != os.getpid():
            self.executor = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="auth_basic")
            self.pid = os.getpid()
        self.waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, entry.verify, password)
        finally:
            self.waiting -= 1


POOL = _Pool()
