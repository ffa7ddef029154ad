"""Request bodies end to end: one real server with upload locations, and disk checks.

Every test that feeds the server bad or cut-short input checks three things besides the
status: how the connection ended, that the server still serves others, and what is on disk
(the complete upload or nothing; never a partial file or a `.webserv-upload-*` temp file).
"""

from __future__ import annotations

import pytest
from support import RunningServer

# /up/      the everyday upload location (1m limit, autoindex to see the result)
# /big/     no size limit, for the streaming and memory tests
# /slow/    a short client_body_timeout
# /nostore/ writing methods allowed, but nowhere to write: 403
# /ro/      GET and HEAD only: 405
CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /up/ {{
            allow_methods GET HEAD POST PUT DELETE;
            alias {tmp}/store/;  # GET serves what was uploaded, at the URL in Location
            upload_store {tmp}/store;
            autoindex on;
            client_max_body_size 1m;
        }}
        location /big/ {{
            allow_methods GET HEAD POST PUT DELETE;
            alias {tmp}/big/;
            upload_store {tmp}/big;
            client_max_body_size 0;
        }}
        location /slow/ {{
            allow_methods GET POST PUT;
            upload_store {tmp}/slow;
            client_body_timeout 1s;
            client_max_body_size 0;
        }}
        location /nostore/ {{ allow_methods GET HEAD POST PUT DELETE; }}
        location /ro/ {{ }}
    }}
}}
"""
FILES = {"index.html": "home\n", "ro/page.txt": "read only\n", "nostore/keep.txt": "keep\n"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("bodies"), CONF, FILES).start()
    srv.store = srv.tmp / "store"
    srv.big = srv.tmp / "big"
    srv.slow = srv.tmp / "slow"
    yield srv
    srv.stop()
