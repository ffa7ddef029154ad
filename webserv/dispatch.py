"""From a routed Exchange to a Response: pick the handler, turn errors into error pages.

The connection calls `handle` once per request and `error_response` when anything failed;
both return a Response, or `handle` an awaitable of one for handlers that wait (CGI, uploads).
Internal redirects of `error_page` are resolved here, once, never recursively.
"""

from __future__ import annotations

from collections.abc import Awaitable

from . import router
from .config.directives import REDIRECT_CODES, KNOWN_METHODS
from .http.errors import HttpError
from .http.request import Exchange, normalize_path, split_target
from .http.response import Response
from .http.status import NO_BODY, default_page
from .handlers import static
from .logs import error_log

# statuses after which nginx never keeps the connection: the request's framing is suspect
CLOSE_AFTER = frozenset({400, 408, 413, 414, 431, 500, 501, 505})


def check_method(ex: Exchange) -> HttpError | None:
    """405/501 for a method the location does not answer; None when it may go on."""
    loc = ex.location
    if loc.return_ is not None or ex.method in loc.allow_methods:
        return None
    if ex.method not in KNOWN_METHODS:
        return HttpError(501, f'method "{ex.method}" is not implemented')
    return HttpError(405, f'method "{ex.method}" not allowed in {loc.describe()}',
                     fields=f"Allow: {loc.allow_header}\r\n".encode())


def handle(ex: Exchange) -> Response | Awaitable[Response]:
    loc = ex.location
    if loc.return_ is not None:
        return answer_return(ex)
    return static.serve(ex)


def answer_return(ex: Exchange) -> Response:
    ret = ex.location.return_
    text = ret.render(ex) if ret.render is not None else None
    if ret.code == 444:
        return Response(444, close=True)  # nginx's "close without answering"
    if ret.code in REDIRECT_CODES:
        return static.redirect(ret.code, text or "", ex.location.server_tokens)
    if text is None:
        if ret.code >= 400:
            raise HttpError(ret.code, "return")
        return Response(ret.code)
    ctype = ex.location.default_type
    return Response(ret.code, f"Content-Type: {ctype}\r\n".encode(), text.encode("utf-8", "surrogateescape"))


def error_response(ex: Exchange, err: HttpError) -> Response:
    """The answer to an error: the location's error_page if any, else the default page."""
    status = err.status
    loc = ex.location
    close = err.close or status in CLOSE_AFTER
    if loc is not None and ex.redirects == 0 and status in loc.error_pages:
        page = loc.error_pages[status]
        response = _error_page(ex, status, page)
        if response is not None:
            response.close = response.close or close
            return response
    tokens = loc.server_tokens if loc is not None else True
    if status in NO_BODY:
        return Response(status, err.fields, close=close)
    body = default_page(status, tokens)
    return Response(status, b"Content-Type: text/html\r\n" + err.fields, body, close=close)


def _error_page(ex: Exchange, status: int, page) -> Response | None:
    uri = page.uri
    if uri.startswith(("http://", "https://")) or not uri.startswith("/"):
        code = page.override if page.override in REDIRECT_CODES else 302
        return static.redirect(code, uri, ex.location.server_tokens)
    # internal redirect: the page is served as GET (HEAD stays HEAD) from the same server
    ex.redirects += 1
    raw_path, query, _ = split_target(uri.encode("utf-8", "surrogateescape"))
    saved = (ex.path, ex.query, ex.location, ex.method, ex.headers)
    # the page is not what the client's validators or ranges were about
    ex.headers = {k: v for k, v in ex.headers.items() if k not in static.CONDITIONAL}
    try:
        ex.path = normalize_path(raw_path)
        ex.query = query.decode("latin-1")
        ex.location = router.select_location(ex.server, ex.path)
        if ex.method != "HEAD":
            ex.method = "GET"
        response = handle(ex)
        if not isinstance(response, Response):
            raise HttpError(500, "error_page target must answer at once")
    except HttpError as exc:
        error_log.error(f'error_page "{uri}" for {status} failed: {exc.status} {exc.reason}', ex.conn.id)
        ex.path, ex.query, ex.location, ex.method, ex.headers = saved
        return None
    if page.override is None:
        if response.status == 200:
            response.status = status
    elif page.override:
        response.status = page.override
    ex.path, ex.query, ex.location, ex.method, ex.headers = saved
    return response
