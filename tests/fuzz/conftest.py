"""The fuzz tests' server (one for the session) and the `long` switch.

Tests marked `long` run only when asked for (`pytest -m long tests/fuzz`); the default run
keeps the bounded variants. The server's timeouts are short (2-3 s) so that an input that
makes it wait is answered or closed well within fuzz_support.HANG_LIMIT.
"""

from __future__ import annotations

import pytest
from conformance.logcheck import internal_errors
from fuzz_support import FILES
from support import RunningServer

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    client_header_timeout 2s;
    client_body_timeout 2s;
    keepalive_timeout 3s;
    send_timeout 3s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /dir/ {{ autoindex on; }}
        location /ret/ {{
            allow_methods GET HEAD POST PUT;
            return 200 "read and dropped";
        }}
        location /up/ {{
            allow_methods GET HEAD POST PUT DELETE;
            upload_store {tmp}/uploads;
            client_max_body_size 1k;
        }}
    }}
}}
"""


@pytest.fixture(autouse=True)
def _long_only_when_asked(request):
    if request.node.get_closest_marker("long") and "long" not in request.config.option.markexpr:
        pytest.skip("a long variant: run with -m long")


class FuzzServer:
    """The running server and the part of its logs not yet looked at."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.port = server.port
        self.seen = {"error_log": 0, "stderr": 0}

    def new_internal_errors(self) -> list[str]:
        """Tracebacks (other than known bugs) and internal-error markers since the last call."""
        found = []
        for name, path in (
            ("error_log", self.server.error_log),
            ("stderr", self.server.stderr_path),
        ):
            self.server.output()  # flushes our end of the stderr file
            text = path.read_text(errors="replace") if path.exists() else ""
            found += internal_errors(text[self.seen[name] :])
            self.seen[name] = len(text)
        return found


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory):
    server = RunningServer(tmp_path_factory.mktemp("fuzz"), CONF, FILES).start()
    yield FuzzServer(server)
    server.stop()
