"""What a webserv process needs from the operating system, whatever its role: the signals
held back until a handler exists, the pid file, the parent-death signal, the event loop.

Owns no state and imports nothing of webserv: the master, the workers and the single
process (server.py) all use it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

HANDLED = (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# blocked from the start of the process until a handler is in place (server.run), and in a
# new worker until its event loop has its own: a signal that comes early waits, it never
# takes the default action (a HUP right after start would kill the server)
CONTROL_SIGNALS = frozenset((*HANDLED, signal.SIGCHLD))


def write_pid(path: str | None) -> None:
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")


def remove_pid(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def cpu_count() -> int:
    """The CPUs this process may run on (`worker_processes auto`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def install_event_loop_policy() -> str:
    """uvloop where it is installed (Linux, macOS); plain asyncio elsewhere."""
    if sys.platform != "win32":
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
        except ImportError:
            pass
    return "asyncio"


def set_parent_death_signal(signum: int) -> bool:
    """Linux's PR_SET_PDEATHSIG: this process gets `signum` when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signum), 0, 0, 0) == 0  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False
