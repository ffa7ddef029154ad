"""The optional compiled build: the hot modules compiled by Cython from their own .py source.

The modules in COMPILED are plain Python, run as they are everywhere. Where Cython (a build
requirement, fetched from PyPI by pip) and a C compiler are at hand, `pip install` also
compiles each of them, next to its .py, into an extension module that Python imports in its
place; the .pxd beside a module declares its types (Cython's "pure Python mode", so the
.py stays the one source). Where compiling fails, the install goes on without it and
webserv runs the .py (one line says so at start). WEBSERV_PURE=1 at install builds
nothing; at run time it makes webserv import the .py even where the compiled modules are
(webserv/_pure.py): the test suite runs both ways.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED: list[str] = [
    # Connection's chain of extension types (framing.pxd: the slots) and what it calls
    "webserv/framing.py",
    "webserv/writer.py",
    "webserv/reader.py",
    "webserv/lifetime.py",
    "webserv/connection.py",
    "webserv/http/request.py",
    "webserv/http/response.py",
    "webserv/http/status.py",
    "webserv/http/dates.py",
    "webserv/dispatch.py",
    "webserv/handlers/static.py",
    "webserv/files.py",
    "webserv/logs.py",
    "webserv/variables.py",
    "webserv/worker.py",
    "webserv/stats.py",
    "webserv/headers.py",
    # leaf modules: loops over bytes and numbers
    "webserv/stats_batch.py",
    "webserv/synprint.py",
    "webserv/lifecycle_json.py",
    "webserv/tcpinfo.py",
]


class OptionalBuildExt(build_ext):
    """build_ext that warns and goes on when the modules cannot be compiled. All or none:
    the compiled modules import each other's extension types, so one that failed would
    break the others; then none is kept and the .py run."""

    def run(self) -> None:
        self.failed: list[str] = []
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers
            self.failed.append(str(exc))
        if self.failed:
            for ext in self.extensions:
                for path in {self.get_ext_fullpath(ext.name), self._inplace_path(ext.name)}:
                    if os.path.exists(path):
                        os.unlink(path)
            print(
                f"webserv: not compiled ({'; '.join(self.failed)}); the pure-Python modules run",
                file=sys.stderr,
            )

    def _inplace_path(self, name: str) -> str:
        inplace, self.inplace = self.inplace, True
        try:
            return self.get_ext_fullpath(name)
        finally:
            self.inplace = inplace

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.failed.append(f"{ext.name}: {exc}")


def extensions() -> list:
    if os.environ.get("WEBSERV_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("webserv: Cython not found; the pure-Python modules run", file=sys.stderr)
        return []
    try:
        return cythonize(
            COMPILED,
            language_level=3,
            quiet=True,
            # the types are the .pxd files', never the annotations (a `str | None` there is
            # documentation, not a C type); binding: methods stay functions Python can bind
            compiler_directives={"binding": True, "annotation_typing": False},
        )
    except Exception as exc:  # a .pxd that no longer matches its .py
        print(f"webserv: not compiled ({exc}); the pure-Python modules run", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
