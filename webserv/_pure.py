"""Which build of webserv's modules runs: the compiled one (setup.py) or the .py source.

`pip install` compiles the modules setup.py lists, next to their .py, where Cython and a C
compiler are at hand; Python then imports the extension module in place of the .py. The
compiled modules are one unit: Connection's classes are a chain of extension types across
five of them, and a compiled module checks at import that the types it builds on are the
compiled ones. So `install()` (called by webserv/__init__.py before any other webserv
module loads) chooses once, for all of them:

- with WEBSERV_PURE=1 in the environment every module loads from its .py, so the same
  tree runs as pure Python (the test suite runs both ways);
- when a .py or .pxd is newer than its compiled module (edited since the build), every
  module loads from its .py too — never a stale copy, never half of each — and the
  start-up line names the edited ones (`make` rebuilds);
- otherwise Python's own finders load the compiled modules.

`build()` says which runs, for the start-up line. Owns that choice; never changes what a
module does.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

_SOURCE = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
stale: list[str] = []  # compiled modules older than their .py or .pxd


def pure() -> bool:
    return os.environ.get("WEBSERV_PURE") == "1"


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads webserv's modules from their .py, ahead of the extension modules beside them."""

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if not name.startswith("webserv.") or path is None:
            return None
        for folder in path:
            spec = importlib.machinery.FileFinder(folder, _SOURCE).find_spec(name, target)
            if spec is not None:
                return spec
        return None


def _stale_modules(package: str) -> list[str]:
    """The compiled modules under PACKAGE whose .py or .pxd is newer than them."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    out = []
    for folder, _dirs, files in os.walk(package):
        for file in files:
            if not file.endswith(suffixes):
                continue
            stem = file.split(".", 1)[0]
            try:
                built = os.stat(os.path.join(folder, file)).st_mtime
            except OSError:
                continue
            for source in (stem + ".py", stem + ".pxd"):
                try:
                    newer = os.stat(os.path.join(folder, source)).st_mtime > built
                except OSError:
                    continue
                if newer:
                    relative = os.path.relpath(os.path.join(folder, stem), package)
                    out.append("webserv." + relative.replace(os.sep, "."))
                    break
    return sorted(out)


def install() -> None:
    if any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        return
    if not pure():
        stale[:] = _stale_modules(_PACKAGE)
    if pure() or stale:
        sys.meta_path.insert(0, _SourceFinder())


def compiled() -> list[str]:
    """The loaded webserv modules that are extension modules (compiled)."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("webserv")
        and isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)
    )


def build() -> str:
    """How this process runs webserv, for the start-up line."""
    if pure():
        return "pure Python (WEBSERV_PURE=1)"
    if stale:
        return (
            f"pure Python: {len(stale)} compiled module{'s' * (len(stale) > 1)} edited since the build"
            f" ({', '.join(stale)}; make rebuilds them)"
        )
    names = compiled()
    return f"{len(names)} modules compiled" if names else "pure Python (not compiled: setup.py)"
