"""Compression: Accept-Encoding negotiation, precompressed files, gzip on the fly.

One `Compress` object per location that sets any of gzip, gzip_static or brotli_static
(built at load by config/directives_compress.py; `Location.compress is None` elsewhere, so a
location without them pays one `is None`). It does two jobs:
- `serve_static` (called by handlers/static.py, nginx's ngx_http_gzip_static_module and
  ngx_brotli's static module): FILE.br / FILE.gz beside FILE, opened through the same
  FileCache as any file (same root check, no symlink escape), answered with the compressed
  file's own validators, ranges and length.
- `apply` (called by writer.py before the header section is encoded, nginx's gzip filter):
  compresses a 200/403/404 answer of a `gzip_types` type on the fly with zlib. A body from
  memory is compressed at once; a file or a stream becomes a stream of bounded chunks
  (compress_stream.py; flow control is the writer's: it awaits a drain whenever the
  socket is full).

Never: touch sockets, compress an answer that has a Content-Encoding, a range (206), a HEAD
body, or for a client whose Accept-Encoding refuses gzip.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from .compress_stream import GzipBody
from .http.errors import HttpError
from .http.response import Response

GZIP_STATUSES = frozenset({200, 403, 404})  # what nginx's gzip filter compresses
# gzip of bodies up to MEMO_BODY bytes kept per location (files.SMALL_FILE: the cached ones)
MEMO_BODY = 16 * 1024
MEMO_ENTRIES = 256
VARY = b"Vary: Accept-Encoding\r\n"
# qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )  (RFC 9110 §12.4.2)
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 §8.4.1.3: a recipient SHOULD treat it as gzip
_MEMO_MAX = 256
_memo: dict[bytes, dict[str, float]] = {}
# nginx's `msie6` (ngx_http_process_user_agent): MSIE 4-6 without the SV1 service pack
_MSIE6 = re.compile(r"MSIE [4-6]\.(?!.*SV1)")


def parse_accept_encoding(value: str) -> dict[str, float]:
    """coding (lower-case) -> q. An invalid qvalue refuses its coding (q 0), as nginx does;
    a repeated coding keeps its highest q."""
    prefs: dict[str, float] = {}
    for element in value.split(","):
        coding, _, params = element.partition(";")
        coding = coding.strip(" \t").lower()
        if not coding:
            continue
        q = 1.0
        if params:
            for param in params.split(";"):
                name, _, text = param.partition("=")
                if name.strip(" \t").lower() == "q":
                    text = text.strip(" \t")
                    q = float(text) if _QVALUE.fullmatch(text) else 0.0
                    break
        coding = _ALIASES.get(coding, coding)
        if q > prefs.get(coding, -1.0):
            prefs[coding] = q
    return prefs


def preferences(header: bytes) -> dict[str, float]:
    """parse_accept_encoding, memoised: clients send a handful of distinct values."""
    prefs = _memo.get(header)
    if prefs is None:
        prefs = parse_accept_encoding(header.decode("latin-1"))
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        _memo[header] = prefs
    return prefs


def quality(prefs: dict[str, float], coding: str) -> float:
    """How much the client wants CODING: its own q, else `*`'s, else 0 (not acceptable)."""
    q = prefs.get(coding)
    if q is None:
        q = prefs.get("*", 0.0)
    return q


class Compress:
    """One location's compression settings; see the module docstring."""

    __slots__ = (
        "gzip",
        "static",
        "variants",
        "vary",
        "types",
        "any_type",
        "min_length",
        "level",
        "http_minor",
        "proxied",
        "disable",
        "msie6",
        "memo",
    )

    def __init__(
        self,
        gzip: bool,
        gzip_static: str,
        brotli_static: str,
        vary: bool,
        types: frozenset[str],
        min_length: int,
        level: int,
        http_minor: int,
        proxied: frozenset[str],
        disable: tuple[re.Pattern[str], ...],
        msie6: bool,
    ) -> None:
        self.gzip = gzip
        # (coding, suffix, mode) in the order they are preferred at equal q: brotli first
        variants = []
        if brotli_static != "off":
            variants.append(("br", ".br", brotli_static))
        if gzip_static != "off":
            variants.append(("gzip", ".gz", gzip_static))
        self.variants = tuple(variants)
        self.static = bool(variants)
        self.vary = vary
        self.any_type = "*" in types
        self.types = types | {"text/html"}  # nginx: text/html is always among them
        self.min_length = min_length
        self.level = level
        self.http_minor = http_minor
        self.proxied = proxied
        self.disable = disable
        self.msie6 = msie6
        # body object -> (body, its gzip): the open file cache hands out the same bytes
        # object for a small cached file until it changes, so its gzip is made once
        self.memo: dict[int, tuple[bytes, bytes]] = {}

    # --- who may get gzip: nginx's ngx_http_gzip_ok -------------------------------------

    def client_ok(self, ex: Any, fields: bytes | None) -> bool:
        """gzip_http_version, gzip_proxied, gzip_disable (Accept-Encoding is checked apart).
        FIELDS: the answer's header lines for gzip_proxied (None: not built yet)."""
        if ex.minor < self.http_minor:
            return False
        headers = ex.headers
        if b"via" in headers and not self._proxied_ok(ex, fields):
            return False
        if self.disable or self.msie6:
            agent = ex.header(b"user-agent")
            if agent is not None:
                if self.msie6 and _MSIE6.search(agent):
                    return False
                if any(p.search(agent) for p in self.disable):
                    return False
        return True

    def _proxied_ok(self, ex: Any, fields: bytes | None) -> bool:
        proxied = self.proxied
        if "any" in proxied:
            return True
        if "auth" in proxied and b"authorization" in ex.headers:
            return True
        low = (fields or b"").lower()
        if "expired" in proxied and b"expires:" in low:
            return True
        cache_control = _value(low, b"cache-control:")
        for word in ("no-cache", "no-store", "private"):
            if word in proxied and cache_control is not None and word.encode() in cache_control:
                return True
        if "no_last_modified" in proxied and b"last-modified:" not in low:
            return True
        return "no_etag" in proxied and b"etag:" not in low

    # --- gzip_static / brotli_static ----------------------------------------------------

    def serve_static(self, ex: Any, path: str, base: str) -> Response | bool:
        """The precompressed variant of PATH as a Response, or whether the identity answer
        owes `Vary: Accept-Encoding` (gzip_vary on, mode `on`, a variant exists)."""
        loc = ex.location
        header = ex.headers.get(b"accept-encoding")
        prefs = preferences(header) if header is not None else None
        files = ex.conn.worker.files
        vary = False
        order = self.variants
        if prefs is not None and len(order) == 2 and quality(prefs, "gzip") > quality(prefs, "br"):
            order = order[::-1]  # the client's own preference wins; at equal q, brotli
        for coding, suffix, mode in order:
            if mode == "always":
                wanted = True
            else:
                wanted = prefs is not None and quality(prefs, coding) > 0
                if wanted and coding == "gzip":
                    wanted = self.client_ok(ex, None)
                if not wanted and not self.vary:
                    continue  # nothing to learn from the file: do not even open it
            try:
                entry = files.get(
                    path + suffix, base, loc.open_file_cache, loc.open_file_cache_valid
                )
            except HttpError as exc:
                if exc.status != 404:  # (nginx: logged, and the plain file is served)
                    ex.location.error_log.error(exc.reason, ex.conn.id)
                continue
            if mode == "on":
                vary = vary or self.vary
            if not wanted or entry.is_dir:
                entry.release()
                continue
            return self._variant(ex, entry, coding, path, mode == "on" and self.vary)
        return vary

    def _variant(self, ex: Any, entry: Any, coding: str, path: str, vary: bool) -> Response:
        from .handlers import static  # (static imports this module's users: no cycle at load)

        loc = ex.location
        extra = b"Content-Encoding: " + coding.encode() + b"\r\n" + (VARY if vary else b"")
        # the entry's fields describe it as a variant of PATH: keyed on this object, not on
        # the location, so a direct request for FILE.gz (another type) never shares them
        if entry.fields_types is not self:
            ctype = static.content_type(ex, path)
            etag = f"ETag: {entry.etag}\r\n" if loc.etag else ""
            entry.fields = (
                (f"Content-Type: {ctype}\r\nLast-Modified: {entry.last_modified}\r\n{etag}").encode(
                    "latin-1"
                )
                + extra
                + b"Accept-Ranges: bytes\r\n"
            )
            entry.fields_types = self
        if ex.headers.keys().isdisjoint(static.CONDITIONAL):
            return static.whole_file(entry)
        response = static.conditional(ex, entry)
        if response.status == 304:
            response.fields += extra  # nginx keeps Content-Encoding and Vary on a 304
        return response

    # --- gzip on the fly ----------------------------------------------------------------

    def eligible(self, status: int, fields: bytes, length: int | None) -> bool:
        """Whether nginx's gzip filter takes this answer, whoever asked for it."""
        if status not in GZIP_STATUSES or (length is not None and length < self.min_length):
            return False
        low = fields.lower()
        if b"content-encoding:" in low:
            return False  # never twice
        if self.any_type:
            return True
        ctype = _value(low, b"content-type:")
        if ctype is None:
            return False
        return ctype.split(b";", 1)[0].strip().decode("latin-1") in self.types

    def accepted(self, ex: Any, fields: bytes) -> bool:
        header = ex.headers.get(b"accept-encoding")
        if header is None or quality(preferences(header), "gzip") <= 0:
            return False
        return self.client_ok(ex, fields)

    def will_gzip(self, ex: Any, fields: bytes, length: int) -> bool:
        """Static files: a Range is ignored (full 200) when the answer will be gzipped."""
        return self.eligible(200, fields, length) and self.accepted(ex, fields)

    def apply(self, ex: Any, response: Response) -> None:
        """Compress RESPONSE in place when nginx's gzip filter would."""
        fields = response.fields
        if response.status == 206:
            # nginx's gzip filter saw the 200 before its range filter made it a 206 (a client
            # that accepts gzip gets the 200 instead: static.py): Vary, as that 200 had
            if self.vary and self.eligible(200, fields, None):
                response.fields = fields + VARY
            return
        if not self.eligible(response.status, fields, response.length):
            return
        if not self.accepted(ex, fields):
            if self.vary:
                response.fields = fields + VARY
            return
        response.fields = _gzip_fields(fields) + (VARY if self.vary else b"")
        response.length = None  # (the writer sends no Content-Length)
        if ex.head:
            return  # the headers a GET would get; the writer sends no body
        parts = response.parts
        if parts is not None:
            response.parts = None
            response.stream = GzipBody(self.level, parts=parts)
        elif response.stream is not None:
            response.stream = GzipBody(self.level, source=response.stream)
        else:
            body = response.body
            known = self.memo.get(id(body))
            if known is not None and known[0] is body:  # (the memo keeps BODY alive)
                data = known[1]
            else:
                data = _gzip(body, self.level)
                if len(body) <= MEMO_BODY:
                    if len(self.memo) >= MEMO_ENTRIES:
                        self.memo.clear()
                    self.memo[id(body)] = (body, data)
            if ex.minor == 1:  # framed here: a body from memory has no chunked shape
                response.fields += b"Transfer-Encoding: chunked\r\n"
                data = b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"
            else:
                response.close = True  # HTTP/1.0: the end of the body is the close
            response.body = data


def _value(low_fields: bytes, name: bytes) -> bytes | None:
    """The value of header NAME (lower-case, with its colon) in lower-cased FIELDS."""
    if low_fields.startswith(name):
        start = len(name)
    else:
        at = low_fields.find(b"\n" + name)
        if at < 0:
            return None
        start = at + 1 + len(name)
    end = low_fields.find(b"\r\n", start)
    return low_fields[start : end if end >= 0 else None].strip()


def _gzip_fields(fields: bytes) -> bytes:
    """nginx's gzip header filter: no Accept-Ranges, a weak ETag, Content-Encoding: gzip."""
    out = []
    for line in fields.split(b"\r\n"):
        if not line:
            continue
        low = line[:14].lower()
        if low.startswith(b"accept-ranges:") or low.startswith(b"content-length"):
            continue
        if low.startswith(b"etag:"):
            value = line[5:].strip()
            if value.startswith(b"W/"):
                pass
            elif value.startswith(b'"'):
                line = b"ETag: W/" + value
            else:
                continue  # not an entity tag: nginx drops it
        out.append(line + b"\r\n")
    out.append(b"Content-Encoding: gzip\r\n")
    return b"".join(out)


def _gzip(data: bytes, level: int) -> bytes:
    z = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    return z.compress(data) + z.flush()
