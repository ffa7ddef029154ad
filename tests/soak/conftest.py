"""The soak's `long` switch: tests marked `long` run only with `pytest -m long tests/soak`."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _long_only_when_asked(request):
    if request.node.get_closest_marker("long") and "long" not in request.config.option.markexpr:
        pytest.skip("a long variant: run with -m long")
