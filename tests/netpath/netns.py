"""Network-namespace plumbing for NetPath: ip(8) calls, setns from a thread, TUN devices."""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import signal
import struct
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int); checked against <linux/if_tun.h>
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_NS_RE = re.compile(r"^wsv-[cs]-(\d+)-\d+$")  # NetPath names its namespaces wsv-c/s-PID-N

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


class NetPathError(RuntimeError):
    pass


def ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetPathError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def list_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def kill_ns_processes(ns: str) -> None:
    # Grandchildren (e.g. server workers) outlive their parent and would keep the namespace
    # alive after its name is gone, so sweep by namespace rather than by the Popen we hold.
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in (int(p) for p in out.split()):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cleanup_stale() -> list[str]:
    """Delete wsv-[cs]-PID-N namespaces whose creating process is gone (e.g. a SIGKILLed run,
    where atexit never ran). Returns the names removed."""
    removed = []
    for ns in list_namespaces():
        m = _NS_RE.match(ns)
        if not m or int(m.group(1)) == os.getpid() or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        kill_ns_processes(ns)
        if subprocess.run(["ip", "netns", "del", ns], capture_output=True).returncode == 0:
            removed.append(ns)
    return removed


def run_in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a throwaway thread that has joined namespace ``ns``.

    setns(CLONE_NEWNET) moves only the calling thread, so the rest of the test process stays
    put; sockets and TUN devices keep the namespace they were created in after the thread is
    gone. os.setns only exists from Python 3.12, hence ctypes.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"{NETNS_DIR}/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns:{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def open_tun(name: str) -> int:
    # The device lands in the namespace of the thread that opens /dev/net/tun; it disappears
    # when this fd is closed (not persistent), which is half of our teardown for free.
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    return fd
