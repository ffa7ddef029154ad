"""webserv: an HTTP/1.1 origin server on asyncio/uvloop with an instrumented TCP lifecycle."""

__version__ = "0.1.0"

from . import _pure

_pure.install()  # WEBSERV_PURE=1: the .py source even where compiled modules are
