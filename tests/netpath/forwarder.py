"""A real network path with one-way delay and packet loss, made in userspace.

Two network namespaces (client, server) each get a TUN device; a relay process (relay.py)
reads IP packets from one TUN and writes them into the other after ``delay_ms``, dropping some
on purpose. The kernel has no netem qdisc here, so this is how tests get a path whose RTT,
loss and retransmits the TCP stack sees for real. To poke at a path by hand:
``cd tests && python -m netpath.forwarder --delay 25``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .netns import (
    NetPathError,
    cleanup_stale,
    ip,
    kill_ns_processes,
    list_namespaces,
    open_tun,
    run_in_netns,
)
from .packets import DIRECTIONS, Direction, DirectionStats, Packet

__all__ = [
    "NetPath",
    "NetPathError",
    "DirectionStats",
    "Packet",
    "cleanup_stale",
    "list_namespaces",
]

IFNAME = "wsv0"
_counter = itertools.count(1)
_live: set[NetPath] = set()


class NetPath:
    """Client and server namespaces joined by a delayed, lossy relay. Use as a context manager
    or call start()/close(); close() is idempotent and also runs at interpreter exit."""

    def __init__(
        self,
        delay_ms: float = 0.0,
        loss: float = 0.0,
        *,
        seed: int | None = 0,
        ipv6: bool = True,
        record: bool = False,
    ) -> None:
        n = next(_counter)
        tag = f"{os.getpid()}-{n}"
        self.client_ns, self.server_ns = f"wsv-c-{tag}", f"wsv-s-{tag}"
        # Each pair is isolated, so addresses may repeat across runs; distinct ones only make
        # logs of several paths easier to tell apart.
        sub = n % 256
        self.client_ip, self.server_ip = f"10.200.{sub}.1", f"10.200.{sub}.2"
        self.client_ip6 = f"fd00:200:{sub:x}::1" if ipv6 else None
        self.server_ip6 = f"fd00:200:{sub:x}::2" if ipv6 else None
        self.ifname = IFNAME
        self._cfg = {"delay_ms": delay_ms, "loss": loss, "seed": seed, "record": record}
        self._namespaces: list[str] = []
        self._fds: dict[Direction, int] = {}
        self._relay: subprocess.Popen[bytes] | None = None
        self._relay_fds: dict[str, int] = {}
        self._ctrl: socket.socket | None = None
        self._ctrl_r: Any = None
        self._rpc_lock = threading.Lock()
        self._final: tuple[dict[Direction, DirectionStats], list[Packet]] | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> NetPath:
        _live.add(self)
        try:
            for d in DIRECTIONS:
                self._add_side(d)
            self._spawn_relay()
        except BaseException:
            self.close()
            raise
        return self

    def _add_side(self, d: Direction) -> None:
        # The side that sends in direction d: its namespace, its addresses, its peer's.
        if d == "c2s":
            ns, local, peer = self.client_ns, self.client_ip, self.server_ip
            local6, peer6 = self.client_ip6, self.server_ip6
        else:
            ns, local, peer = self.server_ns, self.server_ip, self.client_ip
            local6, peer6 = self.server_ip6, self.client_ip6
        ip("netns", "add", ns)
        self._namespaces.append(ns)
        self._fds[d] = run_in_netns(ns, lambda: open_tun(IFNAME))
        ip("-n", ns, "link", "set", "lo", "up")
        # Before 'up', or the kernel makes a link-local address and starts sending router
        # solicitations and MLD reports that would show up in stats and drop rules.
        ip("-n", ns, "link", "set", IFNAME, "addrgenmode", "none")
        ip("-n", ns, "link", "set", IFNAME, "mtu", "1500", "up")
        ip("-n", ns, "addr", "add", local, "peer", peer, "dev", IFNAME)
        if local6 and peer6:
            ip("-n", ns, "addr", "add", local6, "peer", peer6, "dev", IFNAME, "nodad")

    def _spawn_relay(self) -> None:
        ours, theirs = socket.socketpair()
        self._ctrl, self._ctrl_r = ours, ours.makefile("rb")
        ours.settimeout(30)  # a wedged relay should fail the test, not hang it
        self._relay_fds = {"tun_c": self._fds["c2s"], "tun_s": self._fds["s2c"]}
        self._relay_fds["ctrl_fd"] = theirs.fileno()
        # Run as `-m package.relay` from the folder above the package, whatever the package is
        # called in this session ("netpath" now, "tests.netpath" if tests/ becomes a package).
        root = Path(__file__).resolve().parents[__package__.count(".") + 1]
        cfg = json.dumps({**self._cfg, **self._relay_fds})
        self._relay = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.relay", cfg],
            pass_fds=tuple(self._relay_fds.values()),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        # Only the relay holds the TUNs now: when it dies, the devices go with it.
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._reply()  # "ready": the path forwards from here on

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        if self._ctrl is not None:
            try:  # keep the counters readable after the with-block
                self._final = (self.stats, self.packets)
            except NetPathError:
                pass
            self._ctrl_r.close()
            self._ctrl.close()  # the relay exits on EOF
            self._ctrl = None
        if self._relay is not None:
            try:
                self._relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait()
                errors.append("relay process did not exit on EOF")
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for ns in self._namespaces:
            kill_ns_processes(ns)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                errors.append(f"pid {proc.pid} did not exit")
        for fd in self._fds.values():  # only left if start() failed before the relay ran
            os.close(fd)
        self._fds.clear()
        for ns in self._namespaces:
            proc = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if proc.returncode != 0:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        self._namespaces.clear()
        _live.discard(self)
        if errors:
            raise NetPathError("; ".join(errors))

    def __enter__(self) -> NetPath:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- run-time knobs: each returns once the relay applies it ------------------------------

    def set_delay(self, delay_ms: float, direction: Direction | None = None) -> None:
        self._rpc("set_delay", delay_ms=delay_ms, direction=direction)

    def set_loss(self, loss: float, direction: Direction | None = None) -> None:
        self._rpc("set_loss", loss=loss, direction=direction)

    def drop_next(
        self, n: int = 1, direction: Direction = "c2s", *, only_data: bool = True, after: int = 0
    ) -> None:
        """Drop the next ``n`` matching packets in ``direction``, after letting ``after``
        matching ones through. With ``only_data`` only TCP segments carrying payload match
        (handshake and pure ACKs pass), so n=1 forces exactly one data retransmission; without
        it every packet matches (use it to drop a SYN). Rules queue up and apply in order."""
        self._rpc("drop_next", n=n, direction=direction, only_data=only_data, after=after)

    @property
    def stats(self) -> dict[Direction, DirectionStats]:
        if self._ctrl is None and self._final is not None:
            return self._final[0]
        return {d: DirectionStats(**s) for d, s in self._rpc("stats").items()}

    @property
    def packets(self) -> list[Packet]:
        """What went by, oldest first; empty unless NetPath(record=True)."""
        if self._ctrl is None and self._final is not None:
            return self._final[1]
        return [Packet(*row) for row in self._rpc("packets")]

    def _rpc(self, op: str, **kwargs: Any) -> Any:
        with self._rpc_lock:
            if self._ctrl is None:
                raise NetPathError("NetPath is not running")
            try:
                self._ctrl.sendall(json.dumps({"op": op, **kwargs}).encode() + b"\n")
            except OSError as exc:
                raise self._relay_gone() from exc
            return self._reply()

    def _reply(self) -> Any:
        try:
            line = self._ctrl_r.readline()
        except OSError as exc:  # includes the socket timeout
            raise self._relay_gone() from exc
        if not line:
            raise self._relay_gone()
        msg = json.loads(line)
        if "error" in msg:
            raise NetPathError(f"relay: {msg['error']}")
        return msg["ok"]

    def _relay_gone(self) -> NetPathError:
        code = self._relay.poll() if self._relay else None
        return NetPathError(f"relay process not answering (exit code {code}); see its stderr")

    # -- running things inside the namespaces ----------------------------------------------

    def run_in_client(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        return self._popen(self.client_ns, argv, popen_kwargs)

    def run_in_server(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        return self._popen(self.server_ns, argv, popen_kwargs)

    def python_in_client(self, code: str, *args: str, timeout: float = 60.0) -> str:
        return self._python(self.client_ns, code, args, timeout)

    def python_in_server(self, code: str, *args: str, timeout: float = 60.0) -> str:
        return self._python(self.server_ns, code, args, timeout)

    def client_socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket living in the client namespace, usable from this process (and asyncio)."""
        return run_in_netns(self.client_ns, lambda: socket.socket(family, type, proto))

    def server_socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        return run_in_netns(self.server_ns, lambda: socket.socket(family, type, proto))

    def _popen(self, ns: str, argv: Sequence[str], kw: dict[str, Any]) -> subprocess.Popen[Any]:
        if self._closed or not self._namespaces:
            raise NetPathError("NetPath is not running")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)
        self._procs.append(proc)
        return proc

    def _python(self, ns: str, code: str, args: Sequence[str], timeout: float) -> str:
        proc = self._popen(
            ns,
            [sys.executable, "-c", code, *args],
            dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise NetPathError(f"python in {ns} timed out after {timeout}s: {err}") from None
        if proc.returncode != 0:
            raise NetPathError(f"python in {ns} exited {proc.returncode}: {err}")
        return out


@atexit.register
def _close_all() -> None:
    for path in list(_live):
        try:
            path.close()
        except Exception:
            traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Hold a delayed, lossy netns pair open until ^C.")
    ap.add_argument("--delay", type=float, default=25.0, help="one-way delay in ms")
    ap.add_argument("--loss", type=float, default=0.0, help="drop probability per packet")
    opts = ap.parse_args(argv)
    # SIGTERM would skip atexit and leave the namespaces behind; make it unwind like ^C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with NetPath(opts.delay, opts.loss) as path:
        print(f"client: ip netns exec {path.client_ns} ...  ({path.client_ip}, {path.client_ip6})")
        print(f"server: ip netns exec {path.server_ns} ...  ({path.server_ip}, {path.server_ip6})")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        print(path.stats)


if __name__ == "__main__":
    main()
