"""The relay process behind NetPath: TUN to TUN with delay and loss.

It runs as its own process (``python -m <package>.relay CONFIG``, started by NetPath) rather
than a thread: in a thread it shared the GIL with the test, and a busy test thread held each
packet back by up to the 5 ms switch interval, which put +15 ms and worse on a 50 ms RTT.

It inherits the two TUN fds and a control socket. Control is one JSON object per line, one
reply line each, handled between packets, so a rule is in force once its reply is read.
It exits when the control socket closes, so a dead test process takes its relay with it.
"""

from __future__ import annotations

import collections
import json
import os
import random
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .packets import DIRECTIONS, Direction, DirectionStats, Packet, TcpView, parse_tcp


@dataclass
class _DropRule:
    remaining: int
    skip: int
    only_data: bool


class Relay:
    def __init__(self, fds: dict[Direction, int], ctrl: socket.socket, cfg: dict[str, Any]):
        self.src = {fd: d for d, fd in fds.items()}  # fd -> direction of packets read from it
        self.dst: dict[Direction, int] = {"c2s": fds["s2c"], "s2c": fds["c2s"]}
        self.ctrl = ctrl
        self.delay = dict.fromkeys(DIRECTIONS, cfg["delay_ms"] / 1000.0)
        self.loss = dict.fromkeys(DIRECTIONS, float(cfg["loss"]))
        self.rng = random.Random(cfg["seed"])  # seeded so a lossy test fails the same way twice
        self.record = bool(cfg["record"])
        self.rules: dict[Direction, collections.deque[_DropRule]] = {
            d: collections.deque() for d in DIRECTIONS
        }
        self.queues: dict[Direction, collections.deque[tuple[float, bytes]]] = {
            d: collections.deque() for d in DIRECTIONS
        }
        self.last_due = dict.fromkeys(DIRECTIONS, 0.0)
        self.stats = {d: DirectionStats() for d in DIRECTIONS}
        self.packets: list[Packet] = []
        self.inbox = b""

    def run(self) -> None:
        ctrl_fd = self.ctrl.fileno()
        wait = _waiter([*self.src, ctrl_fd])
        self.reply({"ok": "ready"})
        while True:
            # Per-direction FIFOs with non-decreasing due times act as the timer heap: the
            # earliest deadline is always at a head, and packet order is kept for free.
            heads = [q[0][0] for q in self.queues.values() if q]
            for fd in wait(max(0.0, min(heads) - time.monotonic()) if heads else None):
                if fd == ctrl_fd:
                    if not self.control():
                        return
                else:
                    self.ingest(fd, self.src[fd])
            self.flush()

    def ingest(self, fd: int, d: Direction) -> None:
        for _ in range(256):  # bounded so one busy direction cannot starve the other
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                return
            now = time.monotonic()
            info = parse_tcp(pkt)
            drop = self.decide(d, info)
            st = self.stats[d]
            if drop:
                st.dropped += 1
            else:
                st.forwarded += 1
                st.bytes += len(pkt)
                due = max(now + self.delay[d], self.last_due[d])
                self.last_due[d] = due
                self.queues[d].append((due, pkt))
            st.max_packet = max(st.max_packet, len(pkt))
            if self.record:
                self.packets.append(Packet(now, d, len(pkt), drop, *info))

    def decide(self, d: Direction, info: TcpView) -> bool:
        rules = self.rules[d]
        if rules and (info.is_data or not rules[0].only_data):
            rule = rules[0]
            if rule.skip > 0:
                rule.skip -= 1
                return False
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.popleft()
            return True
        return self.loss[d] > 0 and self.rng.random() < self.loss[d]

    def flush(self) -> None:
        now = time.monotonic()
        for d, q in self.queues.items():
            while q and q[0][0] <= now:
                _, pkt = q.popleft()
                try:
                    os.write(self.dst[d], pkt)
                except OSError:  # e.g. the far side's TUN is down; count it, keep going
                    self.stats[d].write_errors += 1

    # -- control -----------------------------------------------------------------------------

    def control(self) -> bool:
        data = self.ctrl.recv(65536)
        if not data:
            return False
        self.inbox += data
        while b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            try:
                self.reply({"ok": self.command(**json.loads(line))})
            except Exception as exc:  # a bad request must not take the path down
                self.reply({"error": f"{type(exc).__name__}: {exc}"})
        return True

    def command(self, op: str, direction: Direction | None = None, **kw: Any) -> Any:
        which = [direction] if direction else list(DIRECTIONS)
        if op == "set_delay":
            for d in which:
                self.delay[d] = kw["delay_ms"] / 1000.0
        elif op == "set_loss":
            for d in which:
                self.loss[d] = float(kw["loss"])
        elif op == "drop_next":
            assert direction in DIRECTIONS, direction
            self.rules[direction].append(_DropRule(kw["n"], kw["after"], kw["only_data"]))
        elif op == "stats":
            return {d: asdict(s) for d, s in self.stats.items()}
        elif op == "packets":
            return self.packets
        else:
            raise ValueError(f"unknown op {op!r}")
        return None

    def reply(self, msg: dict[str, Any]) -> None:
        self.ctrl.sendall(json.dumps(msg).encode() + b"\n")


def _waiter(fds: list[int]) -> Callable[[float | None], list[int]]:
    """Block until one of ``fds`` is readable or ``timeout`` seconds pass.

    select() has µs timeouts where poll() rounds up to whole ms, which showed up as +1 ms per
    direction in measured RTTs; but select() cannot take fds >= FD_SETSIZE, so fall back.
    """
    if max(fds) < 1024:
        return lambda timeout: select.select(fds, [], [], timeout)[0]
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return lambda timeout: [
        fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)
    ]


def main() -> None:
    cfg = json.loads(sys.argv[1])
    ctrl = socket.socket(fileno=cfg["ctrl_fd"])
    fds: dict[Direction, int] = {"c2s": cfg["tun_c"], "s2c": cfg["tun_s"]}
    for fd in fds.values():
        os.set_blocking(fd, False)
    Relay(fds, ctrl, cfg).run()


if __name__ == "__main__":
    main()
