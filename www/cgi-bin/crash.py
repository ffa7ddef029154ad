#!/usr/bin/env python3
"""CGI demo: raises before printing anything: 502 Bad Gateway, the traceback in error.log."""

raise RuntimeError("crash.py crashes on purpose, before any output")
