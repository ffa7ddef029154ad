"""REDbot (the HTTP linter, PyPI `redbot`) over the same URLs on webserv and on nginx.

A small static page, an 8 MiB file, a directory listing and a 404, from the same docroot:
webserv must get no `BAD` note and no more `WARN` notes than nginx for any URL. REDbot runs
as its own command line (`redbot -o har URL`), which makes the requests itself (GET, a range
request, conditional requests) to the loopback address given. Skips, saying why, when REDbot
or nginx is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RunningServer

REDBOT = Path(sys.executable).parent / "redbot"
CONF = """
error_log {tmp}/error.log info;
http {{
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /dir/ {{ autoindex on; }}
    }}
}}
"""
NGINX_SERVER = """
        root {root};
        location /dir/ { autoindex on; }
"""
FILES = {
    "page.html": "<!doctype html>\n<title>page</title>\n<p>A small static page.</p>\n",
    "big.bin": bytes(range(256)) * 4096 * 8,  # 8 MiB
    "dir/a.txt": "a\n",
    "dir/b.txt": "b\n",
}
URLS = ["/page.html", "/big.bin", "/dir/", "/missing.html"]

pytestmark = [
    pytest.mark.skipif(not REDBOT.exists(), reason=f"REDbot is not installed ({REDBOT})"),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/system-deps.sh)"),
]


def redbot_notes(url: str) -> list[dict]:
    """REDbot's notes on one URL: [{level, note_id, summary}, ...]."""
    run = subprocess.run(
        [str(REDBOT), "-o", "har", url], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"redbot failed on {url}: {run.stderr[-2000:]}"
    har = json.loads(run.stdout)
    entries = har["log"]["entries"]
    assert entries, f"redbot fetched nothing from {url}: {run.stderr[-2000:]}"
    return [note for entry in entries for note in entry["_red_messages"]]


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redbot")
    server = RunningServer(tmp / "webserv", CONF, FILES).start()
    nginx = RunningNginx(tmp / "nginx", server.root, NGINX_SERVER).start()
    try:
        jobs = [
            (name, port, path)
            for name, port in (("webserv", server.port), ("nginx", nginx.port))
            for path in URLS
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:
            found = pool.map(lambda job: redbot_notes(f"http://127.0.0.1:{job[1]}{job[2]}"), jobs)
            yield {
                (name, path): result for (name, _, path), result in zip(jobs, found, strict=True)
            }
    finally:
        server.stop()
        nginx.stop()


def _warnings(notes: list[dict], level: str = "WARN") -> list[str]:
    return sorted(f"{n['note_id']}: {n['summary']}" for n in notes if n["level"].upper() == level)


@pytest.mark.parametrize("path", URLS)
def test_no_more_warnings_than_nginx(notes, path, record_property):
    ours, theirs = notes[("webserv", path)], notes[("nginx", path)]
    record_property("webserv_warnings", len(_warnings(ours)))
    record_property("nginx_warnings", len(_warnings(theirs)))
    assert not _warnings(ours, "BAD"), f"REDbot finds webserv's {path} bad"
    assert len(_warnings(ours)) <= len(_warnings(theirs)), (
        f"{path}: webserv {_warnings(ours)} vs nginx {_warnings(theirs)}"
    )


def test_redbot_saw_real_answers(notes):
    """Not vacuous: REDbot looked at both servers' answers (a status note on the 404)."""
    for name in ("webserv", "nginx"):
        ids = {note["note_id"] for note in notes[(name, "/missing.html")]}
        assert "STATUS_NOT_FOUND" in ids, (name, ids)
        ids = {note["note_id"] for note in notes[(name, "/page.html")]}
        assert "CL_CORRECT" in ids, (name, ids)
