"""How a file body leaves, as the kernel sees it (strace): a small file the open file cache
holds goes out in one write with its header, from memory; a larger one, and any file when
the cache is off, with send(MSG_MORE) for the header and sendfile for the body.

Each answer is also checked byte for byte, so the memory path is shown to send the file's
own bytes, on the same keep-alive connection as the sendfile ones.
"""

from __future__ import annotations

import re
import shutil

import pytest
from lifecycle_support import Straced, connect, get, read_response, status_of
from support import wait_until

from webserv.files import SMALL_FILE

CONF = """
http {{
    access_log off;
    lifecycle off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /nocache/ {{ alias {root}/; open_file_cache off; }}
    }}
}}
"""
SMALL = bytes(range(256)) * 4  # 1 KiB
LARGE = bytes(range(251)) * (SMALL_FILE // 251 + 40)  # just over SMALL_FILE
FILES = {"small.bin": SMALL, "large.bin": LARGE}
TRACE = "write,writev,sendto,sendmsg,sendfile"


def sends(calls: list[str], size: int) -> list[str]:
    """The traced calls that carried a body of `size` bytes (with or without its header)."""
    out = []
    for call in calls:
        m = re.search(r"^(?:\d+ +)?(\w+)\(.*\) = (\d+)$", call)
        if m and m.group(1) in TRACE.split(",") and int(m.group(2)) >= size:
            out.append(m.group(1))
    return out


def complete(calls: list[str], answers: int) -> list[str] | None:
    """CALLS once it holds the finished calls of ANSWERS answers (each at least one)."""
    return calls if len(sends(calls, len(SMALL))) >= answers else None


@pytest.fixture
def traced(tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    server = Straced(tmp_path / "s", CONF, FILES, trace=TRACE).start()
    yield server
    server.stop()


def fetch(server, paths: list[str]) -> None:
    with connect(server.port) as sock:
        for path in paths:
            sock.sendall(get(path))
            response = read_response(sock)
            assert status_of(response) == 200
            body = response.partition(b"\r\n\r\n")[2]
            assert body == (SMALL if "small" in path else LARGE)


def test_a_small_cached_file_is_one_write_a_large_one_sendfile(traced):
    # the first request opens and caches; the traced ones after it are the steady state
    fetch(traced, ["/small.bin", "/large.bin"])
    start = len(wait_until(lambda: complete(traced.calls(), 2)))
    fetch(traced, ["/small.bin", "/large.bin", "/small.bin"])
    # strace writes a call's line after it returns, so after the client has the bytes:
    # wait for the three answers' calls to be complete in the trace, then look at them
    calls = wait_until(lambda: complete(traced.calls()[start:], 3))
    small = [c for c in sends(calls, len(SMALL)) if c != "sendfile"]
    assert len(small) >= 2, calls  # header and body together in one call, twice
    assert sends(calls, len(LARGE)) == ["sendfile"], calls  # the large body: one sendfile
    assert sum(1 for c in calls if c.split("(")[0].split()[-1] == "sendfile") == 1


def test_without_the_cache_every_file_is_sendfile(traced):
    start = len(traced.calls())
    fetch(traced, ["/nocache/small.bin", "/nocache/large.bin"])
    calls = wait_until(lambda: complete(traced.calls()[start:], 2))
    assert sum(1 for c in calls if c.split("(")[0].split()[-1] == "sendfile") == 2, calls
