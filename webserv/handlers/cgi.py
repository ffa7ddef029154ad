"""CGI (RFC 3875): run a script for a request, stream the body in and its output out.

dispatch.py calls `match` (does the path name a script?), `precheck` (before any body byte
is read: can it run?) and `run` (the answer). The script gets exactly the meta-variables of
cgi_env.py, its own directory as working directory and its own process group (cgi_process.py);
its header section is parsed by cgi_response.py. Output is streamed to the client as it
comes (chunked, or the script's own Content-Length), never waited for: only when the script
has closed its stdout by the time its header section is parsed (a short script) is the
answer sent whole, with a Content-Length. A chunked request
body is spooled to an unnamed temporary file first, because CONTENT_LENGTH must be known
before the script starts; a body with a Content-Length is streamed to stdin as it arrives.

cgi_timeout counts from the start of the script: before its header section it is a 504,
after it the response is aborted (the client sees an unterminated body). The script's whole
process group is killed on a timeout, a client disconnect or any failure, and every child
is reaped. This module never blocks the event loop and never touches a socket.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from ..blocking import in_thread, write_all
from ..files import contained
from ..http.errors import HttpError
from ..http.request import Exchange
from ..http.response import Response
from ..http.status import NO_BODY
from . import static
from .cgi_env import build_env
from .cgi_process import Child
from .cgi_response import HEAD_LIMIT, BadHead, find_end, parse


class Script:
    """Where a request's path names a CGI script: found by `match`, checked by `precheck`."""

    __slots__ = (
        "name",
        "path_info",
        "filename",
        "path_translated",
        "base",
        "interpreter",
        "real",
        "checked",
    )

    def __init__(
        self,
        name: str,
        path_info: str,
        filename: str,
        path_translated: str,
        base: str,
        interpreter: str | None,
    ) -> None:
        self.name = name  # SCRIPT_NAME: the URI path of the script
        self.path_info = path_info  # PATH_INFO: what follows it in the path
        self.filename = filename  # SCRIPT_FILENAME
        self.path_translated = path_translated
        self.base = base  # the real root the script must stay in
        self.interpreter = interpreter
        self.real = filename  # symlinks resolved by precheck: what is executed
        self.checked = False


def match(ex: Exchange) -> Script | None:
    """The script the path names (the first segment ending in a `cgi` extension), or None."""
    script = ex.cgi
    if script is not None:
        return script
    path = ex.path
    end, ext = -1, ""
    for candidate in ex.location.cgi:
        start = 1
        while True:
            i = path.find(candidate, start)
            if i < 0:
                break
            stop = i + len(candidate)
            # a whole segment, longer than the extension itself ("/.py" is not a script)
            if (stop == len(path) or path[stop] == "/") and path[i - 1] != "/":
                if end < 0 or stop < end:
                    end, ext = stop, candidate
                break
            start = i + 1
    if end < 0:
        return None
    name, path_info = path[:end], path[end:]
    ex.path = name  # static.resolve maps ex.path through root or alias
    try:
        filename, base = static.resolve(ex)
    finally:
        ex.path = path
    loc = ex.location
    translated = loc.root + path_info if path_info else ""
    script = ex.cgi = Script(name, path_info, filename, translated, base, loc.cgi[ext])
    return script


def precheck(ex: Exchange) -> HttpError | None:
    """Can the script run? Only `stat`s and `access`: it is called before the body is read."""
    script = match(ex)
    if script is None or script.checked:
        return None
    script.checked = True
    path = script.filename
    if "\x00" in path:
        return HttpError(404, "NUL in CGI script path")
    try:
        st, real = _stat_real(path)
    except (FileNotFoundError, NotADirectoryError):
        return HttpError(404, f'CGI script "{path}" not found')
    except OSError as exc:
        return HttpError(403, f'CGI script "{path}": stat() failed ({exc.strerror})')
    if stat.S_ISDIR(st.st_mode):
        return HttpError(403, f'CGI script "{path}" is a directory')
    if not stat.S_ISREG(st.st_mode):
        return HttpError(403, f'CGI script "{path}" is not a regular file')
    if not contained(real, script.base):
        return HttpError(403, f'CGI script "{path}" resolves to "{real}", outside "{script.base}"')
    script.real = real  # executed by this name, so a symlink swapped in later cannot escape
    interpreter = script.interpreter
    if interpreter is None:
        if not os.access(real, os.X_OK):
            return HttpError(
                502,
                f'CGI script "{path}" is not executable and no '
                f"interpreter is configured for it (cgi EXT INTERPRETER;)",
            )
    elif not os.access(interpreter, os.X_OK):
        why = "not found" if not os.path.exists(interpreter) else "not executable"
        return HttpError(502, f'CGI interpreter "{interpreter}" for "{path}" is {why}')
    return None


_O_PATH = getattr(os, "O_PATH", 0)


def _stat_real(path: str) -> tuple[os.stat_result, str]:
    """PATH's stat and its real path, symlinks resolved: what the kernel opened, from
    /proc/self/fd (open, fstat, readlink, close: one system call less than stat +
    realpath's lstat of every component, and a few Python calls instead of its loop)."""
    if not _O_PATH:
        return os.stat(path), os.path.realpath(path)
    fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # no /proc
            real = os.path.realpath(path)
    finally:
        os.close(fd)
    return st, real


class LocalRedirect:
    """A script's `Location: /path` without a Status (RFC 3875 §6.2.2): dispatch answers it
    as if the client had asked for that path (dispatch.internal_redirect)."""

    __slots__ = ("location",)

    def __init__(self, location: bytes) -> None:
        self.location = location


async def run(ex: Exchange) -> Response | LocalRedirect:
    """Run the script the path names: its Response, or where it redirects locally."""
    script = match(ex)
    assert script is not None
    err = precheck(ex)
    if err is not None:
        raise err
    # after an internal redirect the request is a GET: the body was the first script's
    body = ex.body if ex.redirects == 0 else None
    result = await _run_script(ex, script, body)
    return result if isinstance(result, Response) else LocalRedirect(result)


async def _run_script(ex: Exchange, script: Script, body: Any) -> Response | bytes:
    """One script run: a Response, or the path of a local redirect."""
    spool = -1
    length: int | None = None
    if body is not None:
        length = body.length
        if length is None:
            spool, length = await _spool(body)
    stdin: Any = subprocess.DEVNULL
    if spool >= 0:
        stdin = spool
    elif length:
        stdin = subprocess.PIPE
    env = build_env(ex, script, length)
    argv = [script.real] if script.interpreter is None else [script.interpreter, script.real]
    cwd = os.path.dirname(script.real)
    try:
        child = await Child.spawn(
            ex.conn.worker.children,
            argv,
            cwd,
            env,
            stdin,
            script.name,
            ex.conn.id,
            ex.location.cgi_timeout,
        )
        child.log = ex.location.error_log
    except OSError as exc:
        why = exc.strerror or repr(exc)
        raise HttpError(502, f'CGI "{script.name}" could not be started: {why}') from None
    finally:
        if spool >= 0:
            os.close(spool)  # the script has its own descriptor of the file
    if stdin is subprocess.PIPE:
        child.feed(body)
    try:
        head, rest = await _read_head(child, script)
        if head.local_redirect:
            child.release()
            return head.location  # type: ignore[return-value]
        status, fields = head.status, head.fields
        if ex.head or status in NO_BODY:
            child.release()  # the script runs its course; what it prints is dropped
            response = Response(status, fields)
            response.length = head.length  # HEAD: what a GET would say, or none (chunked)
            return response
        if head.content_type is None:
            # RFC 3875 §6.3.1: a body needs a Content-Type; none means no body at all
            data = rest or await child.read()
            _check(child, script, before="the end of its output")
            if data:
                raise HttpError(502, f'CGI "{script.name}" sent a body without Content-Type')
            child.release()
            return Response(status, fields)
        if head.length == 0:
            child.release()
            return Response(status, fields)
        if ex.location.add_trailers is None:  # (trailers go only after a chunked body)
            whole = child.whole_output(rest)
            if whole is not None and (head.length is None or len(whole) >= head.length):
                # the script has ended its output already (a short script usually has):
                # one answer with a Content-Length, not a stream
                child.release()
                body = whole if head.length is None else whole[: head.length]
                return Response(status, fields, body=body)
            if whole is not None:
                rest = whole  # shorter than its Content-Length: the stream reports it
        stream = _output(child, rest, head.length, script.name, ex.conn.id)
        return Response(status, fields, stream=stream, length=head.length)
    except BaseException as exc:
        # a timeout, a client gone (CancelledError), a bad header section: no more script
        child.kill(_why(exc))
        raise


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "the client went away"
    if isinstance(exc, HttpError):
        return f"answered {exc.status}"
    return repr(exc)


def _check(child: Child, script: Script, before: str) -> None:
    """After the output ended early: why, as the error to answer with."""
    if child.timed_out:
        raise HttpError(
            504,
            f'CGI "{script.name}" (pid {child.pid}) timed out (cgi_timeout) '
            f"before {before}: its process group is killed",
        )
    if child.failure is not None:
        raise child.failure  # the request body failed first (408, client gone)


async def _read_head(child: Child, script: Script) -> tuple[Any, bytes]:
    """The parsed header section and the body bytes read with it; HttpError 502 / 504."""
    buf = b""
    while True:
        data = await child.read()
        if not data:
            _check(child, script, before="its header section")
            code = await child.exited  # stdout closed: the exit is near (or cgi_timeout)
            _check(child, script, before="its header section")
            raise HttpError(
                502,
                f'CGI "{script.name}" exited with status {code} before '
                f"its header section was complete ({len(buf)} bytes)",
            )
        searched = len(buf)
        buf += data
        end = find_end(buf, searched)
        if end is not None:
            break
        if len(buf) > HEAD_LIMIT:
            raise HttpError(502, f'CGI "{script.name}" header section exceeds {HEAD_LIMIT} bytes')
    try:
        head = parse(buf[: end[0]])
    except BadHead as exc:
        raise HttpError(
            502, f'CGI "{script.name}" sent a malformed header section: {exc}'
        ) from None
    return head, buf[end[1] :]


async def _output(
    child: Child, first: bytes, length: int | None, label: str, conn_id: int
) -> AsyncIterator[bytes]:
    """The script's stdout after its header section, as it comes; `length` bytes if given.

    Raising ends the response abnormally: the writer aborts the connection, so a client
    can tell a cut body from a whole one.
    """
    sent = 0
    clean = False
    try:
        data = first
        while True:
            if data:
                if length is not None and sent + len(data) >= length:
                    yield data[: length - sent]
                    break  # all that was announced: whatever follows is dropped
                sent += len(data)
                yield data
            data = await child.read()
            if not data:
                if child.timed_out:
                    why = "timed out (cgi_timeout) mid-response"
                elif child.failure is not None:
                    why = f"lost its request body mid-response ({child.failure})"
                elif child.killed:
                    why = "was killed mid-response"
                elif length is not None:
                    why = f"ended after {sent} of the {length} bytes of its Content-Length"
                else:
                    break
                message = f'CGI "{label}" (pid {child.pid}) {why}: connection aborted'
                child.log.error(message, conn_id)
                raise CgiAborted(why)
        clean = True
    finally:
        if clean:
            child.release()
        else:
            child.kill("the response did not complete")


class CgiAborted(Exception):
    """The response cannot be completed; the connection is aborted."""


async def _spool(body: Any) -> tuple[int, int]:
    """A chunked body into an unnamed temporary file: (descriptor at offset 0, length)."""
    fd, name = tempfile.mkstemp(prefix="webserv-cgi-body-")
    os.unlink(name)
    size = 0
    try:
        async for chunk in body:
            await in_thread(write_all, fd, chunk)  # never closed under a writing thread
            size += len(chunk)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd, size
