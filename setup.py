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
    "webserv/http/dates.py",
    "webserv/stats_batch.py",
    "webserv/synprint.py",
    "webserv/lifecycle_json.py",
    "webserv/tcpinfo.py",
]


class OptionalBuildExt(build_ext):
    """build_ext that warns and goes on when a module cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers
            print(f"webserv: not compiled ({exc}); the pure-Python modules run", file=sys.stderr)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"webserv: {ext.name} not compiled ({exc})", file=sys.stderr)


def extensions() -> list:
    if os.environ.get("WEBSERV_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("webserv: Cython not found; the pure-Python modules run", file=sys.stderr)
        return []
    return cythonize(
        COMPILED,
        language_level=3,
        quiet=True,
        compiler_directives={"binding": False, "annotation_typing": False},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
