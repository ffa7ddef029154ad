"""Blocking file calls from the event loop: in a thread, and always seen to their end.

Uploads (handlers/upload.py) and CGI bodies spooled to a file (handlers/cgi.py) write from a
thread so the loop never waits for the disk. Their handlers are cancelled when the client
goes away; were the wait for a write given up then, the cleanup that follows would close
the descriptor while the thread still wrote to it — or to whatever file reused its number
next. So a cancellation is held back until the call has ended, then raised. This module owns
nothing else; it never touches a socket.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


async def in_thread(func: Any, *args: Any) -> Any:
    """func(*args) in the loop's default executor; its result, or its exception. A
    cancellation that arrives meanwhile is raised only once the call has returned."""
    future = asyncio.get_running_loop().run_in_executor(None, func, *args)
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break  # done, with an error: result() below raises it
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
