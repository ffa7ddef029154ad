"""One worker: an event loop serving a cycle's listening sockets.

Owns the connection registry, the sweeper (one timer firing every connection deadline), the
batches of finished exchanges and closed records (fold) and publishing them to the
scoreboard, connection ids, the signals' handlers, and the end of the run; how a stop
signal ends the serving is worker_stop.py's (QUIT graceful, TERM / INT fast; USR1 reopens
the logs; HUP is ignored: the master reloads, and a stray one kills nothing).

`worker_process` is what a freshly forked worker runs (server.py runs `serve_worker`
itself with `master_process off;`). It never binds, never forks and never parses a request.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import heapq
import os
import resource
import signal
import time
from typing import Any

from .capture import Capture
from .connection import FOLD_BATCH, Connection
from .control import ControlServer
from .cycle import Cycle, all_locations
from .lifecycle import Lifecycle, Record
from .logs import error_log
from .process import CONTROL_SIGNALS, install_event_loop_policy, set_parent_death_signal
from .proxy_connection import protocol_class
from .scoreboard import PGIDS, SERVING, Scoreboard
from .stats import Stats
from .tls_connection import quiet_handshake_errors
from .worker_stop import WorkerStopping, idle_between_requests

FOLD_SLICE = 64  # closed records retired per loop turn when many close at once
RECLAIM = 32  # idle keep-alive connections closed at once at worker_connections (nginx: 32)
FD_LOG_EVERY = 10.0  # seconds between two "Too many open files" lines
# the cyclic GC's thresholds once serving (CPython's: 700, 10, 10). Nearly everything a
# request or a connection allocates is freed by reference counting (the parser cycle is
# broken at close); a collection mostly walks live connections to find nothing. Rarer
# collections: -6% instructions per `Connection: close` request (callgrind), the same
# keep-alive, and garbage cycles still go within 20,000 allocations.
GC_THRESHOLDS = (20_000, 20, 20)


def _nofile() -> int | None:
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


class Worker(WorkerStopping):
    """One event loop serving every listener of a cycle."""

    def __init__(
        self,
        cycle: Cycle,
        ordinal: int = 0,
        board: Scoreboard | None = None,
        slot: int = 0,
    ) -> None:
        config = cycle.config
        self.cycle = cycle
        self.config = config
        self.ordinal = ordinal  # worker number within its generation (0 ... N-1)
        self.board = board
        self.slot = slot
        self.loop = asyncio.get_running_loop()
        self.clock = self.loop.time
        self.routes = cycle.routes
        self.files = cycle.files
        self.children = cycle.children
        self.connections: set[Connection] = set()
        self.next_id = 1  # connection ids: [next_id, last_id) is this worker's to hand out
        self.last_id = 0 if board is not None else 1 << 62
        self.stopping = False
        self.fast = False
        self.retire_at = 0.0
        self.servers: list[Any] = []
        self.control: ControlServer | None = None
        self.sweeper: asyncio.TimerHandle | None = None
        self.shutdown_timer: asyncio.TimerHandle | None = None
        self.tick = sweep_interval(config)
        self.stop_requested = self.loop.create_future()
        self.stopped = self.loop.create_future()  # stopping, and the last connection closed
        servers = config.servers
        # instrumentation exists only where the configuration asks for it
        wants_stats = any(s.lifecycle for s in servers) or any(
            loc.metrics or loc.status for loc in all_locations(config)
        )
        self.stats: Stats | None = Stats() if wants_stats else None
        # finished exchanges not yet counted in stats or recorded in their connection's record
        self.finished: list[Any] | None = [] if self.stats is not None else None
        self.closed_records: list[tuple[Record, Any]] = []  # closed, not yet retired
        self.lifecycle: Lifecycle | None = None
        if any(s.lifecycle for s in servers):
            self.lifecycle = Lifecycle(max(s.status_history for s in servers), self.stats)
        self.capture: Capture | None = None  # lifecycle_capture on: made in start()
        self.refused = 0  # connections refused at worker_connections since the last warning
        self.reclaimed = 0  # idle keep-alive connections closed to make room, since then
        self.fold_pending = False
        self.out_of_fds = 0  # sweep ticks that found no free descriptor, since the last line
        self.fds_logged = 0.0
        self.probe_fd = -1

    async def start(self) -> None:
        soft = _nofile()
        if soft is not None and self.config.worker_connections > soft:
            # nginx's check: a connection is one descriptor (a file or a CGI script more)
            error_log.warn(
                f"{self.config.worker_connections} worker_connections exceed the open files "
                f"limit of {soft} (ulimit -n): clients beyond it will be reset"
            )
        try:
            self.probe_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.probe_fd = -1
        if self.board is not None:
            self.children.attach(self.board, self.slot, PGIDS)
        if self.lifecycle is not None and any(s.lifecycle_capture for s in self.config.servers):
            self.capture = Capture.start(
                self
            )  # (None, and one warning, without CAP_NET_RAW); before
            # accepting: a connection accepted before it would miss its handshake's segments
        if any(listener.tls for listener in self.config.listeners):
            quiet_handshake_errors(self.loop)
        for listener, sock in self.cycle.sockets_for(self.ordinal):
            protocol = protocol_class(listener)  # (tls_connection.py, proxy_connection.py)
            server = await self.loop.create_server(
                lambda listener=listener, protocol=protocol: protocol(self, listener),
                sock=sock,
                backlog=511,
            )
            self.servers.append(server)
        if self.board is not None and (self.stats is not None or self.lifecycle is not None):
            self.control = await ControlServer.start(self)
        self.sweeper = self.loop.call_later(self.tick, self.sweep)
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.request_stop, signum, True)
        self.loop.add_signal_handler(signal.SIGQUIT, self.request_stop, signal.SIGQUIT, False)
        self.loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
        self.loop.add_signal_handler(signal.SIGHUP, self.stray_hup)
        # blocked since before the fork (master.CONTROL_SIGNALS): what came early arrives now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
        if self.board is not None:
            self.board.publish(self.slot, self.stats, SERVING)

    # --- connections -----------------------------------------------------------------------

    def connection_opened(self, conn: Connection) -> bool:
        if len(self.connections) >= self.config.worker_connections and not self.reclaim():
            if not self.refused:
                error_log.warn(
                    f"{self.config.worker_connections} worker_connections are not enough"
                )
            self.refused += 1
            conn.closed_by, conn.close_reason = "server", "worker_connections"
            conn.transport.close()
            return False
        if self.next_id >= self.last_id:
            # a block of ids unique across workers (one lock per block, not per connection)
            self.next_id, self.last_id = self.board.reserve_ids()
        conn.id = self.next_id
        self.next_id += 1
        self.connections.add(conn)
        now = conn.started = time.time()  # (keepalive_time, $connection_time)
        lifecycle = self.lifecycle
        if lifecycle is not None and conn.group.default.lifecycle:
            conn.record = Record(conn, conn.raw_socket(), now)
            if self.capture is not None and conn.group.default.lifecycle_capture:
                self.capture.attach(conn.record, conn)
            conn.tcp_every = conn.group.default.request_tcpinfo
            lifecycle.accepted += 1
            if self.stats is not None:
                self.stats.connection_opened(now)
        elif self.stats is not None:
            self.stats.connection_opened(now)
        return True

    def reclaim(self) -> bool:
        """At worker_connections: close the oldest idle keep-alive connections (a few at a
        time, as nginx does) so the new one can be served; never one with a request in
        progress or a response going out. False when there is none to close."""
        idle = [
            c
            for c in self.connections
            if c.timeout_kind == "keepalive" and c.active is None and idle_between_requests(c)
        ]
        if not idle:
            return False
        count = max(1, min(RECLAIM, self.config.worker_connections // 32))
        # oldest deadline first; the clock ticks in ms, so ties go to the older id
        oldest = heapq.nsmallest(count, idle, key=lambda c: (c.deadline, c.id))
        for conn in oldest:
            conn.close("reclaimed at worker_connections", linger=0)
            self.connections.discard(conn)  # its room is free now; connection_lost follows
        if not self.reclaimed:
            error_log.warn(
                f"{self.config.worker_connections} worker_connections are not enough, "
                "closing idle keep-alive connections"
            )
        self.reclaimed += len(oldest)
        return True

    def fold_slice(self) -> None:
        self.fold_pending = False
        self.fold(FOLD_SLICE)
        if self.closed_records:
            self.fold_pending = True
            self.loop.call_soon(self.fold_slice)

    def fold(self, limit: int | None = None) -> None:
        """Count finished exchanges and closed connections, fill and retire their records.

        The hot path only appends to two lists: the same work, done here in one loop a
        batch (or a timer tick) at a time, costs a fraction of what it costs spread
        between requests (measured: +0.5 µs a request instead of +3.5). The result goes
        to the scoreboard in one copy, for whichever worker answers /metrics. With a
        `limit`, at most that many closed records are retired (a lifecycle_log line each
        is ~50 µs): when thousands close at once, the rest wait for the next loop turns
        and the requests of other connections go first.
        """
        finished = self.finished
        if finished:
            self.stats.requests_done(finished)
            for ex in finished:
                record = ex.conn.record
                if record is not None:
                    record.request_done(ex)
            finished.clear()
        closed = self.closed_records
        capture = self.capture
        if closed or capture is not None:
            batch = closed if limit is None or len(closed) <= limit else closed[:limit]
            done = len(batch)
            if capture is not None:  # records whose close is still on the wire wait a little
                batch = capture.settle(batch)
            if batch:
                self.lifecycle.retire(batch)
            del closed[:done]
        if self.board is not None and self.stats is not None:
            self.board.publish(self.slot, self.stats)

    def connection_closed(self, conn: Connection) -> None:
        if not conn.id:
            return  # refused at once (worker_connections): never counted as open
        self.connections.discard(conn)
        record = conn.record
        if record is not None:
            # the kernel's numbers now, while the socket exists; the rest in the next fold
            record.close(conn, conn.raw, time.time())  # made with the record
            self.closed_records.append((record, conn.group.default.lifecycle_log))
            if len(self.closed_records) >= FOLD_BATCH and not self.fold_pending:
                # many closed at once: retire them a slice per loop turn, not all in this one
                self.fold_pending = True
                self.loop.call_soon(self.fold_slice)
        elif self.stats is not None:
            self.stats.connection_closed(conn.closed_by)
        if self.stopping and not self.connections and not self.stopped.done():
            self.stopped.set_result(None)

    def sweep(self) -> None:
        """Fire every passed deadline; one timer for all connections, not one each."""
        # counters, records and the lifecycle log never lag more than a tick (a burst of
        # closes is retired by fold_slice, a slice per loop turn)
        self.fold(None if len(self.closed_records) <= FOLD_SLICE else FOLD_SLICE)
        now = self.clock()
        for conn in [c for c in self.connections if 0.0 < c.deadline <= now]:
            try:
                conn.on_timeout()
            except Exception as exc:  # one broken connection must not stop the sweeper
                error_log.error(f"timeout handling failed: {exc!r}", conn.id)
                conn.transport.abort()
        if self.stopping and now >= self.retire_at:
            self.close_idle()
        if self.refused:
            if self.refused > 1:
                error_log.warn(
                    f"{self.refused - 1} more connections refused: "
                    f"{self.config.worker_connections} worker_connections are not enough"
                )
            self.refused = 0
        if self.reclaimed:
            error_log.info(f"{self.reclaimed} idle keep-alive connections closed to make room")
            self.reclaimed = 0
        self.check_descriptors(now)
        self.sweeper = self.loop.call_later(self.tick, self.sweep)

    def check_descriptors(self, now: float) -> None:
        """Out of file descriptors, the event loop's accept() resets each new client (libuv
        closes them at once) and says nothing: a probe per tick says it, at most every
        FD_LOG_EVERY seconds, as nginx logs "accept() failed (24: Too many open files)"."""
        if self.probe_fd < 0:
            return
        try:
            os.close(os.dup(self.probe_fd))
            return
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                return
        self.out_of_fds += 1
        if now - self.fds_logged >= FD_LOG_EVERY:
            error_log.log(
                "crit",
                f"accept() failed (24: Too many open files): {len(self.connections)} "
                f"connections open, open files limit {_nofile()}; new clients are reset until "
                f"descriptors free up (seen in {self.out_of_fds} checks; raise `ulimit -n`)",
            )
            self.fds_logged = now
            self.out_of_fds = 0

    def reopen_logs(self) -> None:
        self.cycle.reopen_logs()
        error_log.notice("signal SIGUSR1 received, logs reopened")  # in the new file

    def stray_hup(self) -> None:
        if self.config.master_process:
            error_log.info("signal SIGHUP received by a worker, ignored (the master reloads)")
        else:
            error_log.warn(
                "signal SIGHUP received, ignored: reloading needs the master process "
                "(master_process off)"
            )

    async def run(self) -> None:
        """Serve until told to stop, then end as that stop asks."""
        await self.stop_requested
        await self.stopped
        for conn in list(self.connections):
            conn.abort("shutdown")
        self.children.kill_all()
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.shutdown_timer is not None:
            self.shutdown_timer.cancel()
        await asyncio.sleep(0)  # let the aborted connections report their loss
        self.fold()  # the last records into the lifecycle log before it closes
        if self.capture is not None:
            held = self.capture.close()
            if held:
                self.lifecycle.retire(held)
        if self.control is not None:
            self.control.close()
        self.cycle.close_logs()
        self.files.clear()
        error_log.notice("exit")


def sweep_interval(config: Any) -> float:
    """A tenth of the shortest configured timeout, between 50 ms and 1 s."""
    timeouts = [60.0] + [server.client_header_timeout for server in config.servers]
    for loc in all_locations(config):
        timeouts += [loc.keepalive_timeout or 60.0, loc.client_body_timeout, loc.send_timeout]
    return min(1.0, max(0.05, min(t for t in timeouts if t > 0) / 10))


def worker_process(
    cycle: Cycle, ordinal: int, board: Scoreboard | None, slot: int, ready_fd: int
) -> int:
    """In a freshly forked worker: serve the cycle until told to stop."""
    master = os.getppid()
    set_parent_death_signal(signal.SIGQUIT)  # the master died: drain and exit
    if os.getppid() != master:
        return 0
    cycle.activate()
    install_event_loop_policy()
    asyncio.run(serve_worker(cycle, ordinal, board, slot, ready_fd))
    return 0


async def serve_worker(
    cycle: Cycle, ordinal: int, board: Scoreboard | None, slot: int, ready_fd: int
) -> None:
    worker = Worker(cycle, ordinal, board, slot)
    await worker.start()
    gc.freeze()  # what start-up made stays: never walked again
    gc.set_threshold(*GC_THRESHOLDS)
    if ready_fd >= 0:
        os.write(ready_fd, b"R")  # accepting now; the pipe's EOF tells the master we exited
    await worker.run()
