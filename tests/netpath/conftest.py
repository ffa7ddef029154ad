from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from .fixtures import netpath  # noqa: F401  (re-exported so tests in this folder get it)
from .forwarder import list_namespaces


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces() -> Iterator[None]:
    # A teardown bug would otherwise only show up as clutter in `ip netns list` much later.
    yield
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return
    mine = [ns for ns in list_namespaces() if f"-{os.getpid()}-" in ns]
    assert not mine, f"namespaces left behind by this session: {mine}"
