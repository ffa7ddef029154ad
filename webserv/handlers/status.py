"""The live status page and /metrics: what the lifecycle recorder and the counters hold.

The page is one self-contained HTML file (assets/status.html: CSS and JavaScript inline, no
CDN) that fetches the same URL as JSON and draws each connection from SYN to close.
"""

from __future__ import annotations

import json
import os
from functools import cache
from urllib.parse import parse_qs

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from ..http.errors import HttpError
from ..http.request import Exchange
from ..http.response import Response
from ..stats import registry_for

ASSET = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "status.html")
NO_STORE = b"Cache-Control: no-store\r\n"


@cache
def _page() -> bytes:
    with open(ASSET, "rb") as f:
        return f.read()


def wants_json(ex: Exchange) -> bool:
    if "format=json" in ex.query:
        return True
    accept = ex.headers.get(b"accept", b"")
    return b"application/json" in accept and b"text/html" not in accept


def status(ex: Exchange) -> Response:
    if not wants_json(ex):
        return Response(200, b"Content-Type: text/html; charset=utf-8\r\n" + NO_STORE, _page())
    worker = ex.conn.worker
    worker.fold()
    limit = None
    values = parse_qs(ex.query).get("limit")
    if values and values[0].isdigit():
        limit = int(values[0])
    lifecycle = worker.lifecycle
    if lifecycle is not None:
        data = lifecycle.snapshot(worker.connections, limit)
    else:
        data = {"open": [], "recent": []}
    data["lifecycle"] = lifecycle is not None
    data["version"] = __version__
    data["pid"] = os.getpid()
    data["you"] = {"connection": ex.conn.id}
    data["stats"] = worker.stats.to_json() if worker.stats is not None else None
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(200, b"Content-Type: application/json\r\n" + NO_STORE, body)


def metrics(ex: Exchange) -> Response:
    worker = ex.conn.worker
    worker.fold()
    stats = worker.stats
    if stats is None:
        raise HttpError(500, "metrics without stats")
    body = generate_latest(registry_for(stats))
    return Response(200, f"Content-Type: {CONTENT_TYPE_LATEST}\r\n".encode() + NO_STORE, body)
