"""The master process: holds the sockets, starts and restarts workers, turns signals into
actions, and never serves a request.

nginx's model (src/os/unix/ngx_process_cycle.c). The master has built the first cycle —
configuration loaded, every address bound, logs opened — before any worker starts; it
writes the pid file, forks `worker_processes` workers over the cycle's sockets, and reaps
every child. A worker that dies is started again, logged with its exit status or signal,
after a back-off that doubles while it keeps dying right after start (so a broken worker
cannot fork-loop); the CGI process groups it left behind are killed.

    HUP   reload: load the file again; if it or its cycle fails (file:line, bind, open),
          log why and keep serving on the old one; else start the new generation, wait
          until each of its workers accepts, then QUIT the old ones (they finish what they
          have in flight). Unchanged addresses keep their sockets: nothing queued is lost.
    QUIT  graceful stop: QUIT every worker, exit when the last has.
    TERM, INT  fast stop: TERM every worker, SIGKILL what is left after FAST_STOP_KILL.
    USR1  reopen the logs, here and in every worker.

It runs no event loop (so a fork starts clean) and never accepts a connection.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
import traceback
from typing import Any

from .config import ConfigError, load
from .cycle import Cycle, CycleError, remove_upload_temps
from .logs import error_log
from .process import CONTROL_SIGNALS, remove_pid, write_pid
from .scoreboard import Scoreboard, kill_groups

READY_TIMEOUT = 10.0  # a new generation's workers must accept within this, or the reload fails
QUICK_DEATH = 2.0  # a worker that dies sooner than this after its start is restarted later
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 10.0
FAST_STOP_KILL = 5.0  # TERM: workers still running after this get SIGKILL


class Proc:
    """One worker process as the master sees it."""

    __slots__ = ("pid", "ordinal", "generation", "slot", "ready_fd", "started", "ready",
                 "retiring", "exited")  # fmt: skip

    def __init__(self, pid: int, ordinal: int, generation: int, slot: int, ready_fd: int):
        self.pid = pid
        self.ordinal = ordinal
        self.generation = generation
        self.slot = slot
        self.ready_fd = ready_fd
        self.started = time.monotonic()
        self.ready = False
        self.retiring = False
        self.exited = False


class Master:
    def __init__(self, cycle: Cycle, path: str, prefix: str | None) -> None:
        self.cycle = cycle
        self.pending: Cycle | None = None  # a reload's cycle, until its workers accept
        self.path, self.prefix = path, prefix
        self.board = Scoreboard()
        self.generation = 1
        self.procs: dict[int, Proc] = {}
        self.signals: list[int] = []
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._drain_wakeup)
        self.respawns: list[tuple[float, int, int]] = []  # (when, ordinal, generation)
        self.quick_deaths: dict[int, int] = {}  # ordinal → deaths right after start, in a row
        self.exiting = ""  # "", "graceful" or "fast"
        self.kill_at = 0.0
        self.pid_path = cycle.config.pid

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        for signum in CONTROL_SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
        write_pid(self.pid_path)
        error_log.notice(f"master process {os.getpid()}, {self.cycle.workers} worker processes")
        for ordinal in range(self.cycle.workers):
            self.spawn(self.cycle, ordinal, self.generation)
        while not (self.exiting and not self.procs):
            for key, _ in self.selector.select(self._timeout()):
                key.data()
            self._handle_signals()
            self.reap()
            self._respawn_due()
            if self.exiting == "fast" and self.procs and time.monotonic() >= self.kill_at:
                for pid in self.procs:
                    _kill(pid, signal.SIGKILL)
                self.kill_at = float("inf")
        remove_pid(self.pid_path)
        error_log.notice("exit")
        self.cycle.discard(None)
        return 0

    def _timeout(self) -> float | None:
        due = [when for when, _, _ in self.respawns]
        if self.exiting == "fast" and self.kill_at != float("inf"):
            due.append(self.kill_at)
        if not due:
            return None
        return max(0.0, min(due) - time.monotonic())

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum == signal.SIGCHLD:
                continue  # reap() runs after every wake-up
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if self.exiting:
                    error_log.notice(f"signal {name} received while exiting, ignored")
                else:
                    error_log.notice(f"signal {name} received, reconfiguring")
                    self.reload()
            elif signum == signal.SIGUSR1:
                self.cycle.reopen_logs()
                error_log.notice(f"signal {name} received, logs reopened")
                for pid in self.procs:
                    _kill(pid, signal.SIGUSR1)
            elif signum == signal.SIGQUIT:
                if not self.exiting:
                    error_log.notice(f"signal {name} received, shutting down gracefully")
                    self.exiting = "graceful"
                    self.respawns.clear()
                    for pid in self.procs:
                        _kill(pid, signal.SIGQUIT)
            elif self.exiting != "fast":  # TERM, INT: also cuts a graceful stop short
                error_log.notice(f"signal {name} received, exiting")
                self.exiting = "fast"
                self.respawns.clear()
                self.kill_at = time.monotonic() + FAST_STOP_KILL
                for pid in self.procs:
                    _kill(pid, signal.SIGTERM)

    # --- workers ---------------------------------------------------------------------------

    def spawn(self, cycle: Cycle, ordinal: int, generation: int) -> Proc:
        slot = self.board.claim(ordinal, generation)
        if slot < 0:
            error_log.warn("scoreboard full: a worker starts without shared counters")
            slot = 0
        ready_r, ready_w = os.pipe()
        signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)  # see CONTROL_SIGNALS
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the master's code
            code = 1
            try:
                os.close(ready_r)
                self._forget_in_child(cycle, ordinal)
                from .worker import worker_process

                code = worker_process(cycle, ordinal, self.board, slot, ready_w)
            except BaseException:
                error_log.error(f"worker failed: {traceback.format_exc()}")
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
        os.close(ready_w)
        self.board.set_pid(slot, pid)
        proc = Proc(pid, ordinal, generation, slot, ready_r)
        self.procs[pid] = proc
        self.selector.register(ready_r, selectors.EVENT_READ, lambda: self._on_ready(proc))
        error_log.notice(f"start worker process {pid}")
        return proc

    def _forget_in_child(self, mine: Cycle, ordinal: int) -> None:
        """In a new worker: close what the master holds and this worker must not — other
        generations' sockets and logs (or a socket the master closes would stay open in
        it), the other workers' reuseport sockets, the master's pipes."""
        for signum in CONTROL_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)  # still blocked: Worker.start unblocks
        signal.set_wakeup_fd(-1)
        keep = {id(sock) for _, sock in mine.sockets_for(ordinal)}
        for cycle in self._cycles(mine):
            for sock in cycle.sockets.all():
                if id(sock) not in keep and sock.fileno() >= 0:
                    os.close(sock.detach())
            if cycle is not mine and cycle.tap is not None and cycle.tap is not mine.tap:
                cycle.tap.close()  # (another generation's capture map: the child's copies)
            if cycle is not mine:
                for file in cycle.config.log_files:
                    if file.fd > 2:
                        os.close(file.fd)
                    file.fd = -1
                if cycle.error_target is not mine.error_target and cycle.error_target.fd > 2:
                    os.close(cycle.error_target.fd)
                    cycle.error_target.fd = 2
        for proc in self.procs.values():
            if proc.ready_fd >= 0:
                os.close(proc.ready_fd)
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _cycles(self, *more: Cycle) -> list[Cycle]:
        """The generations this master holds now (a reload's pending one included), once each."""
        return list({id(c): c for c in (self.cycle, self.pending, *more) if c}.values())

    def _on_ready(self, proc: Proc) -> None:
        try:
            data = os.read(proc.ready_fd, 64)
        except OSError:
            data = b""
        if data:
            proc.ready = True
            return
        self._close_ready(proc)  # EOF: the worker has exited (reap() says how)

    def _close_ready(self, proc: Proc) -> None:
        if proc.ready_fd >= 0:
            self.selector.unregister(proc.ready_fd)
            os.close(proc.ready_fd)
            proc.ready_fd = -1

    def reap(self) -> None:
        while self.procs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.pop(pid, None)
            if proc is None:
                continue
            proc.exited = True
            self._close_ready(proc)
            kill_groups(self.board.release(proc.slot, killed=True))
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                self._remove_temps(pid)
            how = f"exited on signal {-code}" if code < 0 else f"exited with code {code}"
            expected = proc.retiring or self.exiting
            level = "notice" if expected and code == 0 else "alert"
            error_log.log(level, f"worker process {pid} {how}")
            if not expected and proc.generation == self.generation:
                self._schedule_respawn(proc)

    def _remove_temps(self, pid: int) -> None:
        """A worker that did not exit by itself leaves its unfinished uploads behind."""
        removed = 0
        for cycle in self._cycles():
            removed += remove_upload_temps(cycle.config, pid)
        if removed:
            error_log.notice(f"removed {removed} unfinished upload files of worker {pid}")

    def _schedule_respawn(self, proc: Proc) -> None:
        ordinal = proc.ordinal
        if time.monotonic() - proc.started < QUICK_DEATH:
            deaths = self.quick_deaths[ordinal] = self.quick_deaths.get(ordinal, 0) + 1
        else:
            deaths = self.quick_deaths[ordinal] = 0
        delay = 0.0 if deaths == 0 else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (deaths - 1))
        if delay:
            error_log.warn(
                f"worker {ordinal} died {deaths} time(s) right after start: "
                f"starting it again in {delay:g}s"
            )
        self.respawns.append((time.monotonic() + delay, ordinal, proc.generation))

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [r for r in self.respawns if r[0] <= now]
        self.respawns = [r for r in self.respawns if r[0] > now]
        for _, ordinal, generation in due:
            if generation == self.generation and not self.exiting:
                self.board.count_restart()
                self.spawn(self.cycle, ordinal, generation)

    # --- reload ----------------------------------------------------------------------------

    def reload(self) -> None:
        try:
            config = load(self.path, self.prefix)
            new = Cycle.create(config, self.cycle)
        except (ConfigError, CycleError) as exc:
            error_log.log("emerg", str(exc))
            error_log.error("reload failed: still serving the previous configuration")
            return
        for warning in config.warnings:
            error_log.warn(warning)
        generation = self.generation + 1
        self.pending = new
        procs = [self.spawn(new, ordinal, generation) for ordinal in range(new.workers)]
        ready = self._wait_ready(procs)
        self.pending = None
        if not ready:
            for proc in procs:
                proc.retiring = True
                if not proc.exited:
                    _kill(proc.pid, signal.SIGTERM)
            new.discard(self.cycle)
            error_log.error(
                "reload failed: the new workers did not start; "
                "still serving the previous configuration"
            )
            return
        old, self.cycle, self.generation = self.cycle, new, generation
        new.activate()
        for proc in self.procs.values():
            if proc.generation < generation and not proc.retiring:
                proc.retiring = True
                _kill(proc.pid, signal.SIGQUIT)
        old.discard(new)
        if new.config.pid != self.pid_path:
            remove_pid(self.pid_path)
            self.pid_path = new.config.pid
            write_pid(self.pid_path)
        self.board.count_reload(generation)
        self.quick_deaths.clear()
        error_log.notice(f"reconfigured: generation {generation}, {new.workers} worker processes")

    def _wait_ready(self, procs: list[Proc]) -> bool:
        """Until every new worker accepts; False if one exits first or time runs out. Other
        signals wait (the reload finishes first); children that exit meanwhile are reaped."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if all(p.ready for p in procs):
                return True
            left = deadline - time.monotonic()
            if left <= 0 or any(p.exited for p in procs):
                return False
            for key, _ in self.selector.select(left):
                key.data()
            self.reap()


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
