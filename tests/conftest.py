"""Shared fixtures: a factory that starts the real server on free loopback ports, and the
real browser (Debian's chromium through Playwright) the status page and forms are tested in.

`playwright install` cannot download browsers here, so the system's chromium is launched by
path, with the flags that keep it from reaching for the network it does not have.
"""

from __future__ import annotations

import shutil

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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module; skips where it cannot run.

    Not per session: Playwright's sync API keeps an event loop running in the main thread
    while it is open, and later tests that run their own loop (asyncio.run) would fail.
    """
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package chromium; make system-deps)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is missing (pip install '.[test]')"
    )
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()
