"""The control channel: how the worker answering /status asks the others for what only
they hold — their open and recent connections.

Every worker under a master listens on an abstract Unix socket named after the master and
itself (`\\0webserv.MASTER_PID.WORKER_PID`); the worker answering /status connects to each
live worker the scoreboard lists, sends one line (`snapshot LIMIT`) and reads its
connections as one JSON document. Counters do not travel here: they are in the scoreboard.
Costs nothing per request, only per /status asked for. Abstract sockets are Linux's: where
binding one fails, the worker says so once and /status shows its own connections only.
Never touches an HTTP connection.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import orjson

from .logs import error_log

ASK_TIMEOUT = 2.0  # a busy peer's answer; a peer that misses it is reported unreachable
MAX_ANSWER = 64 * 1024 * 1024


def address(master_pid: int, worker_pid: int) -> str:
    return f"\0webserv.{master_pid}.{worker_pid}"


class ControlServer:
    """One worker's listening end."""

    def __init__(self, worker: Any, server: Any) -> None:
        self.worker = worker
        self.server = server

    @classmethod
    async def start(cls, worker: Any) -> ControlServer | None:
        if not hasattr(socket, "AF_UNIX"):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address(os.getppid(), os.getpid()))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            error_log.notice(
                f"no control socket ({exc.strerror}): /status shows this worker's connections"
            )
            return None
        self = cls(worker, None)
        self.server = await asyncio.start_unix_server(self.answer, sock=sock)
        return self

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), ASK_TIMEOUT)
            words = line.split()
            if words[:1] == [b"snapshot"]:
                limit = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
                writer.write(orjson.dumps(snapshot(self.worker, limit)))
                await writer.drain()
        except (OSError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self.server.close()


def snapshot(worker: Any, limit: int | None) -> dict[str, Any]:
    """This worker's open and recent connections, each labelled with the worker."""
    worker.fold()
    lifecycle = worker.lifecycle
    if lifecycle is None:
        return {"open": [], "recent": []}
    data = lifecycle.snapshot(worker.connections, limit)
    label = {"pid": os.getpid(), "ordinal": worker.ordinal}
    for record in (*data["open"], *data["recent"]):
        record["worker"] = label
    return {"open": data["open"], "recent": data["recent"]}


async def ask_peers(pids: list[int], limit: int | None) -> list[tuple[int, Any]]:
    """(pid, snapshot or None when it did not answer) for each peer worker."""
    master = os.getppid()
    answers = await asyncio.gather(*(_ask(master, p, limit) for p in pids))
    return list(zip(pids, answers, strict=True))


async def _ask(master: int, pid: int, limit: int | None) -> Any:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, address(master, pid)), ASK_TIMEOUT)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
    except (OSError, TimeoutError):
        sock.close()
        return None
    try:
        writer.write(b"snapshot %d\n" % (limit or 0))
        data = await asyncio.wait_for(reader.read(MAX_ANSWER), ASK_TIMEOUT)
        return orjson.loads(data) if data else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        writer.close()
