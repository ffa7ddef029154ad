"""Starting a CGI script and reading its pipes: posix_spawn, and a plain loop reader.

`spawn` starts a script with os.posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK) + exec)
in a session of its own, in its folder, with the given descriptors as its 0, 1 and 2: the
cost does not grow with the server's memory, and a failed exec is an OSError here. Pipes
are pipe2(O_CLOEXEC), put in place with dup2 file actions; the worker keeps one /dev/null
for stdin. (subprocess.Popen, vfork too, cost about 50 µs more of server CPU per spawn in
its Python-level setup; uvloop's subprocess_exec forks the whole process and runs Python's
after-fork hooks in the child: 1.3 ms of server CPU and 2 ms of child CPU per spawn.)
`PipeReader` reads its stdout or stderr with one add_reader and reports to the Child as a
read transport's protocol would. Owns the per-process spawning state (where to come back to
after the chdir, the /dev/null kept for stdin); never decides anything about CGI or HTTP
(cgi_process.py drives the script, cgi.py the request).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

READ_SIZE = 64 * 1024  # one os.read of stdout or stderr

# Python ignores these; a script gets their default action back (as Popen's restore_signals)
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_DUP2 = os.POSIX_SPAWN_DUP2


class SpawnState:
    """What spawning needs once per process: where to come back to after chdir, and /dev/null.

    Made at the first spawn in a process (a worker, forked from the master), when the
    descriptors it inherited at start-up (from whoever started webserv) are also made
    close-on-exec: every other one webserv or uvloop opens is (PEP 446, libuv), so no script
    sees a descriptor of the server's, as with close_fds.
    """

    __slots__ = ("pid", "home", "devnull")

    def __init__(self) -> None:
        self.pid = os.getpid()
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
            fd = int(name)
            if fd > 2:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass  # the listing's own descriptor, closed by now
        self.home = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


_process: SpawnState | None = None


def spawn_state() -> SpawnState:
    global _process
    proc = _process
    if proc is None or proc.pid != os.getpid():
        proc = _process = SpawnState()
    return proc


def spawn(argv: list[str], cwd: str, env: dict[bytes, bytes], fds: tuple[int, int, int]) -> int:
    """posix_spawn ARGV in a session of its own in CWD, with FDS as its 0, 1, 2: its pid.

    glibc's posix_spawn is clone(CLONE_VM | CLONE_VFORK) + exec and reports a failed exec
    (ENOENT, EACCES, ENOEXEC) as OSError here. It has no chdir in Python 3.11, so the
    worker steps into CWD for the call and back (nothing in the worker uses a relative path:
    the config's are absolute, upload threads work from directory descriptors).
    """
    home = spawn_state().home
    os.chdir(cwd)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[(_DUP2, fds[0], 0), (_DUP2, fds[1], 1), (_DUP2, fds[2], 2)],
            setsid=True,  # its own process group, which killpg ends as one
            setsigdef=_RESTORED_SIGNALS,
        )
    finally:
        os.fchdir(home)


class FdFile:
    """A pipe descriptor as the file object connect_write_pipe wants; uvloop closes the fd."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        pass  # libuv closed it with the transport


class PipeReader:
    """The script's stdout or stderr: a non-blocking pipe, read when the loop sees it readable.

    It has the part of a read transport's interface Child uses (pause_reading,
    resume_reading, close, is_closing), for one add_reader and no await (connect_read_pipe
    waits a loop turn for connection_made); EOF, an error or close() end in
    child.pipe_connection_lost, as a transport's connection_lost.
    """

    __slots__ = ("child", "which", "fd", "loop", "reading")

    def __init__(self, loop: asyncio.AbstractEventLoop, child: Any, which: int, fd: int) -> None:
        self.child, self.which, self.fd, self.loop = child, which, fd, loop
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)
        self.reading = True

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end()
            self.child.pipe_connection_lost(self.which, exc)
            return
        if data:
            self.child.pipe_data_received(self.which, data)
        else:
            self._end()
            self.child.pipe_connection_lost(self.which, None)

    def end(self) -> None:
        """EOF read by the Child itself (Child.whole_output): stop reading and close."""
        self._end()

    def _end(self) -> None:
        fd = self.fd
        if fd >= 0:
            self.fd = -1
            if self.reading:
                self.loop.remove_reader(fd)
            os.close(fd)

    def pause_reading(self) -> None:
        if self.reading and self.fd >= 0:
            self.loop.remove_reader(self.fd)
        self.reading = False

    def resume_reading(self) -> None:
        if not self.reading and self.fd >= 0:
            self.loop.add_reader(self.fd, self._readable)
        self.reading = True

    def is_closing(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        """Stop reading and close; connection_lost is reported soon after, not from here."""
        if self.fd >= 0:
            self._end()
            self.loop.call_soon(self.child.pipe_connection_lost, self.which, None)
