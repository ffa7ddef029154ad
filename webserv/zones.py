"""Shared memory zones for limit_req and limit_conn: one table per zone, seen by every worker.

A zone is an anonymous shared mmap made when the configuration is loaded — in the master,
before it forks a worker — so every worker of every generation forked afterwards shares
it, as nginx's shared zones are shared. Its SIZE (`zone=NAME:SIZE`) bounds it: the table
never grows.

Layout (little-endian):
    header   64 bytes: eight int64 counters (what the zone decided, see RESULTS)
    buckets  BUCKET_SLOTS entries each, an entry 40 bytes:
             key (24 bytes: its length, then the key, or 255 then a 23-byte BLAKE2b digest
             of a longer key; a first byte 0 marks a free entry) · a · b (int64 each)
             limit_req:  a = excess in milli-requests, b = `last` (ms, CLOCK_MONOTONIC)
             limit_conn: a = requests being processed, b = unused

A key hashes (CRC-32, the same in every process) to one bucket and lives in one of its
entries. One POSIX record lock (fcntl, per process: forks do not share it) guards the whole
zone: a limited request takes it once per zone, reads its bucket and writes one entry.

When a bucket is full, a new limit_req key takes an entry whose excess has drained to 0
(forgetting it changes nothing: a new state starts at 0), else the bucket's least recently
used one (nginx evicts the zone's LRU state). limit_conn never evicts a count in use: a new
key that finds its bucket full is refused (nginx refuses when its zone is full too).

Zones are kept by (kind, name, size, key) in a weak registry: a reload that declares the
same zone again gets the same memory, so its state goes on; one that changes any of these
gets a fresh zone. Never decides what a limit means (limits.py does) and never logs.
"""

from __future__ import annotations

import fcntl
import mmap
import struct
import tempfile
import weakref
import zlib
from hashlib import blake2b

HEADER = 64
ENTRY = 40
KEY = 24
BUCKET_SLOTS = 8
BUCKET = ENTRY * BUCKET_SLOTS
MIN_SIZE = 8 * 4096  # nginx: a zone of less than 8 pages "is too small"

# counters in the header, by result
RESULTS = ("passed", "delayed", "rejected", "delayed_dry_run", "rejected_dry_run", "full")
PASSED, DELAYED, REJECTED, DELAYED_DRY_RUN, REJECTED_DRY_RUN, FULL = range(6)

_ENTRY = struct.Struct("<24sqq")
_VALUES = struct.Struct("<qq")
_COUNTER = struct.Struct("<q")
_FREE = b"\0"

# limit_req answers (nginx's NGX_OK / NGX_AGAIN / NGX_BUSY)
OK, AGAIN, BUSY = 0, 1, 2


def stored_key(key: bytes) -> bytes:
    """The 24 bytes an entry holds for KEY (never starts with a 0 byte)."""
    if len(key) < KEY:
        return bytes((len(key) + 1,)) + key + bytes(KEY - 1 - len(key))
    return b"\xff" + blake2b(key, digest_size=KEY - 1).digest()


class Zone:
    """One shared table. `kind` is "limit_req" or "limit_conn"."""

    __slots__ = ("kind", "name", "size", "key_text", "mm", "buckets", "lock_fd", "_lock_file",
                 "__weakref__")  # fmt: skip

    def __init__(self, kind: str, name: str, size: int, key_text: str) -> None:
        self.kind, self.name, self.size, self.key_text = kind, name, size, key_text
        self.mm = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
        self.buckets = (size - HEADER) // BUCKET
        self._lock_file = tempfile.TemporaryFile()
        self.lock_fd = self._lock_file.fileno()

    # --- the lock -----------------------------------------------------------------------

    def _lock(self) -> None:
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)

    def _count(self, result: int) -> None:
        offset = result * 8
        (n,) = _COUNTER.unpack_from(self.mm, offset)
        _COUNTER.pack_into(self.mm, offset, n + 1)

    def count(self, result: int) -> None:
        self._lock()
        try:
            self._count(result)
        finally:
            self._unlock()

    def counters(self) -> dict[str, int]:
        values = struct.unpack_from("<8q", self.mm, 0)
        return dict(zip(RESULTS, values, strict=False))

    # --- the table ----------------------------------------------------------------------

    def _find(self, skey: bytes) -> tuple[int, int]:
        """(offset of SKEY's entry or -1, the bucket's offset)."""
        base = HEADER + (zlib.crc32(skey) % self.buckets) * BUCKET
        data = self.mm[base : base + BUCKET]
        i = data.find(skey)
        while i >= 0:
            if i % ENTRY == 0:
                return base + i, base
            i = data.find(skey, i + 1)
        return -1, base

    def _free_entry(self, base: int) -> int:
        mm = self.mm
        for offset in range(base, base + BUCKET, ENTRY):
            if mm[offset] == 0:
                return offset
        return -1

    # --- limit_req: nginx's leaky bucket (ngx_http_limit_req_lookup / _account) -----------

    def req_lookup(
        self, key: bytes, now: int, rate: int, burst: int, delay: int, account: bool, dry: bool
    ) -> tuple[int, int]:
        """(OK | AGAIN | BUSY, excess) for one more request of KEY at NOW (ms); RATE in
        milli-requests a second, BURST and DELAY in milli-requests. With ACCOUNT the new
        excess is stored (OK); without, it is only checked (AGAIN) and limits.py accounts
        it later (req_account). What it decided is counted (BUSY, OK), dry runs apart."""
        skey = stored_key(key)
        mm = self.mm
        self._lock()
        try:
            offset, base = self._find(skey)
            if offset >= 0:
                old, last = _VALUES.unpack_from(mm, offset + KEY)
                ms = now - last
                if ms < -60000:
                    ms = 1
                elif ms < 0:
                    ms = 0
                excess = old - rate * ms // 1000 + 1000
                if excess < 0:
                    excess = 0
                if excess > burst:
                    self._count(REJECTED_DRY_RUN if dry else REJECTED)
                    return BUSY, excess
                if not account:
                    return AGAIN, excess
                _VALUES.pack_into(mm, offset + KEY, excess, now if ms else last)
                self._count_pass(excess, delay, rate, dry)
                return OK, excess
            offset = self._free_entry(base)
            if offset < 0:
                offset = self._evict(base, now, rate)
            _ENTRY.pack_into(mm, offset, skey, 0, now)
            if not account:
                return AGAIN, 0
            self._count(PASSED)
            return OK, 0
        finally:
            self._unlock()

    def _evict(self, base: int, now: int, rate: int) -> int:
        """A full bucket's entry for a new key: one drained to 0, else the least recent."""
        oldest, oldest_last = base, None
        for offset in range(base, base + BUCKET, ENTRY):
            excess, last = _VALUES.unpack_from(self.mm, offset + KEY)
            ms = abs(now - last)
            if excess - rate * ms // 1000 <= 0:
                return offset
            if oldest_last is None or last < oldest_last:
                oldest, oldest_last = offset, last
        return oldest

    def _count_pass(self, excess: int, delay: int, rate: int, dry: bool) -> None:
        if excess <= delay or (excess - delay) * 1000 // rate == 0:
            self._count(PASSED)
        else:
            self._count(DELAYED_DRY_RUN if dry else DELAYED)

    def req_account(self, key: bytes, now: int, rate: int, delay: int, dry: bool) -> int:
        """Store one more request of KEY (looked up before without ACCOUNT): its excess."""
        skey = stored_key(key)
        mm = self.mm
        self._lock()
        try:
            offset, base = self._find(skey)
            if offset < 0:  # evicted since the lookup: it starts again
                offset = self._free_entry(base)
                if offset < 0:
                    offset = self._evict(base, now, rate)
                _ENTRY.pack_into(mm, offset, skey, 0, now)
                self._count(PASSED)
                return 0
            old, last = _VALUES.unpack_from(mm, offset + KEY)
            ms = now - last
            if ms < -60000:
                ms = 1
            elif ms < 0:
                ms = 0
            excess = old - rate * ms // 1000 + 1000
            if excess < 0:
                excess = 0
            _VALUES.pack_into(mm, offset + KEY, excess, now if ms else last)
            self._count_pass(excess, delay, rate, dry)
            return excess
        finally:
            self._unlock()

    def req_state(self, key: bytes) -> tuple[int, int] | None:
        """(excess, last) stored for KEY, or None (for tests and the status page)."""
        offset, _ = self._find(stored_key(key))
        return _VALUES.unpack_from(self.mm, offset + KEY) if offset >= 0 else None

    # --- limit_conn: requests being processed per key ------------------------------------

    def conn_acquire(self, key: bytes, limit: int, dry: bool) -> int:
        """One more request of KEY if fewer than LIMIT are being processed: PASSED; else
        REJECTED; FULL when the key has no entry and its bucket has none free. Counted
        (a dry run's refusal as rejected_dry_run); the caller releases what it acquired."""
        skey = stored_key(key)
        mm = self.mm
        self._lock()
        try:
            offset, base = self._find(skey)
            if offset >= 0:
                n, extra = _VALUES.unpack_from(mm, offset + KEY)
                if n >= limit:
                    self._count(REJECTED_DRY_RUN if dry else REJECTED)
                    return REJECTED
                _VALUES.pack_into(mm, offset + KEY, n + 1, extra)
            else:
                offset = self._free_entry(base)
                if offset < 0:
                    self._count(FULL)
                    return FULL
                _ENTRY.pack_into(mm, offset, skey, 1, 0)
            self._count(PASSED)
            return PASSED
        finally:
            self._unlock()

    def conn_release(self, key: bytes) -> None:
        skey = stored_key(key)
        mm = self.mm
        self._lock()
        try:
            offset, _ = self._find(skey)
            if offset < 0:
                return
            n, extra = _VALUES.unpack_from(mm, offset + KEY)
            if n <= 1:
                mm[offset : offset + ENTRY] = bytes(ENTRY)  # the entry is free again
            else:
                _VALUES.pack_into(mm, offset + KEY, n - 1, extra)
        finally:
            self._unlock()

    def conn_count(self, key: bytes) -> int:
        offset, _ = self._find(stored_key(key))
        return _VALUES.unpack_from(self.mm, offset + KEY)[0] if offset >= 0 else 0


_REGISTRY: weakref.WeakValueDictionary[tuple[str, str, int, str], Zone] = (
    weakref.WeakValueDictionary()
)


def zone(kind: str, name: str, size: int, key_text: str) -> Zone:
    """The zone so declared: the one a previous load made if it is still alive (a reload
    keeps its state), else a new one."""
    ident = (kind, name, size, key_text)
    found = _REGISTRY.get(ident)
    if found is None:
        found = _REGISTRY[ident] = Zone(kind, name, size, key_text)
    return found
