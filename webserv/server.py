"""Starting the server: the first cycle, then a master and its workers (or one process).

`run` builds the first cycle (every address bound, logs opened: a failure is one
`[emerg]` line and exit status 1, before anything serves), then hands it to the master
(master.py), which forks the workers; with `master_process off;` this process serves alone
(no reload, no restart), as nginx's debugging mode. A forked worker runs
worker.worker_process: a fresh event loop over its cycle.
Never parses a request.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

from .config.model import Config
from .cycle import Cycle, CycleError, remove_upload_temps
from .listeners import migrate_req_note
from .logs import ErrorLogFile, error_log
from .process import CONTROL_SIGNALS, install_event_loop_policy, remove_pid, write_pid
from .worker import serve_worker


def run(config: Config, path: str, prefix: str | None) -> int:
    """Serve `config` until stopped; the exit status."""
    signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)  # until handlers are in place
    loop_name = install_event_loop_policy()
    # a killed server's unfinished uploads: swept before the port listens, so that nothing a
    # client (or anyone) writes once it accepts can be taken for one of them
    removed = remove_upload_temps(config)
    try:
        cycle = Cycle.create(config)
    except CycleError as exc:
        print(f"webserv: [emerg] {exc}", file=sys.stderr)
        _tell_error_log(config, str(exc))
        return 1
    cycle.activate()
    from . import __version__, _pure

    error_log.notice(
        f"webserv/{__version__} starting on {loop_name}, {_pure.build()}, config {config.path}"
    )
    for warning in config.warnings:
        error_log.warn(warning)
    if cycle.sockets.uses_reuseport():
        note = migrate_req_note()
        if note:
            error_log.notice(note)
    for listener in config.listeners:
        error_log.notice(f"listening on {listener.address.display()}")
    if removed:
        error_log.notice(f"removed {removed} unfinished upload files left by an earlier run")
    # everything made so far (modules, the configuration) lives as long as the process:
    # out of the collector's sight, and shared copy-on-write with the forked workers
    gc.freeze()
    if config.master_process:
        from .master import Master

        return Master(cycle, path, prefix).run()
    if config.worker_processes not in (1, "auto"):
        error_log.notice("master_process off: one process serves, worker_processes is ignored")
    write_pid(config.pid)
    try:
        asyncio.run(serve_worker(cycle, 0, None, 0, -1))
    except KeyboardInterrupt:
        pass
    finally:
        remove_pid(config.pid)
    return 0


def _tell_error_log(config: Config, message: str) -> None:
    """A failed start, also in the configured error log file: the operator looks there."""
    target = ErrorLogFile(*config.error_log)
    try:
        target.open()
    except OSError:
        return
    if target.fd > 2:
        error_log.use(target)
        error_log.log("emerg", message)
    target.close()
