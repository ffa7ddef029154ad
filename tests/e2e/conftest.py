"""The real browser the end-to-end tests drive: Debian's chromium through Playwright.

`playwright install` cannot download browsers here, so the system's chromium is launched by
path, with the flags that keep it from reaching for the network it does not have.
"""

from __future__ import annotations

import shutil

import pytest

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
