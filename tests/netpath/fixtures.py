"""pytest fixture ``netpath``: a factory for delayed, lossy namespace pairs.

Tests elsewhere in the tree can use it with ``from netpath.fixtures import netpath`` (or
``tests.netpath.fixtures`` once ``tests`` is a package), or via ``pytest_plugins`` in the
root conftest.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .forwarder import NetPath, cleanup_stale


@functools.cache
def unavailable_reason() -> str | None:
    """Why this machine cannot host a NetPath, or None if it can. Probed once per session."""
    if not sys.platform.startswith("linux"):
        return "netpath needs Linux network namespaces and TUN devices"
    if os.geteuid() != 0:
        return "netpath needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for namespaces and TUN"
    if shutil.which("ip") is None:
        return "netpath needs the 'ip' command (iproute2)"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as exc:
        return f"netpath needs /dev/net/tun: {exc.strerror}"
    probe = f"wsv-probe-{os.getpid()}"
    add = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if add.returncode != 0:
        return f"netpath: 'ip netns add' failed: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    # Only the first session to get here pays for sweeping what SIGKILLed runs left behind.
    cleanup_stale()
    return None


@pytest.fixture
def netpath() -> Iterator[Callable[..., NetPath]]:
    """``netpath(delay_ms=25, loss=0.0, **kw) -> NetPath``, already started; every path made
    is torn down after the test, pass or fail."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    paths: list[NetPath] = []

    def factory(delay_ms: float = 0.0, loss: float = 0.0, **kwargs: Any) -> NetPath:
        path = NetPath(delay_ms, loss, **kwargs)
        paths.append(path)
        return path.start()

    try:
        yield factory
    finally:
        errors = []
        for path in reversed(paths):
            try:
                path.close()
            except Exception as exc:  # keep closing the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]
