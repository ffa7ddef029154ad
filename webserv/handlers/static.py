"""Static files: GET/HEAD, validators and 304, ranges and 206/416, index files, directories.

Never reads a file into memory: the response carries FileParts that the connection sends
with sendfile (but for a file the location recodes: recode.py's). Directory listings are
autoindex.py's.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable
from itertools import pairwise
from urllib.parse import quote

from .. import redirects
from ..compress import VARY
from ..files import OpenFile
from ..http.dates import parse_http_date
from ..http.errors import HttpError
from ..http.ranges import UNSATISFIABLE, coalesce, parse_range
from ..http.request import Exchange
from ..http.response import FilePart, Response
from ..http.status import default_page
from . import autoindex

# header names whose presence sends a request down the slow (conditional / range) path
CONDITIONAL = (
    b"if-none-match",
    b"if-modified-since",
    b"range",
    b"if-match",
    b"if-unmodified-since",
)


def resolve(ex: Exchange) -> tuple[str, str]:
    """The file-system path for ex.path under the location, and the real base it must stay in."""
    loc = ex.location
    if loc.alias is not None:
        rest = ex.path[loc.alias_strip :]  # the prefix of the location that said `alias`
        if rest and not loc.alias.endswith("/") and not rest.startswith("/"):
            raise HttpError(404, "alias prefix does not end at a path segment")
        return loc.alias + rest, loc.alias_real
    return loc.root + ex.path, loc.root_real


def serve(ex: Exchange) -> Response | Awaitable[Response]:
    loc = ex.location
    path, base = resolve(ex)
    if ex.path[-1:] == "/":
        return _directory(ex, path, base)
    vary = False
    compress = loc.compress
    if compress is not None and compress.static:
        variant = compress.serve_static(ex, path, base)  # gzip_static, brotli_static
        if type(variant) is Response:
            return variant
        vary = variant  # a variant exists (gzip_vary on): the plain answer says Vary too
    entry = ex.conn.worker.files.get(path, base, loc.open_file_cache, loc.open_file_cache_valid)
    if not entry.is_dir:
        if vary:
            return _vary(file_response(ex, entry))
        return file_response(ex, entry)
    entry.release()
    # ex.path is decoded: a "?", "#" or "%" in a directory's name must be encoded again,
    # or "/a%3Fb" would redirect to the path "/a" with the query "b/"
    path = quote(ex.path, safe=_PATH_SAFE, errors="surrogateescape")
    location = path + "/" + ("?" + ex.query if ex.query else "")
    return redirect(301, location, loc.server_tokens, ex)


def _directory(ex: Exchange, path: str, base: str) -> Response | Awaitable[Response]:
    """A URI ending in `/`: its index file (nginx's index module, tried before the directory
    itself is looked at: an absolute index needs no directory), else autoindex, else 403."""
    loc = ex.location
    compress = loc.compress
    files = ex.conn.worker.files
    dir_tested = False
    for name in loc.index:
        if type(name) is not str:
            name = name(ex)  # a name with $variables, rendered for this request
        if name[:1] == "/":
            return _index_redirect(ex, name)  # absolute: a URI, redirected to untested
        try:
            index = files.get(path + name, base, loc.open_file_cache, loc.open_file_cache_valid)
        except HttpError as exc:
            if exc.status != 404:
                raise
            if not dir_tested:  # (nginx's index module too: a missing directory is a 404,
                _test_dir(ex, path, base)  # whatever the names after this one)
                dir_tested = True
            continue
        # nginx's index module: an internal redirect to URI+name, the location chosen again
        # ($uri, a `~ \.html$` location, its headers and phases). When the same location
        # would answer it with nothing to run first, answering here is that redirect.
        uri = ex.path + name
        if ex.conn.worker.routes.location(ex.server, uri) is not loc or (
            loc.phases is not None or loc.cgi or index.is_dir  # (a directory: its 301)
        ):
            index.release()
            return _index_redirect(ex, uri)
        ex.path = uri
        ex.redirects += 1
        if compress is not None and compress.static:
            variant = compress.serve_static(ex, path + name, base)
            if type(variant) is Response:
                index.release()
                return variant
            if variant:
                return _vary(file_response(ex, index, name))
        return file_response(ex, index, name)
    if not dir_tested:
        _test_dir(ex, path, base)
    if loc.autoindex:
        return autoindex.listing(ex, path)
    raise HttpError(403, f'directory index of "{path}" is forbidden')


def _test_dir(ex: Exchange, path: str, base: str) -> None:
    """404 if the directory of a URI ending in `/` is missing or is not a directory."""
    loc = ex.location
    ex.conn.worker.files.get(path, base, loc.open_file_cache, loc.open_file_cache_valid).release()


def _index_redirect(ex: Exchange, uri: str) -> Response | Awaitable[Response]:
    from .. import dispatch  # (dispatch imports this module: the one redirect lives there)

    return dispatch.index_redirect(ex, uri)


def _vary(response: Response) -> Response:
    response.fields += VARY
    return response


def redirect(
    status: int, location: str, tokens: bool = True, ex: Exchange | None = None
) -> Response:
    """A redirect with nginx's small HTML body. The target is percent-encoded where it must be;
    with EX, a path is made absolute where its location says (absolute_redirect)."""
    if ex is not None:
        location = redirects.location(ex, location)
    target = quote(location, safe=_URL_SAFE, errors="surrogateescape")
    fields = b"Content-Type: text/html\r\nLocation: " + target.encode("latin-1") + b"\r\n"
    return Response(status, fields, default_page(status, tokens))


# characters that may stand in a URL as they are; everything else (CR, LF, spaces, non-ASCII)
# is percent-encoded, so a redirect can never split the header section
_URL_SAFE = "/:?#[]@!$&'()*+,;=-._~%"
# RFC 3986 pchar and "/": what a decoded path may keep as it is in a URL
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def content_type(ex: Exchange, name: str) -> str:
    loc = ex.location
    dot = name.rfind(".")
    if dot < 0 or "/" in name[dot:]:
        return loc.default_type
    return loc.types.get(name[dot + 1 :].lower(), loc.default_type)


def file_response(ex: Exchange, entry: OpenFile, name: str | None = None) -> Response:
    loc = ex.location
    # keyed on the location, not only its types map: two locations can share one map but
    # differ in default_type, and a cached file reached through both must not mix them
    if entry.fields_types is not loc:
        ctype = content_type(ex, name or entry.path)
        etag = f"ETag: {entry.etag}\r\n" if loc.etag else ""  # `etag off`: none
        accept = "Accept-Ranges: bytes\r\n" if loc.max_ranges != 0 else ""  # (0: no ranges)
        entry.fields = (
            f"Content-Type: {ctype}\r\nLast-Modified: {entry.last_modified}\r\n{etag}{accept}"
        ).encode("latin-1")
        entry.fields_types = loc
    recode = loc.recode  # source_charset -> charset (recode.py); None: not here
    if recode is not None and recode.takes(entry.fields):
        if ex.headers.keys().isdisjoint(CONDITIONAL):
            return recode.apply(ex, whole_file(entry))
        # a recoding that changes the length serves no ranges (nginx: no Content-Length)
        return recode.apply(ex, _conditional(ex, entry, recode.same_length))
    if not ex.headers.keys().isdisjoint(CONDITIONAL):
        return _conditional(ex, entry)
    return whole_file(entry)


def whole_file(entry: OpenFile) -> Response:
    """A 200 with the whole file: from memory when the cache holds its bytes, else sendfile."""
    data = entry.data
    if data is not None:
        entry.release()  # nothing reads the descriptor for this answer
        return Response(200, entry.fields, data)
    return Response(
        200, entry.fields, parts=[FilePart(entry.fd, 0, entry.size, entry)], length=entry.size
    )


def _etag_matches(header: str, etag: str | None, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    if etag is None:  # `etag off`: only "*" matches, as in nginx
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            if not weak:
                continue
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _conditional(ex: Exchange, entry: OpenFile, ranges_ok: bool = True) -> Response:
    """RFC 9110 §13.2.2: preconditions in order, then the range.

    `etag off` leaves the file without an entity tag (only `*` matches it); the location's
    `if_modified_since` says how If-Modified-Since compares (nginx: exact by default)."""
    headers = ex.headers
    loc = ex.location
    etag = entry.etag if loc.etag else None
    if_match = ex.header(b"if-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag, weak=False):
            entry.release()
            raise HttpError(412)
    else:
        since = ex.header(b"if-unmodified-since")
        if since is not None:
            when = parse_http_date(since)
            if when is not None and entry.mtime > when:
                entry.release()
                raise HttpError(412)
    if_none_match = ex.header(b"if-none-match")
    not_modified = False
    if if_none_match is not None:
        not_modified = _etag_matches(if_none_match, etag, weak=True)
    elif b"if-modified-since" in headers and loc.if_modified_since != "off":
        when = parse_http_date(ex.header(b"if-modified-since") or "")
        if when is None:
            not_modified = False
        elif loc.if_modified_since == "exact":
            not_modified = when == entry.mtime
        else:  # "before"
            not_modified = entry.mtime <= when
    if not_modified:
        entry.release()
        fields = f"Last-Modified: {entry.last_modified}\r\n"
        if etag is not None:
            fields += f"ETag: {etag}\r\n"
        return Response(304, fields.encode("latin-1"), length=None)
    range_header = ex.header(b"range")
    # an empty file has no byte a range could describe (a suffix range on it is even
    # "satisfiable" by RFC 9110 §14.1.1 with nothing to send): answer 200, as nginx does
    if range_header is None or ex.method != "GET" or entry.size == 0:
        return whole_file(entry)
    if not ranges_ok or loc.max_ranges == 0:
        return whole_file(entry)
    compress = loc.compress
    if compress is not None and compress.gzip and compress.will_gzip(ex, entry.fields, entry.size):
        return whole_file(entry)  # as nginx: gzipped on the fly, the whole file with 200
    if_range = ex.header(b"if-range")
    if if_range is not None and not _if_range_fresh(ex, if_range.strip(), entry, etag):
        return whole_file(entry)
    ranges = parse_range(range_header, entry.size, loc.max_ranges)
    if ranges is None:
        return whole_file(entry)
    if ranges == UNSATISFIABLE:
        entry.release()
        raise HttpError(416, fields=f"Content-Range: bytes */{entry.size}\r\n".encode())
    assert isinstance(ranges, list)
    if len(ranges) > 1 and any(b[0] <= a[1] for a, b in pairwise(sorted(ranges))):
        ranges = coalesce(ranges)  # overlapping ranges: RFC 9110 §14.2 lets a server merge them
    fields_base = entry.fields.replace(b"Accept-Ranges: bytes\r\n", b"")
    if len(ranges) == 1:
        first, last = ranges[0]
        fields = fields_base + f"Content-Range: bytes {first}-{last}/{entry.size}\r\n".encode()
        length = last - first + 1
        return Response(
            206, fields, parts=[FilePart(entry.fd, first, length, entry)], length=length
        )
    return _multipart(ex, entry, ranges, fields_base)


def _if_range_fresh(ex: Exchange, if_range: str, entry: OpenFile, etag: str | None) -> bool:
    """RFC 9110 §13.1.5, against the validators the answer carries: an `add_header` ETag or
    Last-Modified replaces the file's (nginx compares what its headers filter left)."""
    if if_range.endswith('"'):  # an entity tag (nginx's test); it needs a strong match
        sent = _added(ex, "etag")
        if sent is not None:
            etag = sent or None
        return etag is not None and not if_range.startswith("W/") and if_range == etag
    sent = _added(ex, "last-modified")
    if sent is None:
        modified: float | None = entry.mtime
    else:
        modified = parse_http_date(sent) if sent else None  # "": no Last-Modified at all
    return modified is not None and parse_http_date(if_range) == modified


def _added(ex: Exchange, name: str) -> str | None:
    """The value the location's add_header gives header NAME (the last one wins), or None."""
    header_filter = ex.location.header_filter
    if header_filter is None:
        return None
    found = None
    for header in header_filter.safe:
        if header.name.lower() == name:
            found = header
    if found is None:
        return None
    return found.value if found.render is None else found.render(ex)


conditional = _conditional  # (compress.py: the same rules for a precompressed variant)

_boundaries = itertools.count(1)  # multipart boundaries: unique within the process


def _multipart(
    ex: Exchange, entry: OpenFile, ranges: list[tuple[int, int]], fields: bytes
) -> Response:
    boundary = f"{os.getpid():010d}{next(_boundaries):010d}"
    ctype = content_type(ex, entry.path)
    parts: list[bytes | FilePart] = []
    length = 0
    # every part holds a reference on the descriptor; release() runs once per part
    for first, last in ranges:
        head = (
            f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n"
            f"Content-Range: bytes {first}-{last}/{entry.size}\r\n\r\n"
        ).encode("latin-1")
        parts.append(head)
        parts.append(FilePart(entry.fd, first, last - first + 1, entry))
        length += len(head) + last - first + 1
    tail = f"\r\n--{boundary}--\r\n".encode()
    parts.append(tail)
    length += len(tail)
    entry.users += len(ranges) - 1
    lines = [
        line for line in fields.split(b"\r\n") if line and not line.startswith(b"Content-Type:")
    ]
    fields = f"Content-Type: multipart/byteranges; boundary={boundary}\r\n".encode() + b"".join(
        line + b"\r\n" for line in lines
    )
    return Response(206, fields, parts=parts, length=length)
