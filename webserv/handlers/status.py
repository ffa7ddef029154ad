"""The live status page and /metrics: what the lifecycle recorder and the counters hold.

The page is one self-contained HTML file (assets/status.html: CSS and JavaScript inline, no
CDN) that fetches the same URL as JSON and draws each connection from SYN to close.
Both describe the whole server, whichever worker answers: counters from the scoreboard,
the other workers' connections asked over the control channel (control.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable
from functools import cache
from urllib.parse import parse_qs

import orjson
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__, control
from ..http.errors import HttpError
from ..http.request import Exchange
from ..http.response import Response
from ..limits import add_metrics as add_limit_metrics
from ..metrics import registry_for
from ..stats import Stats

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


def status(ex: Exchange) -> Response | Awaitable[Response]:
    if not wants_json(ex):
        return Response(200, b"Content-Type: text/html; charset=utf-8\r\n" + NO_STORE, _page())
    worker = ex.conn.worker
    limit = None
    values = parse_qs(ex.query).get("limit")
    if values and values[0].isdigit():
        limit = int(values[0])
    data = control.snapshot(worker, limit)  # folds first: counters and records up to date
    lifecycle = worker.lifecycle
    data["lifecycle"] = lifecycle is not None
    capture = getattr(worker, "capture", None)  # lifecycle_capture: this worker's table
    data["capture"] = capture.state_json() if capture is not None else None
    data["version"] = __version__
    data["pid"] = os.getpid()
    data["you"] = {"connection": ex.conn.id}
    data["server"] = {"started_at": time.time(), "now": time.time(), "accepted": 0}
    if lifecycle is not None:
        data["server"]["started_at"] = lifecycle.started
        data["server"]["accepted"] = lifecycle.accepted
    board = worker.board
    if board is None:
        data["stats"] = worker.stats.to_json() if worker.stats is not None else None
        data["workers"] = [_worker_json(os.getpid(), worker.ordinal, "serving", worker.stats)]
        return _json(data)
    totals, workers, info = board.totals()
    data["stats"] = totals.to_json() if worker.stats is not None else None
    data["server"].update(info)
    data["server"]["accepted"] = totals.accepted
    data["workers"] = [
        _worker_json(w["pid"], w["ordinal"], w["state"], _row_stats(w["row"]), w) for w in workers
    ]
    peers = [w["pid"] for w in workers if w["pid"] and w["pid"] != os.getpid()]
    if not peers or worker.control is None:
        return _json(data)
    return _with_peers(data, peers, limit, max(s.status_history for s in worker.config.servers))


async def _with_peers(data: dict, peers: list[int], limit: int | None, history: int) -> Response:
    """Every worker's connections in one answer: the server as one, whoever answered."""
    answers = await control.ask_peers(peers, limit)
    recent = data["recent"]
    for pid, answer in answers:
        if answer is None:
            for w in data["workers"]:
                if w["pid"] == pid:
                    w["unreachable"] = True
            continue
        data["open"].extend(answer["open"])
        recent.extend(answer["recent"])
    recent.sort(key=lambda r: r.get("closed_at") or 0, reverse=True)
    del recent[limit or history :]
    return _json(data)


def _row_stats(row: list[float]) -> Stats:
    stats = Stats()
    stats.add_flat(row)
    return stats


def _worker_json(pid: int, ordinal: int, state: str, stats: Stats | None, w=None) -> dict:
    out = {"pid": pid, "ordinal": ordinal, "state": state}
    if w is not None:
        out["generation"] = w["generation"]
        out["started_at"] = w["started"]
    if stats is not None:
        out["accepted"] = stats.accepted
        out["open"] = stats.open_now
        out["requests"] = sum(stats.requests)
    return out


def _json(data: dict) -> Response:
    body = orjson.dumps(data)  # (every recent record: ~10× faster than json.dumps)
    return Response(200, b"Content-Type: application/json\r\n" + NO_STORE, body)


def metrics(ex: Exchange) -> Response:
    worker = ex.conn.worker
    worker.fold()
    stats = worker.stats
    if stats is None:
        raise HttpError(500, "metrics without stats")
    board = worker.board
    if board is None:
        registry = registry_for(stats, [(os.getpid(), worker.ordinal, stats)], None)
    else:
        totals, workers, info = board.totals()
        per_worker = [(w["pid"], w["ordinal"], _row_stats(w["row"])) for w in workers]
        registry = registry_for(totals, per_worker, info)
    add_limit_metrics(registry, worker.config)  # limit_req / limit_conn zones, if any
    body = generate_latest(registry)
    return Response(200, f"Content-Type: {CONTENT_TYPE_LATEST}\r\n".encode() + NO_STORE, body)
