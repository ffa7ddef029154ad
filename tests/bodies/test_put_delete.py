"""PUT (create, replace atomically, refused targets) and DELETE (file, missing, directory,
traversal, symlinks), and a request pipelined behind a PUT."""

from __future__ import annotations

import os
import threading

import pytest
from bodies_support import assert_unchanged, head, listing, pattern, temp_files, wait_temp
from support import RawConn, request


def put(server, target: str, data: bytes, fields: dict | None = None):
    with RawConn(server.port) as conn:
        conn.send(head("PUT", target, {"Content-Length": len(data), **(fields or {})}) + data)
        status, headers, body = conn.response()
        closed = conn.closed_by_peer(timeout=10) if status >= 400 else None
        return status, headers, closed


def get(server, target: str) -> tuple[int, bytes]:
    status, _, body = request(server.port, target)
    return status, body


def delete(server, target: str | bytes) -> int:
    return request(server.port, target, method="DELETE")[0]


# --- PUT --------------------------------------------------------------------------------


def test_put_creates_then_replaces(server):
    status, headers, _ = put(server, "/up/put-new.txt", b"first version\n")
    assert status == 201
    assert headers["location"] == "/up/put-new.txt"
    assert (server.store / "put-new.txt").read_bytes() == b"first version\n"
    assert get(server, "/up/put-new.txt") == (200, b"first version\n")
    status, headers, _ = put(server, "/up/put-new.txt", b"v2")
    assert status == 204
    assert "content-length" not in headers
    assert (server.store / "put-new.txt").read_bytes() == b"v2"
    assert get(server, "/up/put-new.txt") == (200, b"v2")  # not the cached first version
    assert not temp_files(server.store)


def test_put_into_an_existing_subdirectory(server):
    (server.store / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    status, headers, _ = put(server, "/up/sub/deeper/f%20x.bin", b"\x00\xff" * 1000)
    assert status == 201
    assert headers["location"] == "/up/sub/deeper/f%20x.bin"
    assert (server.store / "sub" / "deeper" / "f x.bin").read_bytes() == b"\x00\xff" * 1000


def test_put_empty_body(server):
    assert put(server, "/up/put-empty.txt", b"")[0] == 201
    assert (server.store / "put-empty.txt").read_bytes() == b""


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/up/putdir", 409),  # an existing directory
        ("/up/putdir/", 409),  # a directory path
        ("/up/", 409),
        ("/up/no-such-parent/x.txt", 409),
        ("/up/put-file-as-dir.txt/x.txt", 409),  # the parent is a file
        ("/nostore/keep.txt", 403),
        ("/ro/page.txt", 405),
    ],
)
def test_put_refused_targets(server, target, status):
    (server.store / "putdir").mkdir(exist_ok=True)
    (server.store / "put-file-as-dir.txt").write_bytes(b"a file")
    before = listing(server.store)
    before_root = listing(server.root)
    got, _, closed = put(server, target, b"body that must not land anywhere")
    assert got == status
    assert closed  # the body was not read: the connection cannot go on
    assert_unchanged(server.store, before)
    assert listing(server.root) == before_root
    assert server.alive()


def test_put_through_a_symlink_out_of_the_store(server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"victim")
    os.symlink(outside, server.store / "outdir")
    os.symlink(outside / "victim.txt", server.store / "outfile.txt")
    status, _, closed = put(server, "/up/outdir/victim.txt", b"overwritten!")
    assert status == 403
    assert closed
    status, _, closed = put(server, "/up/outdir/new.txt", b"created outside!")
    assert status == 403
    # a symlinked file is replaced as a name in the store: its target is never written
    status, _, _ = put(server, "/up/outfile.txt", b"replaced the link")
    assert status in (204, 403)
    assert listing(outside) == {"victim.txt": b"victim"}
    assert server.alive()


def test_replace_is_atomic_for_a_reader_midway(server):
    """While a PUT's body is still arriving, readers get the old file, whole."""
    old, new = pattern(300_000, seed=1), pattern(600_000, seed=2)
    assert put(server, "/up/atomic.bin", old)[0] == 201
    with RawConn(server.port) as conn:
        conn.send(head("PUT", "/up/atomic.bin", {"Content-Length": len(new)}) + new[:400_000])
        wait_temp(server.store, min_size=200_000)
        assert get(server, "/up/atomic.bin") == (200, old)
        assert (server.store / "atomic.bin").read_bytes() == old
        conn.send(new[400_000:])
        assert conn.response()[0] == 204
    assert get(server, "/up/atomic.bin") == (200, new)


def test_concurrent_readers_never_see_a_mix(server):
    versions = [pattern(256 * 1024, seed=s) for s in (3, 4)] + [b"short"]
    assert put(server, "/up/mix.bin", versions[0])[0] in (201, 204)
    seen: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        with RawConn(server.port) as conn:
            while not stop.is_set():
                conn.send(head("GET", "/up/mix.bin"))
                status, _, body = conn.response()
                assert status == 200
                seen.append(body)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            assert put(server, "/up/mix.bin", versions[i % 3])[0] == 204
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen
    mixed = [body[:40] for body in seen if body not in versions]
    assert not mixed


def test_pipelined_get_is_answered_after_the_put(server):
    data = pattern(200_000, seed=5)
    with RawConn(server.port) as conn:
        conn.send(
            head("PUT", "/up/pipelined.bin", {"Content-Length": len(data)})
            + data
            + head("GET", "/up/pipelined.bin")
            + head("PUT", "/up/pipelined.bin", {"Content-Length": 3})
            + b"new"
            + head("GET", "/up/pipelined.bin")
        )
        assert conn.response()[0] == 201
        assert conn.response()[::2] == (200, data)
        assert conn.response()[0] == 204
        assert conn.response()[::2] == (200, b"new")


# --- DELETE -----------------------------------------------------------------------------


def test_delete_file_then_missing(server):
    (server.store / "del-me.txt").write_bytes(b"bye")
    assert get(server, "/up/del-me.txt") == (200, b"bye")  # and now in the open file cache
    assert delete(server, "/up/del-me.txt") == 204
    assert not (server.store / "del-me.txt").exists()
    assert get(server, "/up/del-me.txt")[0] == 404
    assert delete(server, "/up/del-me.txt") == 404
    assert delete(server, "/up/never-was.txt") == 404
    assert delete(server, "/up/no-dir/never-was.txt") == 404


def test_delete_what_was_uploaded(server):
    status, headers, _ = put(server, "/up/del-uploaded.txt", b"x")
    assert status == 201
    assert delete(server, headers["location"]) == 204
    assert not (server.store / "del-uploaded.txt").exists()


def test_delete_directory_is_409_and_not_recursive(server):
    (server.store / "deldir").mkdir(exist_ok=True)
    (server.store / "deldir" / "inside.txt").write_bytes(b"stays")
    before = listing(server.store)
    assert delete(server, "/up/deldir") == 409
    assert delete(server, "/up/deldir/") == 409
    assert delete(server, "/up/") == 409
    assert listing(server.store) == before


VICTIM = b"outside the store, untouched"


@pytest.mark.parametrize(
    "target",
    [
        b"/up/../victim.txt",
        b"/up/%2e%2e/%2e%2e/victim.txt",
        b"/up/..%2f..%2fvictim.txt",
        b"/up/..%5c..%5cvictim.txt",
        b"/up/..\\..\\victim.txt",
        b"/up/%2fvictim.txt",
        b"/up/outdir2/victim.txt",  # a symlinked directory leading out
        b"/up/outlink.txt",  # a symlink to a file outside
        b"/up/a%00b.txt",
        b"/up/.%2e/ro/page.txt",
    ],
)
def test_delete_never_reaches_outside_the_store(server, target):
    victim = server.tmp / "victim.txt"
    victim.write_bytes(VICTIM)
    if not (server.store / "outdir2").is_symlink():
        os.symlink(server.tmp, server.store / "outdir2")
        os.symlink(victim, server.store / "outlink.txt")
    before_root = listing(server.root)
    status = delete(server, target)
    assert status in (403, 404, 405), status
    assert victim.read_bytes() == VICTIM
    assert listing(server.root) == before_root
    assert (server.store / "outlink.txt").is_symlink()
    assert server.alive()


def test_nul_in_a_put_target_is_refused(server):
    before = listing(server.store)
    status, _, _ = put(server, "/up/a%00b.txt", b"nul")
    assert status in (400, 404, 409)
    assert_unchanged(server.store, before)
    assert server.alive()


def test_delete_without_upload_store_is_403(server):
    """DELETE writes too: allowed by allow_methods, but with no upload_store, nothing goes."""
    assert delete(server, "/nostore/keep.txt") == 403
    assert (server.root / "nostore" / "keep.txt").read_bytes() == b"keep\n"


def test_names_too_long_for_the_file_system(server):
    before = listing(server.store)
    long_name = "n" * 300
    status, _, closed = put(server, f"/up/{long_name}.txt", b"too long")
    assert status == 400  # refused from the header section: the body is never read
    assert closed
    assert delete(server, f"/up/{long_name}.txt") == 404
    assert_unchanged(server.store, before)


def test_partial_put_is_refused(server):
    """RFC 9110 §14.5: a PUT with Content-Range must get 400, or a part would be stored
    as the whole file."""
    (server.store / "ranged.txt").write_bytes(b"0123456789")
    before = listing(server.store)
    status, _, closed = put(server, "/up/ranged.txt", b"AB", {"Content-Range": "bytes 2-3/10"})
    assert status == 400
    assert closed
    assert_unchanged(server.store, before)
