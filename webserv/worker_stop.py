"""How a worker stops serving: a mixin of worker.Worker (its registry, servers and timers).

    QUIT (graceful, and the old generation on a reload)
        stop accepting at once (the sockets stay open in the master: what waits in their
        queues goes to the other workers); answers in flight finish with `Connection:
        close`; an idle keep-alive connection is closed after RETIRE_GRACE, so a request
        the client has already sent is answered, not cut; after `worker_shutdown_timeout`
        (none by default) whatever is left is closed.
    TERM / INT (fast): stop accepting, close every connection, kill every CGI script.

Owns the order of those steps and their grace periods; never closes a listening socket the
master holds (only this process's copy), never waits itself: the worker's run does.
"""

from __future__ import annotations

import signal
from typing import Any

from .framing import IDLE
from .logs import error_log
from .scoreboard import RETIRING

RETIRE_GRACE = 1.0  # an idle keep-alive connection's last chance to send a request
FAST_STOP_GRACE = 1.0  # TERM: what is already written gets this long to leave


class WorkerStopping:
    """The stop half of Worker (worker.py): the attributes it uses are the worker's."""

    __slots__ = ()

    def request_stop(self, signum: int, fast: bool) -> None:
        if self.stopping and (self.fast or not fast):
            return
        how = "exiting" if fast else "gracefully shutting down"
        error_log.notice(f"signal {signal.Signals(signum).name} received, {how}")
        self.stopping = True
        self.fast = fast
        for server in self.servers:
            server.close()  # this process's copy: the master's socket stays open
        self.servers.clear()
        if self.board is not None:
            self.board.publish(self.slot, None, RETIRING)
        if fast:
            for conn in list(self.connections):
                conn.close("shutdown", linger=0)
            self.children.kill_all()
            self.shutdown_timer = self.loop.call_later(FAST_STOP_GRACE, self.cut_all)
        else:
            self.retire_at = self.clock() + RETIRE_GRACE
            timeout = self.config.worker_shutdown_timeout
            if timeout is not None:
                self.shutdown_timer = self.loop.call_later(timeout, self.cut_all)
        if not self.stop_requested.done():
            self.stop_requested.set_result(None)
        if not self.connections and not self.stopped.done():
            self.stopped.set_result(None)

    def close_idle(self) -> None:
        """Retiring: close keep-alive connections with nothing in flight."""
        for conn in list(self.connections):
            if conn.active is None and idle_between_requests(conn):
                conn.close("shutdown")

    def cut_all(self) -> None:
        """Past worker_shutdown_timeout (or the fast stop's grace): close what is left."""
        if self.connections:
            error_log.notice(f"closing {len(self.connections)} connections still open")
        for conn in list(self.connections):
            conn.abort("shutdown")
        self.children.kill_all()
        if not self.stopped.done():
            self.stopped.set_result(None)


def idle_between_requests(conn: Any) -> bool:
    """Nothing being read, answered, queued or written on the connection."""
    return conn.reading == IDLE and not conn.out and not conn.queue and not conn.held
