"""One generation of the server: a loaded configuration and everything made from it.

nginx's cycle (src/core/ngx_cycle.c): the configuration, its bound listening sockets keyed by
address, its opened log files and error log, and the per-generation tables a worker fills
while serving — the route memos, the open file cache, the CGI scripts it runs. A reload
builds a new cycle from the old one (`Cycle.create(config, old)`): sockets of unchanged
addresses are taken over, new addresses bound, and what only the old one had is closed
when it retires. Nothing that lives one generation is kept in a module global.

Everything that can fail when a configuration is put to use — binding, opening the logs,
creating upload directories — fails here, as one CycleError line, before any worker of the
generation starts: a bad reload leaves the running generation untouched.
Never serves a request and never forks.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from . import router
from .config.model import Config, Listener
from .files import UPLOAD_TEMP_PREFIX, FileCache
from .handlers.cgi_children import Children
from .listeners import BindError, ListenSockets
from .logs import ErrorLog, ErrorLogFile, error_log
from .process import cpu_count
from .router import Routes


class CycleError(Exception):
    """A configuration cannot be put to use: one line, nginx's wording."""


class Cycle:
    __slots__ = ("config", "workers", "sockets", "error_target", "main_error_log", "routes")
    __slots__ += ("files", "children", "tap", "tap_why")

    def __init__(
        self, config: Config, workers: int, sockets: ListenSockets, error_target, main_error_log
    ):
        self.config = config
        self.workers = workers  # how many worker processes this generation runs
        self.sockets = sockets
        self.error_target = error_target  # main's first error_log file (master.py closes it)
        self.main_error_log = main_error_log  # main's error_log lines (error_log.ErrorLog)
        self.routes = Routes()
        self.files = FileCache()
        self.children = Children()
        self.tap: Any = None  # lifecycle_capture on: capture_kernel.Tap, the workers' map
        self.tap_why: OSError | None = None  # why there is none (the workers' warn line)

    @classmethod
    def create(cls, config: Config, old: Cycle | None = None) -> Cycle:
        """Bind, open and create what `config` needs; CycleError (and nothing left open)
        if any of it fails."""
        workers = worker_count(config) if config.master_process else 1
        main = config.main_error_log
        if main is None:  # a Config not made by load(): its one (path, level)
            main = ErrorLog(((0, ErrorLogFile(*config.error_log)),))
            main.use(main.sinks[0][1])
        target = main.sinks[0][1]
        try:
            target.open()
        except OSError as exc:
            raise CycleError(
                f'open() "{target.path}" failed ({exc.errno}: {exc.strerror})'
            ) from None
        try:
            sockets = ListenSockets.bind(config, workers, old.sockets if old else None)
        except BindError as exc:
            target.close()
            raise CycleError(str(exc)) from None
        cycle = cls(config, workers, sockets, target, main)
        try:
            # access, lifecycle and every error_log file (main's, the locations'): created
            # now, so a reload to an unwritable one fails whole
            for file in config.log_files:
                try:
                    file.open()
                except OSError as exc:
                    raise CycleError(
                        f'open() "{file.path}" failed ({exc.errno}: {exc.strerror})'
                    ) from None
            for directory in upload_stores(config):
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as exc:
                    raise CycleError(
                        f'upload_store "{directory}" cannot be created ({exc.strerror})'
                    ) from None
        except CycleError:
            cycle.discard(old)
            raise
        cycle.open_tap(old)
        return cycle

    def open_tap(self, old: Cycle | None) -> None:
        """lifecycle_capture's kernel tap (capture_kernel.Tap.open), before any worker
        starts; none and why when the kernel refuses (the workers then capture in user
        space)."""
        if not any(s.lifecycle_capture for s in self.config.servers):
            return  # (no capture: not even its modules are loaded)
        from .capture_kernel import Tap

        self.tap, self.tap_why = Tap.open(self.config, self.workers, old.tap if old else None)

    def activate(self) -> None:
        """This generation's main error_log lines become the process's."""
        error_log.use(self.main_error_log)

    def sockets_for(self, ordinal: int) -> list[tuple[Listener, socket.socket]]:
        return self.sockets.sockets_for(self.config, ordinal)

    def reopen_logs(self) -> None:
        """SIGUSR1 (logrotate): every log file of this generation, opened anew by path
        (the error logs write through their files' new descriptors at once)."""
        for file in self.config.log_files:
            file.reopen()
        if self.error_target not in self.config.log_files:
            self.error_target.reopen()

    def close_logs(self) -> None:
        for file in self.config.log_files:
            file.close()

    def discard(self, keep: Cycle | None) -> None:
        """Close what this generation opened and `keep` (the generation that goes on) does
        not share: its own sockets, its log files, its error log."""
        self.sockets.close_unused(keep.sockets if keep is not None else None)
        self.close_logs()
        if keep is None or keep.error_target is not self.error_target:
            self.error_target.close()
        self.files.clear()
        if self.tap is not None and (keep is None or keep.tap is not self.tap):
            self.tap.close()


def remove_upload_temps(config: Config, pid: int | None = None) -> int:
    """Remove the temporary files of unfinished uploads under every upload_store: all of them
    at start (before any worker writes), or those of one worker PID that did not exit by
    itself. Their bytes are a part of a body that never arrived whole. Returns the count."""
    prefix = UPLOAD_TEMP_PREFIX + (f"{pid}-" if pid is not None else "")
    removed = 0
    for store in upload_stores(config):
        for directory, _, names in os.walk(store):
            for name in names:
                if name.startswith(prefix):
                    try:
                        os.unlink(os.path.join(directory, name))
                        removed += 1
                    except OSError:
                        pass
    return removed


def worker_count(config: Config) -> int:
    n = config.worker_processes
    return cpu_count() if n == "auto" else int(n)


def upload_stores(config: Config) -> list[str]:
    return sorted(
        {loc.upload_store for loc in all_locations(config) if loc.upload_store is not None}
    )


def all_locations(config: Config) -> list[Any]:
    """Every location of every server, nested ones too."""
    return [loc for server in config.servers for loc in router.all_locations(server)]
