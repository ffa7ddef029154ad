"""error_log in a location: a request's messages go to its location's lines (each at its
own level, the same file twice gets a line twice), the others to main's; every file is
created at start and reopened on USR1. (The messages here are rewrite_log's notices.)"""

from __future__ import annotations

import os
import signal

import pytest
from support import RunningServer, request, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    server {{
        listen 127.0.0.1:{port};
        root {root};
        access_log off;
        location /own/ {{
            rewrite_log on;
            error_log {tmp}/own_a.log notice;
            error_log {tmp}/own_a.log warn;
            error_log {tmp}/own_b.log notice;
            error_log {tmp}/own_b.log info;
            error_log {tmp}/unused.log emerg;
            rewrite ^/own/(.*)$ /$1.txt break;
        }}
        location /main/ {{
            rewrite_log on;
            rewrite ^/main/(.*)$ /$1.txt break;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("errlog"), CONF, {"a.txt": "a\n"}).start()
    yield srv
    srv.stop()


def count(server, name: str, text: str) -> int:
    path = server.tmp / name
    if not path.exists():
        return 0
    return sum(text in line for line in path.read_text(errors="replace").splitlines())


def test_every_file_is_created_at_start(server):
    for name in ("own_a.log", "own_b.log", "unused.log", "error.log"):
        assert (server.tmp / name).exists(), name
    assert (server.tmp / "unused.log").read_text() == ""


def test_a_request_logs_to_its_location_lines_each_at_its_level(server):
    status, _, body = request(server.port, "/own/a?first")
    assert (status, body) == (200, b"a\n")
    mark = 'matches "/own/a"'
    wait_until(lambda: count(server, "own_b.log", mark) == 2)  # two lines at notice and info
    assert count(server, "own_a.log", mark) == 1  # the warn line does not take a notice
    assert count(server, "own_a.log", "[notice] ") == 2  # "matches" and "rewritten data"
    assert count(server, "error.log", mark) == 0  # the location's lines replace main's
    assert (server.tmp / "unused.log").read_text() == ""


def test_a_location_without_its_own_logs_to_main(server):
    status, _, body = request(server.port, "/main/a")
    assert (status, body) == (200, b"a\n")
    wait_until(lambda: count(server, "error.log", 'matches "/main/a"') == 1)
    assert count(server, "own_b.log", 'matches "/main/a"') == 0
    # and messages without a request (start-up) are main's
    assert count(server, "error.log", "[notice]") >= 1
    assert count(server, "own_a.log", "starting") == 0


def test_usr1_reopens_the_location_files(server):
    request(server.port, "/own/a?before")
    wait_until(lambda: count(server, "own_b.log", 'matches "/own/a"') >= 2)
    os.rename(server.tmp / "own_b.log", server.tmp / "own_b.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: (server.tmp / "own_b.log").exists())

    def logged() -> bool:
        request(server.port, "/own/a?again")
        return count(server, "own_b.log", 'matches "/own/a"') >= 2

    wait_until(logged)  # (the worker may reopen a moment after the master)
    assert count(server, "own_b.log.1", 'matches "/own/a"') >= 2
    assert server.alive()


def test_a_reload_creates_the_new_location_files(tmp_path):
    srv = RunningServer(tmp_path, CONF, {"a.txt": "a\n"}).start()
    try:
        text = srv.conf.read_text().replace("own_b.log", "reloaded.log")
        srv.conf.write_text(text)
        srv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: (tmp_path / "reloaded.log").exists())

        def logged() -> bool:  # (until the new generation's worker answers)
            request(srv.port, "/own/a?reloaded")
            return count(srv, "reloaded.log", 'matches "/own/a"') >= 2

        wait_until(logged)
        assert srv.alive()
    finally:
        srv.stop()
