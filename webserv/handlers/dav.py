"""WebDAV's methods (nginx's ngx_http_dav_module, `dav_methods`): PUT, DELETE, MKCOL, COPY
and MOVE on the files under the location's root or alias.

This module owns the request's rules, with nginx's status codes: the collection (trailing
`/`) rules, Depth, Destination, Overwrite, min_delete_depth, 415 for a body where none is
taken. The file-system work is dav_tree.py's (atomic: a temporary name in the target's
directory, renamed into place) and runs in a thread; PUT's body streams through
pending.PendingFile as webserv's own uploads do. Every path is opened relative to a
directory descriptor whose real path was checked to lie under the location's base.
"""

from __future__ import annotations

import errno
import os
import stat
from urllib.parse import quote, unquote_to_bytes

from .. import redirects
from ..blocking import in_thread
from ..http.dates import parse_http_date
from ..http.errors import HttpError
from ..http.request import Exchange, host_name, normalize_path
from ..http.response import Response, field
from . import dav_tree
from .dav_tree import TEMP_PREFIX, dav_error
from .pending import PendingFile, _in_thread

INFINITY = -1


def precheck(ex: Exchange, has_body: bool) -> HttpError | None:
    """What the header section decides, before any body byte is read."""
    method = ex.method
    if method == "PUT":
        if not has_body:
            return HttpError(411, "PUT without Content-Length or Transfer-Encoding")
        if ex.path.endswith("/"):
            return HttpError(409, "cannot PUT to a collection")
        if b"content-range" in ex.headers:
            return HttpError(501, "PUT with range is unsupported")
        try:
            path, base = target(ex)
            parent_fd, missing = dav_tree.open_parent(
                os.path.dirname(path), base, ex.location.dav.create_full_put_path
            )
        except HttpError as exc:
            return exc
        try:
            if not missing:
                st = os.stat(os.path.basename(path), dir_fd=parent_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    return HttpError(409, f'"{path}" could not be created (is a directory)')
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                return dav_error(exc, 409, "stat()", path)
        finally:
            os.close(parent_fd)
        return None
    headers = ex.headers
    if b"transfer-encoding" in headers or int(headers.get(b"content-length", b"0")) > 0:
        return HttpError(415, f"{method} with body is unsupported")
    return None


def target(ex: Exchange, uri: str | None = None) -> tuple[str, str]:
    """(file-system path, real base) of URI (default the request's) under ex's location."""
    loc = ex.location
    uri = ex.path if uri is None else uri
    if loc.alias is not None:
        rest = uri[loc.alias_strip :]
        if rest and not loc.alias.endswith("/") and not rest.startswith("/"):
            raise HttpError(404, "alias prefix does not end at a path segment")
        path, base = loc.alias + rest, loc.alias_real
    else:
        path, base = loc.root + uri, loc.root_real
    if "\x00" in path:
        raise HttpError(404, "NUL in path")
    if os.path.basename(path.rstrip("/")).startswith(TEMP_PREFIX):
        raise HttpError(404, "a reserved name (an upload in progress)")
    return path, base


def _created(ex: Exchange) -> Response:
    return Response(201, field("Location", redirects.location(ex, quote(ex.path))))


def handle(ex: Exchange):
    method = ex.method
    if method == "PUT":
        return put(ex)
    if method == "DELETE":
        return delete(ex)
    if method == "MKCOL":
        return mkcol(ex)
    return copy_move(ex)


# --- PUT ---------------------------------------------------------------------------------


async def put(ex: Exchange) -> Response:
    dav = ex.location.dav
    path, base = target(ex)
    directory, name = os.path.split(path)
    parent_fd, missing = dav_tree.open_parent(directory, base, dav.create_full_put_path)
    pending = None
    try:
        # the temporary file is in the deepest directory that exists: a client that goes
        # away leaves neither a file nor the directories create_full_put_path would make
        pending = PendingFile(parent_fd)
        os.fchmod(pending.fd, dav.file_mode)
        async for chunk in ex.body:
            await _in_thread(pending.write, chunk)
        date = ex.headers.get(b"date")
        mtime = parse_http_date(date.decode("latin-1")) if date is not None else None
        if mtime is not None:
            await _in_thread(os.utime, pending.fd, (mtime, mtime))
        await _in_thread(pending.seal)
        created = await _in_thread(
            dav_tree.place_file, pending.temp, parent_fd, missing, name, dav.dir_mode
        )
        pending = None
    except OSError as exc:
        raise dav_error(exc, 409, "rename()", path) from None
    finally:
        if pending is not None:
            pending.discard()
        os.close(parent_fd)
    ex.conn.worker.files.forget(path)
    return _created(ex) if created else Response(204)


# --- DELETE ------------------------------------------------------------------------------


def depth(ex: Exchange, default: int) -> int | None:
    """The Depth header as nginx reads it: 0, 1, infinity (INFINITY), None if invalid."""
    value = ex.headers.get(b"depth")
    if value is None:
        return default
    return {b"0": 0, b"1": 1, b"infinity": INFINITY}.get(value)


def _deep_enough(uri: str, minimum: int) -> bool:
    """nginx's count: MINIMUM slashes with something after the last one counted."""
    slashes = 0
    for i, ch in enumerate(uri):
        if ch == "/":
            slashes += 1
            if slashes >= minimum and i + 1 < len(uri):
                return True
    return False


async def delete(ex: Exchange) -> Response:
    loc = ex.location
    if loc.dav.min_delete_depth and not _deep_enough(ex.path, loc.dav.min_delete_depth):
        raise HttpError(409, f"insufficient URI depth to DELETE {ex.path!r}")
    path, base = target(ex)
    bare = path.rstrip("/")
    if bare in (loc.root, (loc.alias or "").rstrip("/")) or not bare:
        raise HttpError(403, "DELETE of the location's own root")
    directory, name = os.path.split(bare)
    dir_fd = dav_tree.open_dir(directory, base, 404)
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise dav_error(exc, 404, "lstat()", path) from None
        if stat.S_ISDIR(st.st_mode):
            if not ex.path.endswith("/"):
                raise HttpError(409, f'DELETE "{path}" failed (is a directory)')
            if depth(ex, INFINITY) != INFINITY:
                raise HttpError(400, '"Depth" header must be infinity')
            await in_thread(dav_tree.remove, dir_fd, name, True)  # errors: dav_error
        else:
            if ex.path.endswith("/"):
                raise HttpError(409, f'"{path}" is not a directory')
            if depth(ex, 0) not in (0, INFINITY):
                raise HttpError(400, '"Depth" header must be 0 or infinity')
            dav_tree.remove(dir_fd, name, False)
    except OSError as exc:
        raise dav_error(exc, 404, "delete", path) from None
    finally:
        os.close(dir_fd)
    dav_tree.forget(ex, bare)
    return Response(204)


# --- MKCOL -------------------------------------------------------------------------------


def mkcol(ex: Exchange) -> Response:
    if not ex.path.endswith("/"):
        raise HttpError(409, "MKCOL can create a collection only")
    path, base = target(ex)
    loc = ex.location
    if path.rstrip("/") in (loc.root.rstrip("/"), (loc.alias or "").rstrip("/")):
        raise HttpError(405, "MKCOL of the location's root, which exists")
    directory, name = os.path.split(path.rstrip("/"))
    dir_fd = dav_tree.open_dir(directory, base, 409)
    try:
        os.mkdir(name, ex.location.dav.dir_mode, dir_fd=dir_fd)
    except OSError as exc:
        raise dav_error(exc, 409, "mkdir()", path) from None
    finally:
        os.close(dir_fd)
    dav_tree.forget(ex, path.rstrip("/"))
    return _created(ex)


# --- COPY and MOVE -----------------------------------------------------------------------


def destination(ex: Exchange) -> str:
    """The Destination header's path (decoded, normalised), by nginx's rules: a path, or
    an absolute URI of this scheme and host (any port); 400 otherwise."""
    value = ex.headers.get(b"destination")
    if value is None:
        raise HttpError(400, 'client sent no "Destination" header')
    invalid = HttpError(400, f'client sent invalid "Destination" header: {value[:200]!r}')
    if value.startswith(b"/"):
        raw = value
    else:
        prefix = ex.conn.scheme.encode() + b"://"
        if not value.lower().startswith(prefix):
            raise invalid
        rest = value[len(prefix) :]
        slash = rest.find(b"/")
        if slash < 0:
            raise invalid
        try:
            same = host_name(rest[:slash]) == ex.host
        except HttpError:
            raise invalid from None
        if not same:
            raise HttpError(
                400, f'"Destination" {value[:200]!r} is handled by a different repository'
            )
        raw = rest[slash:]
    raw = raw.split(b"?", 1)[0].split(b"#", 1)[0]
    # nginx's ngx_http_parse_unsafe_uri: no ".." segment and no NUL, before or after decoding
    for form in (raw, unquote_to_bytes(raw)):
        if b"\x00" in form or b".." in form.split(b"/"):
            raise invalid
    try:
        return normalize_path(raw)
    except HttpError:
        raise invalid from None


async def copy_move(ex: Exchange) -> Response:
    loc = ex.location
    move = ex.method == "MOVE"
    dest = destination(ex)
    collection = ex.path.endswith("/")
    if collection != dest.endswith("/"):
        raise HttpError(409, "URI and Destination should be either collections or non-collections")
    if loc.alias is not None and not dest.startswith(ex.path[: loc.alias_strip]):
        # nginx maps any Destination with the source's alias; webserv keeps it inside
        raise HttpError(400, f"Destination {dest!r} is outside {loc.describe()}")
    want = depth(ex, INFINITY)
    if want != INFINITY and (move or want != 0):
        raise HttpError(
            400,
            '"Depth" header must be infinity' if move else '"Depth" header must be 0 or infinity',
        )
    overwrite_value = ex.headers.get(b"overwrite", b"T")
    if overwrite_value not in (b"T", b"t", b"F", b"f"):
        raise HttpError(400, f'client sent invalid "Overwrite" header: {overwrite_value!r}')
    overwrite = overwrite_value in (b"T", b"t")
    src, base = target(ex)
    dst, _ = target(ex, dest)
    src, dst = src.rstrip("/"), dst.rstrip("/")
    if src == dst:
        raise HttpError(403, "URI and Destination point to the same location")
    if collection and (dst.startswith(src + "/") or src.startswith(dst + "/")):
        raise HttpError(403, f"{ex.path!r} could not be {ex.method}ed into itself")
    roots = (loc.root, (loc.alias or "").rstrip("/"), "")
    if src in roots or dst in roots:
        raise HttpError(403, f"{ex.method} of the location's own root")
    job = dav_tree.Job(move, src, dst, base, collection, overwrite, want == 0)
    created = await in_thread(job.run)
    dav_tree.forget(ex, src)
    dav_tree.forget(ex, dst)
    if created:
        return Response(201)
    return Response(204)
