"""The scoreboard: one shared memory area where every worker publishes its numbers.

The master maps it (anonymous, shared) before the first fork, so every worker it ever starts
shares it; it outlives reloads and worker restarts, and /metrics and /status read the whole
server from it whichever worker answers. Apache calls this the scoreboard; nginx keeps its
counters in a shared zone the same way.

Layout, all 8-byte floats (exact integers up to 2**53):
    header   seq · next connection id · started · reloads · worker restarts · generation
    slot 0   the counters of workers that have exited (the master adds each one in)
    slot k   one worker: seq · pid · ordinal · generation · state · started, then its
             Stats row (stats.FLAT_SIZE), then the process groups of its running CGI scripts

One writer per slot (its worker; the master only for slot 0 and for freeing a slot), readers
retry while a writer's seq is odd (a seqlock). A worker writes its slot when it folds its
batches (every 256 exchanges or one sweep tick): never per request.

Connection ids come from here too, a block at a time under a POSIX record lock, so
`$connection` and the status page's ids are unique across workers, as nginx's counter is.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import signal
import tempfile
import time
from array import array
from typing import Any

from .stats import FLAT_SIZE, Stats

SLOTS = 128  # workers alive at once, retiring generations included
PGIDS = 256  # CGI process groups a worker can have recorded at once
HEAD = 16
SLOT_HEAD = 8
SLOT_SIZE = SLOT_HEAD + FLAT_SIZE + PGIDS
ID_BLOCK = 256

FREE, STARTING, SERVING, RETIRING = 0, 1, 2, 3
STATE_NAMES = {STARTING: "starting", SERVING: "serving", RETIRING: "retiring"}
# header fields
_SEQ, _NEXT_ID, _STARTED, _RELOADS, _RESTARTS, _GENERATION = range(6)
# slot fields
_S_SEQ, _S_PID, _S_ORDINAL, _S_GENERATION, _S_STATE, _S_STARTED = range(6)


def _base(slot: int) -> int:
    return HEAD + slot * SLOT_SIZE


class Scoreboard:
    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        size = (HEAD + (slots + 1) * SLOT_SIZE) * 8
        self.mm = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
        self.view = memoryview(self.mm).cast("d")
        self.lock = tempfile.TemporaryFile()  # lockf is per process: forks do not share it
        self.view[_STARTED] = time.time()
        self.view[_NEXT_ID] = 1

    # --- the master ------------------------------------------------------------------------

    def claim(self, ordinal: int, generation: int) -> int:
        """A free slot for a worker about to be forked, or -1 when all are taken."""
        v = self.view
        for slot in range(1, self.slots + 1):
            base = _base(slot)
            if v[base + _S_STATE] == FREE:
                v[base : base + SLOT_SIZE] = array("d", bytes(8 * SLOT_SIZE))
                v[base + _S_ORDINAL] = ordinal
                v[base + _S_GENERATION] = generation
                v[base + _S_STARTED] = time.time()
                v[base + _S_STATE] = STARTING
                return slot
        return -1

    def set_pid(self, slot: int, pid: int) -> None:
        if slot > 0:
            self.view[_base(slot) + _S_PID] = pid

    def release(self, slot: int, killed: bool) -> list[int]:
        """A worker has exited: add its counters to slot 0 and free its slot. Returns the
        process groups of CGI scripts it left running (to kill) when it did not exit by
        itself; its open connections were reset by the kernel and are counted so."""
        if slot <= 0:
            return []
        v = self.view
        base = _base(slot)
        row = v[base + SLOT_HEAD : base + SLOT_HEAD + FLAT_SIZE].tolist()
        groups = [int(g) for g in v[base + SLOT_HEAD + FLAT_SIZE : base + SLOT_SIZE] if g > 0]
        if row[1] > 0:  # its open connections died with it
            row[4] += row[1]
        retired = Stats()
        retired.add_flat(self._row(0))
        retired.add_flat(row, gauges=False)
        v[_SEQ] += 1  # odd: readers wait, so the worker is never counted twice or not at all
        self._write_row(0, retired.flat())
        v[base + _S_STATE] = FREE
        v[_SEQ] += 1
        return groups if killed else []

    def count_reload(self, generation: int) -> None:
        self.view[_RELOADS] += 1
        self.view[_GENERATION] = generation

    def count_restart(self) -> None:
        self.view[_RESTARTS] += 1

    # --- a worker --------------------------------------------------------------------------

    def publish(self, slot: int, stats: Stats | None, state: int | None = None) -> None:
        if slot <= 0:
            return
        v = self.view
        base = _base(slot)
        v[base + _S_SEQ] += 1
        if stats is not None:
            self._write_row(slot, stats.flat())
        if state is not None:
            v[base + _S_STATE] = state
        v[base + _S_SEQ] += 1

    def reserve_ids(self) -> tuple[int, int]:
        """A block of connection ids [first, end) for this process alone."""
        fd = self.lock.fileno()
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            first = int(self.view[_NEXT_ID])
            self.view[_NEXT_ID] = first + ID_BLOCK
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
        return first, first + ID_BLOCK

    def set_group(self, slot: int, index: int, pgid: int) -> None:
        """Record (pgid > 0) or forget (0) a running CGI script's process group."""
        if slot > 0 and 0 <= index < PGIDS:
            self.view[_base(slot) + SLOT_HEAD + FLAT_SIZE + index] = pgid

    # --- readers ---------------------------------------------------------------------------

    def read(self) -> tuple[list[float], list[dict[str, Any]]]:
        """A consistent copy: the header, and every live worker with its Stats row."""
        for _ in range(1000):
            seq = self.view[_SEQ]
            if int(seq) % 2:
                time.sleep(0)
                continue
            copy = memoryview(bytes(self.mm)).cast("d")
            if self.view[_SEQ] != seq:
                continue
            workers = []
            torn = False
            for slot in range(0, self.slots + 1):
                base = _base(slot)
                if slot and copy[base + _S_STATE] == FREE:
                    continue
                if int(copy[base + _S_SEQ]) % 2 or copy[base + _S_SEQ] != self.view[base]:
                    torn = True
                    break
                workers.append(
                    {
                        "slot": slot,
                        "pid": int(copy[base + _S_PID]),
                        "ordinal": int(copy[base + _S_ORDINAL]),
                        "generation": int(copy[base + _S_GENERATION]),
                        "state": STATE_NAMES.get(int(copy[base + _S_STATE]), "exited"),
                        "started": copy[base + _S_STARTED],
                        "row": copy[base + SLOT_HEAD : base + SLOT_HEAD + FLAT_SIZE].tolist(),
                    }
                )
            if not torn:
                return copy[:HEAD].tolist(), workers
        raise RuntimeError("scoreboard: no consistent read")

    def totals(self) -> tuple[Stats, list[dict[str, Any]], dict[str, Any]]:
        """The whole server: summed Stats, the live workers (slot 0 left out), the header."""
        head, rows = self.read()
        total = Stats()
        for entry in rows:
            total.add_flat(entry["row"], gauges=entry["slot"] != 0)
        info = {
            "started_at": head[_STARTED],
            "reloads": int(head[_RELOADS]),
            "worker_restarts": int(head[_RESTARTS]),
            "generation": int(head[_GENERATION]),
        }
        return total, [e for e in rows if e["slot"] != 0], info

    # --- internals -------------------------------------------------------------------------

    def _row(self, slot: int) -> list[float]:
        base = _base(slot) + SLOT_HEAD
        return self.view[base : base + FLAT_SIZE].tolist()

    def _write_row(self, slot: int, row: list[float]) -> None:
        base = _base(slot) + SLOT_HEAD
        self.view[base : base + FLAT_SIZE] = array("d", row)


def kill_groups(groups: list[int]) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
