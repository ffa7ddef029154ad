"""Shared fixtures: a factory that starts the real server on free loopback ports."""

from __future__ import annotations

import pytest
from support import RunningServer


@pytest.fixture
def webserv(tmp_path):
    """`webserv(conf_text, files={...}, ports=1)` → a started RunningServer, stopped after."""
    started: list[RunningServer] = []

    def start(conf_text: str, files=None, ports: int = 1, extra_args=None) -> RunningServer:
        server = RunningServer(tmp_path / f"s{len(started)}", conf_text, files, ports, extra_args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def pytest_addoption(parser):
    parser.addoption(
        "--with-nginx",
        action="store_true",
        default=False,
        help="also run the conformance corpus and the REDbot comparison against a real nginx "
        "(started by the tests on a free loopback port); see tests/conformance/",
    )
