"""dav_tree.Job (COPY and MOVE's file-system work) on real directories, with a disk that
fills up midway: the old destination stays as it was, no partial copy and no temporary name
is left. (The server can't be made to fail that way from outside: as root, every file is
readable; the requests themselves are test_dav.py's.)"""

from __future__ import annotations

import errno
import os

import pytest
from bodies_support import listing

from webserv.handlers import dav_tree
from webserv.http.errors import HttpError


def tree(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def site(tmp_path):
    tree(tmp_path, {"src/a": "A", "src/sub/b": "B", "src/sub/c": "C", "dst/old": "OLD"})
    tree(tmp_path, {"file": "NEW", "target": "OLDFILE"})
    return tmp_path


def full_disk_after(monkeypatch, count: int) -> None:
    real = dav_tree._copy_file
    calls = []

    def copy_file(*args):
        calls.append(args)
        if len(calls) > count:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(*args)

    monkeypatch.setattr(dav_tree, "_copy_file", copy_file)


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_failed_tree_copy_leaves_the_old_destination(site, monkeypatch, after):
    before = listing(site)
    full_disk_after(monkeypatch, after)
    job = dav_tree.Job(False, str(site / "src"), str(site / "dst"), str(site), True, True, False)
    with pytest.raises(HttpError) as info:
        job.run()
    assert info.value.status == 507
    assert listing(site) == before  # no partial tree, no temporary name


def test_a_failed_file_copy_leaves_the_old_file(site, monkeypatch):
    before = listing(site)
    full_disk_after(monkeypatch, 0)
    job = dav_tree.Job(
        False, str(site / "file"), str(site / "target"), str(site), False, True, False
    )
    with pytest.raises(HttpError) as info:
        job.run()
    assert info.value.status == 507
    assert listing(site) == before


def test_the_same_copy_without_a_fault(site):
    job = dav_tree.Job(False, str(site / "src"), str(site / "dst"), str(site), True, True, False)
    assert job.run() is True
    assert listing(site / "dst") == {"a": b"A", "sub": b"<dir>", "sub/b": b"B", "sub/c": b"C"}
    assert not [n for n in os.listdir(site) if n.startswith(dav_tree.TEMP_PREFIX)]
