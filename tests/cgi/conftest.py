"""The CGI tests' server: one per test module, running www/cgi-bin/ and scripts/.

When a module is done, the server's logs must hold no internal error: a handler bug that
the client never sees (an exception in a background task, a 500 for a CGI failure) still
fails the module.
"""

from __future__ import annotations

import pytest
from cgi_support import error_log, start_server

INTERNAL = (
    "unhandled ",
    "never awaited",
    "Traceback",
    "Task exception was never retrieved",
    "Exception in callback",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("cgi"))
    yield srv
    srv.stop()
    logs = error_log(srv) + srv.stderr_path.read_text(errors="replace")
    found = [
        line
        for line in logs.splitlines()
        if any(m in line for m in INTERNAL) and "stderr:" not in line
    ]  # a script's own traceback is its business
    assert not found, "internal errors in the server's logs:\n" + "\n".join(found[:20])
