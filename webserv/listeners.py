"""Listening sockets: one bound socket per configured address — or one per worker with
`listen ... reuseport` — kept from one generation to the next.

Owns binding (with nginx's `bind() ... failed` wording), TCP_SAVE_SYN on the sockets whose
servers record the lifecycle, TCP_DEFER_ACCEPT (`listen ... deferred`), and the reuseport
groups. A reload asks `ListenSockets.bind` for
the new configuration's sockets with the old ones at hand: an address both generations
listen on keeps its sockets (never closed and re-bound, so nothing waiting in its accept
queue is lost), new addresses are bound, and what only the old generation had is closed
once the new one serves. A socket belongs to the master, never to a worker: a worker that
exits (or is killed) leaves its queue to the next one.

Binds only in the master (or the single process); never accepts a connection.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from . import savedsyn
from .config.model import Config, Listener
from .config.values import ListenAddress
from .logs import error_log

BACKLOG = 511  # nginx's default on Linux
MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"

Key = tuple[str, int, bool]


class BindError(Exception):
    """An address cannot be listened on: one line, as nginx says it."""


def open_socket(
    address: ListenAddress, reuseport: bool = False, backlog: int = BACKLOG, save_syn: bool = False
) -> socket.socket:
    """Bind and listen on one address; BindError with nginx's wording if not. `save_syn`:
    TCP_SAVE_SYN before listen(), so that no SYN of the first instant goes unsaved."""
    family = socket.AF_INET6 if address.ipv6 else socket.AF_INET
    host = address.host or ("::" if address.ipv6 else "0.0.0.0")
    try:
        infos = socket.getaddrinfo(
            host, address.port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(f'host not found in "{address.display()}": {exc.strerror}') from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise BindError(f"reuseport is not supported on this system ({address.display()})")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if address.ipv6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(infos[0][4])
        if save_syn:
            savedsyn.enable_save_syn(sock)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(
            f"bind() to {address.display()} failed ({exc.errno}: {exc.strerror})"
        ) from None
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def defer_accept(sock: socket.socket, seconds: float) -> bool:
    """TCP_DEFER_ACCEPT for `seconds` (0: off), as nginx's `deferred`; False where the
    system has no such option (the socket then accepts at once, as without it)."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, max(0, int(seconds)) if seconds else 0)
    except OSError:
        return False
    return True


class Bound:
    """The sockets of one address: one shared by every worker, or one per worker."""

    __slots__ = ("address", "reuseport", "socks", "save_syn")

    def __init__(
        self, address: ListenAddress, reuseport: bool, socks: list[socket.socket], save_syn: bool
    ):
        self.address = address
        self.reuseport = reuseport
        self.socks = socks
        self.save_syn = save_syn  # TCP_SAVE_SYN is set on them


class ListenSockets:
    """Every bound socket of one generation, by address."""

    def __init__(self) -> None:
        self.by_key: dict[Key, Bound] = {}

    @classmethod
    def bind(cls, config: Config, workers: int, old: ListenSockets | None = None) -> ListenSockets:
        """The sockets `config` needs, taking over those of `old` where the address is the
        same. All or nothing: if one bind fails, the sockets bound here are closed again and
        `old` is left as it was."""
        new = cls()
        opened: list[socket.socket] = []
        try:
            for listener in config.listeners:
                key = listener.key
                count = workers if listener.reuseport else 1
                previous = old.by_key.get(key) if old is not None else None
                socks: list[socket.socket] = []
                if previous is not None:
                    if previous.reuseport != listener.reuseport:
                        raise BindError(
                            f"reuseport of {listener.address.display()} cannot change on a "
                            "reload (stop and start webserv)"
                        )
                    socks = previous.socks[:count]
                while len(socks) < count:
                    sock = open_socket(
                        listener.address, listener.reuseport, save_syn=listener.lifecycle
                    )
                    opened.append(sock)
                    socks.append(sock)
                # the kernel keeps each SYN for us to read once; a socket taken over from a
                # generation that wanted otherwise is told again
                was = previous.save_syn if previous is not None else False
                if listener.lifecycle or was:
                    for sock in socks:
                        if sock not in opened:  # (a new one was told before its listen())
                            savedsyn.enable_save_syn(sock, listener.lifecycle)
                if listener.deferred or previous is not None:  # (a reload may turn it off)
                    for sock in socks:
                        if not defer_accept(sock, listener.deferred) and listener.deferred:
                            error_log.warn(
                                f"listen {listener.address.display()} deferred: this system "
                                "has no TCP_DEFER_ACCEPT; connections are accepted at once"
                            )
                new.by_key[key] = Bound(
                    listener.address, listener.reuseport, socks, listener.lifecycle
                )
        except BaseException:
            for sock in opened:
                sock.close()
            raise
        return new

    def sockets_for(self, config: Config, ordinal: int) -> list[tuple[Listener, socket.socket]]:
        """What worker number `ordinal` accepts on: every shared socket, and its own one of
        each reuseport group."""
        out = []
        for listener in config.listeners:
            bound = self.by_key[listener.key]
            socks = bound.socks
            out.append((listener, socks[ordinal % len(socks)] if bound.reuseport else socks[0]))
        return out

    def all(self) -> Iterator[socket.socket]:
        for bound in self.by_key.values():
            yield from bound.socks

    def close_unused(self, keep: ListenSockets | None) -> None:
        """Close every socket that `keep` does not hold (the old generation's leftovers)."""
        kept = {id(s) for s in keep.all()} if keep is not None else set()
        for sock in list(self.all()):
            if id(sock) not in kept:
                sock.close()

    def uses_reuseport(self) -> bool:
        return any(bound.reuseport for bound in self.by_key.values())


def migrate_req_note() -> str | None:
    """With reuseport, what happens to the queue of a socket that a reload closes (a lower
    `worker_processes`): the kernel moves it to the group's other sockets only with
    net.ipv4.tcp_migrate_req=1 (Linux ≥ 5.14). None when it does."""
    try:
        with open(MIGRATE_REQ) as f:
            value = f.read().strip()
    except OSError:
        return (
            "reuseport: this kernel has no net.ipv4.tcp_migrate_req (Linux >= 5.14): "
            "connections queued on a socket a reload closes are reset"
        )
    if value == "1":
        return None
    return (
        "reuseport: net.ipv4.tcp_migrate_req is 0: connections queued on a socket that a "
        "reload closes (fewer worker_processes) are reset; `sysctl -w "
        "net.ipv4.tcp_migrate_req=1` moves them to the other workers"
    )
