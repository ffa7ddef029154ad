"""Which build of webserv's modules runs: the compiled one (setup.py) or the .py source.

`pip install` compiles the modules setup.py lists, next to their .py, where Cython and a C
compiler are at hand; Python then imports the extension module in place of the .py.
`install()` (called by webserv/__init__.py before any other webserv module loads) puts a
finder first on sys.meta_path for webserv's own modules:

- with WEBSERV_PURE=1 in the environment it loads every module from its .py, so the same
  tree runs as pure Python (the test suite runs both ways);
- otherwise it loads a compiled module only while it is newer than its .py: one edited
  since the build runs from its source (and the start-up line counts it), never stale.

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
stale: list[str] = []  # compiled modules older than their .py, run from the .py


def pure() -> bool:
    return os.environ.get("WEBSERV_PURE") == "1"


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, source_only: bool) -> None:
        self.source_only = source_only

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if not name.startswith("webserv.") or path is None:
            return None
        if self.source_only:
            return _source_spec(name, path, target)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        compiled = spec.origin or ""
        source = os.path.join(os.path.dirname(compiled), name.rpartition(".")[2] + ".py")
        try:
            if os.stat(source).st_mtime <= os.stat(compiled).st_mtime:
                return spec
        except OSError:
            return spec
        stale.append(name)
        return _source_spec(name, path, target)


def _source_spec(name: str, path: Any, target: ModuleType | None) -> Any:
    for folder in path:
        spec = importlib.machinery.FileFinder(folder, _SOURCE).find_spec(name, target)
        if spec is not None:
            return spec
    return None


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(source_only=pure()))


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
    names = compiled()
    out = f"{len(names)} modules compiled" if names else "pure Python (not compiled: setup.py)"
    if stale:
        out += f", {len(stale)} edited since the build run from their .py ({', '.join(stale)})"
    return out
