"""webserv: an HTTP/1.1 origin server on asyncio/uvloop with an instrumented TCP lifecycle."""

__version__ = "0.1.0"
