"""The compiled build and the pure-Python one (setup.py, webserv/_pure.py): the same tree,
both run; WEBSERV_PURE=1 picks the .py source, and the start-up line says which runs."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import REPO, RunningServer


def compiled_list() -> list[str]:
    """setup.py's COMPILED, read without running setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "COMPILED":
            return [ast.literal_eval(elt) for elt in node.value.elts]
    raise AssertionError("setup.py has no COMPILED list")


def module_file(name: str, pure: bool) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("WEBSERV_PURE", None)
    if pure:
        env["WEBSERV_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", f"import {name} as m; print(m.__file__)"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def modules() -> list[str]:
    return [path.removesuffix(".py").replace("/", ".") for path in compiled_list()]


def test_setup_lists_existing_modules() -> None:
    assert compiled_list(), "nothing is compiled"
    for path in compiled_list():
        assert (REPO / path).is_file(), path


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: nothing is compiled")
@pytest.mark.skipif(os.environ.get("WEBSERV_PURE") == "1", reason="the pure-Python run")
def test_every_listed_module_is_compiled_and_imported_so() -> None:
    # a build that failed quietly (setup.py goes on without it) fails here instead
    for name in modules():
        path = module_file(name, pure=False)
        assert path.endswith(".so"), f"{name} runs from {path}, not compiled"


def test_webserv_pure_imports_the_source() -> None:
    for name in modules():
        path = module_file(name, pure=True)
        assert path.endswith(".py"), f"{name} runs from {path} with WEBSERV_PURE=1"
        assert Path(path) == REPO / (name.replace(".", "/") + ".py")


CONF = """
master_process off;
error_log {tmp}/error.log notice;
http {{
    access_log off;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_start_line_says_which_build_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pure: bool
) -> None:
    if pure:
        monkeypatch.setenv("WEBSERV_PURE", "1")
    elif os.environ.get("WEBSERV_PURE") == "1":
        monkeypatch.delenv("WEBSERV_PURE")
    body = os.urandom(3000)
    server = RunningServer(tmp_path, CONF, files={"f.bin": body}).start()
    try:
        with httpx.Client() as client:
            for _ in range(2):  # the same answer, twice on one connection
                r = client.get(server.url("/f.bin"))
                assert r.status_code == 200 and r.content == body
        start = [
            line for line in server.error_log.read_text().splitlines() if "starting on" in line
        ]
        assert len(start) == 1, start
        if pure:
            assert "pure Python (WEBSERV_PURE=1)" in start[0]
        elif shutil.which("cc") is not None:
            assert "modules compiled" in start[0] and "edited since" not in start[0], start[0]
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: nothing is compiled")
@pytest.mark.skipif(os.environ.get("WEBSERV_PURE") == "1", reason="the pure-Python run")
@pytest.mark.parametrize("edited", [".py", ".pxd"])
def test_a_module_edited_since_the_build_makes_every_module_run_from_source(
    tmp_path: Path, edited: str
) -> None:
    # a copy of the package, so the repository's own build is not touched
    copy = tmp_path / "tree"
    shutil.copytree(REPO / "webserv", copy / "webserv", ignore=shutil.ignore_patterns("*.c"))
    typed = [n for n in modules() if (copy / (n.replace(".", "/") + ".pxd")).is_file()]
    name = typed[0] if edited == ".pxd" else modules()[-1]
    os.utime(copy / (name.replace(".", "/") + edited))  # newer than its compiled module
    # all of them from source, not only the edited one: the compiled ones build on each
    # other's extension types, so a mix would not even import
    names = ", ".join(modules())
    script = (
        f"import importlib, webserv._pure as p\nfor n in '{names}'.split(', '):\n"
        "    print(importlib.import_module(n).__file__)\nprint(p.build())"
    )
    env = dict(os.environ, PYTHONPATH=str(copy))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    *paths, build = out.stdout.splitlines()
    assert paths == [str(copy / (n.replace(".", "/") + ".py")) for n in modules()]
    assert f"pure Python: 1 compiled module edited since the build ({name};" in build
