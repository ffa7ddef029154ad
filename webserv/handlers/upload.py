"""Uploads and deletions: POST (browser multipart forms and raw bodies), PUT and DELETE.

A file on disk is either a complete upload or not there at all. Every upload is written to
a hidden temporary file in its final directory, flushed with fsync, and only named when the
whole request body has arrived: `link` for a new name (never an overwrite: a taken name gets
a suffix), `rename` for PUT's replace. Any failure — a client that resets, a timeout, 413
midway, a malformed form, a full disk — removes the temporary files. Disk work runs in a
thread; the RequestBody pauses the socket while it lags, so memory stays flat.

The temporary files themselves are pending.py's. Paths: the directory is opened first and
its real path (/proc/self/fd) checked to lie in the configured store, and every later step
works relative to that descriptor (`dir_fd`), so a symlink swapped in between cannot
redirect a write outside.
"""

from __future__ import annotations

import errno
import html
import json
import os
import secrets
import stat
import time
from typing import Any
from urllib.parse import quote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .. import redirects
from ..files import contained
from ..http.errors import HttpError
from ..http.request import Exchange
from ..http.response import Response, field
from . import static
from .pending import TEMP_PREFIX, PendingFile, _in_thread  # noqa: F401 (dav.py's too)

MAX_FIELD_BYTES = 64 * 1024  # a non-file form field is kept in memory for the summary
MAX_NAME_BYTES = 200  # room left for a "-N" suffix under the usual 255-byte limit
MAX_EXT_BYTES = 32
_PROC_FD = "/proc/self/fd/" if os.path.isdir("/proc/self/fd") else None


# --- where a request may write -----------------------------------------------------------


def write_target(ex: Exchange) -> tuple[str, str, str]:
    """(directory, name, real base) that PUT and DELETE address for ex.path."""
    loc = ex.location
    if loc.upload_store is not None:
        if loc.modifier in ("", "^~"):
            rel = ex.path[len(loc.pattern) :]
        else:
            rel = os.path.basename(ex.path)
        path = os.path.join(loc.upload_store, rel.lstrip("/"))
        base_real = loc.upload_store_real
    else:
        path, base_real = static.resolve(ex)
    if "\x00" in path:
        raise HttpError(404, "NUL in path")  # as the file layer answers a GET of it
    directory, name = os.path.split(path)
    if name.startswith(TEMP_PREFIX):
        # an upload in progress (or one a killed server left): not a file of the site
        raise HttpError(404 if ex.method == "DELETE" else 403, f'"{name}" is a reserved name')
    return directory, name, base_real


def open_directory(directory: str, base_real: str) -> int:
    """An O_DIRECTORY descriptor for a directory inside base_real; 403/404/409 otherwise."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HttpError(409, f'directory "{directory}" does not exist') from None
    except NotADirectoryError:
        raise HttpError(409, f'"{directory}" is not a directory') from None
    except OSError as exc:
        raise HttpError(403, f'open() "{directory}" failed ({exc.strerror})') from None
    real = os.readlink(_PROC_FD + str(fd)) if _PROC_FD else os.path.realpath(directory)
    if not contained(real, base_real):
        os.close(fd)
        raise HttpError(403, f'"{directory}" resolves outside "{base_real}"')
    return fd


def precheck(ex: Exchange) -> HttpError | None:
    """What can be refused from the header section alone, before any body byte is read."""
    loc = ex.location
    if loc.upload_store is None:
        return HttpError(403, f"{ex.method} to {loc.describe()}, which has no upload_store")
    if ex.method == "PUT":
        if b"content-range" in ex.headers:
            # a partial body would be stored as if it were the whole file (RFC 9110 §14.5)
            return HttpError(400, "PUT with Content-Range (partial PUT) is not supported")
        try:
            directory, name, base = write_target(ex)
            if not name or ex.path.endswith("/"):
                return HttpError(409, f'PUT to a directory path "{ex.path}"')
            fd = open_directory(directory, base)
        except HttpError as exc:
            return exc
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                return HttpError(409, f'PUT onto the directory "{ex.path}"')
        except FileNotFoundError:
            pass
        except OSError as exc:  # ENAMETOOLONG: refused now, not as a 500 after the body
            return HttpError(
                400 if exc.errno == errno.ENAMETOOLONG else 403,
                f'stat() "{name}" failed ({exc.strerror})',
            )
        finally:
            os.close(fd)
    elif ex.method == "POST":
        mime, params = parse_options_header(ex.headers.get(b"content-type", b""))
        if mime == b"multipart/form-data" and not params.get(b"boundary"):
            return HttpError(400, "multipart/form-data without a boundary")
    return None


def safe_name(client_name: str) -> str:
    """The client's file name reduced to a plain base name: no path, no NUL, no leading dot."""
    name = client_name.replace("\\", "/").rsplit("/", 1)[-1]
    # control characters, and lone surrogates (which no file name can be encoded with)
    name = "".join(c for c in name if c >= " " and c != "\x7f" and not "\ud800" <= c <= "\udfff")
    name = name.strip().lstrip(".").strip()
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, ext = os.path.splitext(name)
        if len(ext.encode()) > MAX_EXT_BYTES:
            # not an extension worth keeping whole: keeping it made names too long to create
            stem, ext = name, ""
        name = stem.encode()[: MAX_NAME_BYTES - len(ext.encode())].decode("utf-8", "ignore") + ext
    return name or generated_name("")


def _client_file_name(raw: bytes) -> str:
    """Browsers send UTF-8; an older client may send Latin-1, which decoding cannot fail on."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def generated_name(ext: str) -> str:
    return time.strftime("upload-%Y%m%d-%H%M%S-") + secrets.token_hex(4) + ext


# --- the handlers --------------------------------------------------------------------------


async def put(ex: Exchange) -> Response:
    directory, name, base = write_target(ex)
    dir_fd = open_directory(directory, base)
    pending = None
    try:
        pending = PendingFile(dir_fd)
        async for chunk in ex.body:
            await _in_thread(pending.write, chunk)
        await _in_thread(pending.seal)
        created = await _in_thread(pending.replace, name)
        await _in_thread(os.fsync, dir_fd)
        pending = None
    finally:
        if pending is not None:
            pending.discard()  # in the loop: see PendingFile.discard
        os.close(dir_fd)
    ex.conn.worker.files.forget(os.path.join(directory, name))
    if created:
        return Response(
            201,
            field("Location", redirects.location(ex, quote(ex.path)))
            + b"Content-Type: text/plain\r\n",
            b"created\n",
        )
    return Response(204)


async def post(ex: Exchange) -> Response:
    loc = ex.location
    dir_fd = open_directory(loc.upload_store, loc.upload_store_real)
    pending: list[PendingFile] = []
    try:
        mime, params = parse_options_header(ex.headers.get(b"content-type", b""))
        fields: dict[str, str] = {}
        if mime == b"multipart/form-data":
            await _read_multipart(ex, dir_fd, params[b"boundary"], pending, fields)
        else:
            pending.append(PendingFile(dir_fd))
            ext = _extension_for(loc, mime.decode("latin-1"))
            pending[0].client_name = generated_name(ext)
            async for chunk in ex.body:
                await _in_thread(pending[0].write, chunk)
            await _in_thread(pending[0].seal)
        stored = []
        for item in pending:
            if not item.client_name and item.size == 0:
                # a file input left empty: browsers still send a part, with filename=""
                item.discard()
                continue
            name = await _in_thread(item.link_new, safe_name(item.client_name))
            stored.append((name, item.size, item.client_name))
        pending.clear()
        await _in_thread(os.fsync, dir_fd)
    finally:
        for item in pending:
            item.discard()
        os.close(dir_fd)
    for name, _, _ in stored:
        ex.conn.worker.files.forget(os.path.join(loc.upload_store, name))
    return _summary(ex, stored, fields)


async def _read_multipart(
    ex: Exchange, dir_fd: int, boundary: bytes, pending: list[PendingFile], fields: dict[str, str]
) -> None:
    """Stream every file part to its own temporary file as the body arrives."""
    events: list[tuple[str, Any]] = []
    part: dict[str, Any] = {}

    def on_part_begin() -> None:
        part.clear()
        part["headers"] = {}
        part["field"], part["value"] = b"", b""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][part["field"].lower()] = part["value"]
        part["field"], part["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        part["name"] = name
        if filename is not None:
            events.append(("open", _client_file_name(filename)))
            part["file"] = True
        else:
            part["file"] = False
            part["data"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("file"):
            events.append(("data", data[start:end]))
        else:
            if len(part["data"]) + end - start > MAX_FIELD_BYTES:
                raise HttpError(413, "a form field is larger than 64k")
            part["data"] += data[start:end]

    def on_part_end() -> None:
        if part.get("file"):
            events.append(("close", None))
        else:
            fields[part.get("name", "")] = part["data"].decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
        max_header_count=16,
    )
    current: PendingFile | None = None
    try:
        async for chunk in ex.body:
            parser.write(chunk)
            for kind, value in events:
                if kind == "open":
                    current = PendingFile(dir_fd, value)
                    pending.append(current)
                elif kind == "data":
                    await _in_thread(current.write, value)
                else:
                    await _in_thread(current.seal)
                    current = None
            events.clear()
        parser.finalize()
    except MultipartParseError as exc:
        raise HttpError(400, f"malformed multipart body: {exc}") from None
    if parser.state != _END_STATE or current is not None:
        raise HttpError(400, "multipart body ended before its closing boundary")


def _end_state() -> Any:
    from python_multipart.multipart import MultipartState

    return MultipartState.END


_END_STATE = _end_state()


def _extension_for(loc: Any, mime: str) -> str:
    for ext, ctype in loc.types.items():
        if ctype == mime:
            return "." + ext
    return ".bin"


def _summary(ex: Exchange, stored: list[tuple[str, int, str]], fields: dict[str, str]) -> Response:
    loc = ex.location
    prefix = loc.pattern if loc.modifier in ("", "^~") and loc.pattern.endswith("/") else "/"
    urls = [prefix + quote(name) for name, _, _ in stored]
    status = 201 if stored else 200
    location = field("Location", urls[0]) if stored else b""
    if b"application/json" in ex.headers.get(b"accept", b""):
        data = {
            "stored": [
                {"name": n, "size": s, "url": u, "client_name": c}
                for (n, s, c), u in zip(stored, urls, strict=True)
            ],
            "fields": fields,
        }
        return Response(
            status,
            location + b"Content-Type: application/json\r\n",
            json.dumps(data).encode() + b"\n",
        )
    items = "".join(
        f'<li><a href="{html.escape(u)}">{html.escape(n)}</a> ({s} bytes)</li>'
        for (n, s, _), u in zip(stored, urls, strict=True)
    )
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Upload</title></head><body>'
        f"<h1>{len(stored)} file(s) stored</h1><ul>{items}</ul>"
        '<p><a href="javascript:history.back()">Back</a></p></body></html>\n'
    )
    return Response(status, location + b"Content-Type: text/html; charset=utf-8\r\n", body.encode())


def delete(ex: Exchange) -> Response:
    loc = ex.location
    if loc.upload_store is None:
        # DELETE writes too: without an upload_store nothing under the root may be removed
        raise HttpError(403, f"DELETE in {loc.describe()}, which has no upload_store")
    directory, name, base = write_target(ex)
    if not name or ex.path.endswith("/"):
        raise HttpError(409, f'DELETE of a directory "{ex.path}"')
    try:
        dir_fd = open_directory(directory, base)
    except HttpError as exc:
        raise HttpError(404 if exc.status == 409 else exc.status, exc.reason) from None
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise HttpError(409, f'DELETE of the directory "{ex.path}" (not recursive)')
        if stat.S_ISLNK(st.st_mode):
            # a GET of this name is refused when the link leads out of the store (files.py);
            # DELETE answers the same, rather than removing what the operator put there
            dir_real = (
                os.readlink(_PROC_FD + str(dir_fd)) if _PROC_FD else os.path.realpath(directory)
            )
            if not contained(os.path.realpath(os.path.join(dir_real, name)), base):
                raise HttpError(403, f'"{os.path.join(directory, name)}" links outside "{base}"')
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise HttpError(404, f'"{os.path.join(directory, name)}" does not exist') from None
    except PermissionError as exc:
        raise HttpError(403, f"unlink failed ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        raise HttpError(404, f'"{name[:64]}..." is too long a name') from None
    finally:
        os.close(dir_fd)
    ex.conn.worker.files.forget(os.path.join(directory, name))
    return Response(204)
