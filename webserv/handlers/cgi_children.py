"""The CGI scripts one worker has running, for one generation: the pid → Child table, the
scoreboard entries that name their process groups (so the master can kill what a killed
worker left behind), and the background tasks nobody awaits (reapers, body feeders).
Never starts, reads or reaps a script itself (cgi_process.py's Child does).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cgi_process import Child


class Children:
    """The CGI scripts one worker has running (pid → Child) and the background tasks nobody
    awaits (reapers, body feeders), for one generation (the cycle holds it).

    The worker kills every group still running when it exits. Each running script's process
    group is also written to the worker's scoreboard slot (`attach`), so that if the worker
    itself is killed, the master kills the groups it left behind.
    """

    def __init__(self) -> None:
        self.live: dict[int, Child] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.board: Any = None
        self.slot = 0
        self.free: list[int] = []
        self.index: dict[int, int] = {}  # pid → its entry in the scoreboard slot

    def attach(self, board: Any, slot: int, entries: int) -> None:
        self.board, self.slot = board, slot
        self.free = list(range(entries - 1, -1, -1))

    def add(self, child: Child) -> None:
        self.live[child.pid] = child
        if self.board is not None and self.free:
            entry = self.free.pop()
            self.index[child.pid] = entry
            self.board.set_group(self.slot, entry, child.pid)

    def remove(self, pid: int) -> None:
        self.live.pop(pid, None)
        entry = self.index.pop(pid, None)
        if entry is not None:
            self.board.set_group(self.slot, entry, 0)
            self.free.append(entry)

    def background(self, coro: Any) -> asyncio.Task[Any]:
        """A task that nobody awaits but that must not be garbage-collected mid-way."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def kill_all(self) -> None:
        """The worker is exiting: no script outlives it (they are in sessions of their own)."""
        for child in list(self.live.values()):
            child.killpg()
