"""From a routed Exchange to a Response: pick the handler, turn errors into error pages.

The connection calls `handle` once per request and `error_response` when anything failed;
both return a Response, or `handle` an awaitable of one for handlers that wait (CGI, uploads).
Internal redirects — `error_page URI` and a CGI script's local `Location:` — are one
function here (`internal_redirect`), with one counter; an error_page answers once per request.
An index file (`index_redirect`) and a phase's REROUTE (`reroute`) count on the same counter.
"""

from __future__ import annotations

from collections.abc import Awaitable

from . import phases
from .config.directives import REDIRECT_CODES
from .config.directives_requests import KNOWN_METHODS
from .handlers import cgi, dav, static, status, upload
from .http.errors import HttpError
from .http.request import Exchange, normalize_path, split_target
from .http.response import Response
from .http.status import NO_BODY, default_page

MAX_REDIRECTS = 10  # internal redirects of one request, error_page and CGI alike (nginx: 10)
# statuses after which nginx never keeps the connection: the request's framing is suspect
CLOSE_AFTER = frozenset({400, 408, 413, 414, 417, 431, 500, 501, 505})


def check_request(ex: Exchange, has_body: bool) -> HttpError | None:
    """Everything the header section decides: 405/501, 411, and the handler's own checks.

    Called before any body byte is read, so a refused body is never read (and never
    promised a `100 Continue`).
    """
    method = ex.method
    if method == "TRACE" or method == "CONNECT":
        # nginx refuses both before any location (ngx_http_process_request_header): a
        # `return` does not answer them; the connection closes, and no Allow is sent
        return HttpError(405, f"client sent {method} method", close=True)
    loc = ex.location
    if loc.return_ is not None:
        return None
    if loc.phases is not None:
        err = phases.check(ex)
        if err is not None:
            return err
    if loc.cgi and cgi.match(ex):
        if method not in loc.allow_methods:
            return _not_allowed(ex)
        return cgi.precheck(ex)
    if method not in loc.allow_methods:
        return _not_allowed(ex)
    if loc.dav is not None and method in loc.dav.methods:
        return dav.precheck(ex, has_body)  # nginx's dav module (dav_methods)
    if method in ("POST", "PUT"):
        if not has_body:
            return HttpError(411, f"{method} without Content-Length or Transfer-Encoding")
        return upload.precheck(ex)
    return None


def _not_allowed(ex: Exchange) -> HttpError:
    if ex.method not in KNOWN_METHODS:
        return HttpError(501, f'method "{ex.method}" is not implemented')
    loc = ex.location
    return HttpError(
        405,
        f'method "{ex.method}" not allowed in {loc.describe()}',
        fields=f"Allow: {loc.allow_header}\r\n".encode(),
    )


def takes_body(ex: Exchange) -> bool:
    """Whether the handler reads the request body as it arrives (else it is discarded)."""
    if ex.location.return_ is not None:
        return False
    return ex.cgi is not None or ex.method in ("POST", "PUT")


def handle(ex: Exchange, phased: bool = False) -> Response | Awaitable[Response]:
    loc = ex.location
    if loc.return_ is not None and not _phase_returns(loc):
        return answer_return(ex)
    if loc.phases is not None and not phased:
        return phases.run(ex, _after_phases, reroute)
    if ex.cgi is not None or (loc.cgi and cgi.match(ex)):
        return _cgi(ex)
    method = ex.method
    if method == "GET" or method == "HEAD":
        if loc.status:
            return status.status(ex)
        if loc.metrics:
            return status.metrics(ex)
        return static.serve(ex)
    if loc.dav is not None and method in loc.dav.methods:
        return dav.handle(ex)
    if method == "POST":
        return upload.post(ex)
    if method == "PUT":
        return upload.put(ex)
    if method == "DELETE":
        return upload.delete(ex)
    raise _not_allowed(ex)


def _phase_returns(loc) -> bool:
    """A rewrite phase answers this `return` after its rules (nginx runs them in order)."""
    return loc.phases is not None and any(getattr(p, "takes_return", False) for p in loc.phases)


def _after_phases(ex: Exchange) -> Response | Awaitable[Response]:
    return handle(ex, True)


def reroute(ex: Exchange) -> None:
    """A phase changed ex.path (rewrite ... last, try_files' fallback URI): the location
    it now selects answers, counted as an internal redirect."""
    _count_redirect(ex, ex.path)
    ex.location = ex.conn.worker.routes.location(ex.server, ex.path)
    ex.cgi = None


def index_redirect(ex: Exchange, uri: str) -> Response | Awaitable[Response]:
    """An index file (static.py): nginx's internal redirect to URI, which keeps the method,
    the query and the header section; the location URI selects answers, phases first."""
    ex.path = uri
    reroute(ex)
    return handle(ex)


def _count_redirect(ex: Exchange, target: str) -> None:
    ex.redirects += 1
    if ex.redirects > MAX_REDIRECTS:
        raise HttpError(
            500,
            f"rewrite or internal redirection cycle while internally redirecting to "
            f'"{target[:200]}"',
        )


def answer_return(ex: Exchange) -> Response:
    ret = ex.location.return_
    text = ret.render(ex) if ret.render is not None else None
    if ret.code == 444:
        return Response(444, close=True)  # nginx's "close without answering"
    if ret.code in REDIRECT_CODES:
        return static.redirect(ret.code, text or "", ex.location.server_tokens, ex)
    if text is None:
        if ret.code >= 400:
            raise HttpError(ret.code)  # asked for: nothing for the error log
        return Response(ret.code)
    ctype = ex.location.default_type
    return Response(
        ret.code, f"Content-Type: {ctype}\r\n".encode(), text.encode("utf-8", "surrogateescape")
    )


def error_response(ex: Exchange, err: HttpError) -> Response:
    """The answer to an error: the location's error_page if any, else the default page."""
    status = err.status
    if ex.location is None and ex.server is not None:
        # an error found before routing (400, 414, 431, ...): the server's own error_page
        # settings apply, as in nginx (the writer would pick the same fallback)
        ex.location = ex.server.fallback
    loc = ex.location
    close = err.close or status in CLOSE_AFTER
    if loc is not None and not ex.error_paged and status in loc.error_pages:
        page = loc.error_pages[status]
        response = _error_page(ex, status, page)
        if response is not None:
            response.close = response.close or close
            if response.status == status and err.fields:
                # a custom page still owes what the status requires: Allow on 405 (RFC 9110
                # §15.5.6), Content-Range on 416
                response.fields += err.fields
            return response
    tokens = loc.server_tokens if loc is not None else True
    if status in NO_BODY:
        response = Response(status, err.fields, close=close)
    else:
        body = default_page(status, tokens)
        ctype = loc.error_type if loc is not None else b"text/html"
        response = Response(
            status, b"Content-Type: " + ctype + b"\r\n" + err.fields, body, close=close
        )
    if ex.error_paged and loc is not None and loc.header_filter is not None:
        # its error_page failed: the writer leaves a paged exchange's headers to us
        loc.header_filter.apply(ex, response)
    return response


def _error_page(ex: Exchange, status: int, page) -> Response | None:
    uri = page.uri
    if uri.startswith(("http://", "https://")) or not uri.startswith("/"):
        code = page.override if page.override in REDIRECT_CODES else 302
        return static.redirect(code, uri, ex.location.server_tokens, ex)
    ex.error_paged = True
    saved = (ex.path, ex.query, ex.location, ex.method, ex.headers, ex.cgi)
    try:
        response = internal_redirect(ex, uri.encode("utf-8", "surrogateescape"))
        if not isinstance(response, Response):
            raise HttpError(500, "error_page target must answer at once")
    except HttpError as exc:
        ex.location.error_log.error(
            f'error_page "{uri}" for {status} failed: {exc.status} {exc.reason}', ex.conn.id
        )
        ex.path, ex.query, ex.location, ex.method, ex.headers, ex.cgi = saved
        return None
    if page.override is None:
        if response.status == 200:
            response.status = status
    elif page.override:
        response.status = page.override
    if response.status != 200 and response.fields:
        # the page file's validators and range support describe the page, not the error
        # (nginx drops them too): a cache must not revalidate a 404 as if it were the file
        response.fields = b"".join(
            line + b"\r\n"
            for line in response.fields.split(b"\r\n")
            if line and not line.startswith((b"Last-Modified:", b"Accept-Ranges:"))
        )
    header_filter = ex.location.header_filter
    if header_filter is not None:
        # add_header and expires of the page's location, as nginx's internal redirect has it
        # (the writer skips an error-paged exchange: it would take the first location's)
        header_filter.apply(ex, response)
    ex.path, ex.query, ex.location, ex.method, ex.headers, ex.cgi = saved
    return response


def internal_redirect(ex: Exchange, target: bytes) -> Response | Awaitable[Response]:
    """Answer as if the client had asked for TARGET (nginx's internal redirect): the same
    server, GET (HEAD stays HEAD), the location TARGET selects, no body, and none of the
    client's validators or ranges — they were about what it asked for, not about this.

    Used by `error_page URI` and by a CGI script's local `Location:` (RFC 3875 §6.2.2). One
    counter for both: past MAX_REDIRECTS hops the answer is 500, as nginx's "rewrite or
    internal redirection cycle". HttpError 400 for a TARGET that is not a path.
    """
    _count_redirect(ex, target.decode("latin-1"))
    raw_path, query, _ = split_target(target)
    ex.path = normalize_path(raw_path)
    ex.query = query.decode("latin-1")
    ex.location = ex.conn.worker.routes.location(ex.server, ex.path)
    ex.cgi = None  # the script of the old path must not answer for the new one
    if ex.method != "HEAD":
        ex.method = "GET"
    if not ex.headers.keys().isdisjoint(static.CONDITIONAL):
        ex.headers = {k: v for k, v in ex.headers.items() if k not in static.CONDITIONAL}
    return handle(ex)


async def _cgi(ex: Exchange) -> Response:
    """A CGI answer; a local redirect (`Location: /path`, no Status) is answered here."""
    result = await cgi.run(ex)
    if type(result) is Response:
        return result
    try:
        response = internal_redirect(ex, result.location)
    except HttpError as exc:
        if exc.status != 400:
            raise
        raise HttpError(
            502, f"CGI sent an invalid local Location {result.location[:200]!r}"
        ) from None
    return response if isinstance(response, Response) else await response
