"""access_log's gzip (each written buffer one gzip member: the file reads with zcat at any
time), a buffer= that fills, paths with variables, and open_log_file_cache keeping a
descriptor open (a line still reaches a renamed file, as in nginx's access_log.t)."""

from __future__ import annotations

import gzip
import os
import signal

import pytest
from support import RunningServer, request, wait_until

CONF = """
http {{
    log_format plain '$uri:$status';
    server {{
        listen 127.0.0.1:{port};
        root {root};
        access_log off;
        location /gz {{
            access_log {tmp}/gz.log plain gzip=9 buffer=1m flush=50ms;
            return 200 "gz\\n";
        }}
        location /small {{
            access_log {tmp}/small.log plain buffer=64 flush=1h;
            return 200 "small\\n";
        }}
        location /var {{
            access_log {tmp}/var_$arg_n.log plain;
            return 200 "var\\n";
        }}
        location /cache {{
            open_log_file_cache max=2 min_uses=2;
            access_log {tmp}/dir/cache_$arg_n plain;
            return 200 "cache\\n";
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gzlog")
    (tmp / "dir").mkdir()
    srv = RunningServer(tmp, CONF).start()
    yield srv
    srv.stop()


def gunzipped(path) -> str:
    try:
        return gzip.decompress(path.read_bytes()).decode()
    except (OSError, EOFError):
        return ""  # not written yet


def test_gzip_members_read_with_zcat_after_each_flush(server):
    assert request(server.port, "/gz/1")[0] == 200
    wait_until(lambda: gunzipped(server.tmp / "gz.log") == "/gz/1:200\n")
    assert request(server.port, "/gz/2")[0] == 200
    # a second member appended: the whole file still decompresses, both lines in order
    wait_until(lambda: gunzipped(server.tmp / "gz.log") == "/gz/1:200\n/gz/2:200\n")
    assert (server.tmp / "gz.log").read_bytes()[:2] == b"\x1f\x8b"


def test_a_full_buffer_is_written_before_its_flush_time(server):
    # buffer=64 with flush=1h: only the size can write these lines while the server runs
    for i in range(8):
        assert request(server.port, f"/small/{i}")[0] == 200
    wait_until(
        lambda: (
            (server.tmp / "small.log").exists() and (server.tmp / "small.log").stat().st_size >= 64
        )
    )
    lines = (server.tmp / "small.log").read_text().splitlines()
    assert lines == [f"/small/{i}:200" for i in range(len(lines))]


def read(path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_path_with_variables_names_a_file_per_request(server):
    # (a line is written once the response is handed over: wait for it, not for a time)
    for n in ("one", "two", "one"):
        assert request(server.port, f"/var?n={n}")[0] == 200
    wait_until(lambda: read(server.tmp / "var_one.log") == "/var:200\n/var:200\n")
    wait_until(lambda: read(server.tmp / "var_two.log") == "/var:200\n")


def test_cached_descriptor_outlives_a_rename_uncached_name_does_not(server):
    d, moved = server.tmp / "dir", server.tmp / "dir_moved"
    for n, lines in (("kept", 1), ("kept", 2), ("once", 1)):
        assert request(server.port, f"/cache?n={n}")[0] == 200
        wait_until(lambda n=n, lines=lines: read(d / f"cache_{n}").count("\n") == lines)
    os.rename(d, moved)
    try:
        assert request(server.port, "/cache?n=kept")[0] == 200
        wait_until(lambda: read(moved / "cache_kept").count("\n") == 3)  # kept open
        assert request(server.port, "/cache?n=once")[0] == 200  # logging never fails it
        # its line is lost (opened by name: gone); the next kept line proves it was tried
        assert request(server.port, "/cache?n=kept")[0] == 200
        wait_until(lambda: read(moved / "cache_kept").count("\n") == 4)
    finally:
        os.rename(moved, d)
    assert read(d / "cache_once") == "/cache:200\n"
    assert server.alive()


def test_usr1_writes_and_closes_cached_descriptors(server):
    d = server.tmp / "dir"
    for _ in range(2):
        request(server.port, "/cache?n=rot")
    # a line is written once its answer has gone out: wait for both before moving the file
    wait_until(lambda: (d / "cache_rot").read_text().count("/cache:200") == 2)
    os.rename(d / "cache_rot", d / "cache_rot.1")
    server.proc.send_signal(signal.SIGUSR1)

    def reopened() -> bool:
        request(server.port, "/cache?n=rot")
        return (d / "cache_rot").exists()

    wait_until(reopened)
    assert (d / "cache_rot.1").read_text().count("/cache:200") >= 2
