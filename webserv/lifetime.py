"""The timers and the end of a connection: flow control (pausing reading), the one deadline
each connection keeps and what its expiry does, the lingering close and the reset.

A base of Connection (it shares the connection's slots; see connection.py's docstring for
the chain and the timers of each state). It never parses, routes or answers: what a timeout answers
(408) goes through reader.py's fail_parse, and the close never decides whether a response
ends the connection (writer.py does).
"""

from __future__ import annotations

from .framing import LINGER
from .http.errors import HttpError
from .logs import error_log
from .reader import RequestReader

# a closing connection waits this long for the client's own FIN (nginx: lingering_timeout)
LINGER_AFTER_ERROR = 5.0  # unread input is likely: give the client time to read the answer
LINGER_AFTER_CLOSE = 1.0  # an orderly close: the client usually answers our FIN at once


class Lifetime(RequestReader):
    __slots__ = ()

    def pause(self, reason: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closed:
                self.transport.resume_reading()

    def send_timeout(self) -> float:
        ex = self.active or self.out_ex
        loc = ex.location if ex is not None and ex.location is not None else self.last_location
        return (loc or self.group.default.fallback).send_timeout

    def set_deadline(self, kind: str, timeout: float) -> None:
        self.timeout_kind = kind
        self.deadline = self.clock() + timeout

    def on_timeout(self) -> None:
        """Called by the worker's sweeper once `deadline` has passed."""
        kind = self.timeout_kind
        self.deadline = 0.0
        if kind in ("header", "body"):
            reading_body_for_handler = self.ex is not None and self.ex.body is not None
            if reading_body_for_handler or (self.active is None and not self.write_blocked):
                self.fail_parse(
                    HttpError(408, f"client timed out sending the request {kind}", close=True)
                )
        elif kind == "first_request":
            self.close("client_header_timeout")
        elif kind == "linger":
            self.transport.close()  # the client never sent its FIN: close our side for good
        elif kind == "send":
            self.abort("send_timeout")  # it does not read: what is still queued cannot leave
        else:
            self.close(f"{kind}_timeout")

    def close(self, reason: str, linger: float = LINGER_AFTER_CLOSE) -> None:
        """Close from our side: FIN first, then wait (up to `linger`) for the client's FIN.

        This is nginx's lingering close: what the client still sends is read and dropped, so
        unread input cannot make the kernel answer with a reset that would destroy the
        response before the client has read it. It also lets the lifecycle record see the
        whole four-way close: TCP_INFO is read once the client has answered our FIN.
        """
        # a pipelined request the parser reaches after this is dropped, never answered: the
        # answer that closes is the last (on_message_begin stops the parse)
        self.stop_parsing = True
        transport = self.transport
        if self.closed or transport is None or transport.is_closing() or self.reading == LINGER:
            return
        if not self.closed_by:
            self.closed_by = "server"
            self.close_reason = reason
        if linger > 0 and not self.peer_eof and transport.can_write_eof():
            self.reading = LINGER
            self.held.clear()
            self.queue = ()
            transport.write_eof()
            if self.paused:
                self.paused = 0
                transport.resume_reading()
            self.set_deadline("linger", linger)
            return
        transport.close()

    def abort(self, reason: str) -> None:
        error_log.info(f"{reason}, client: {self.remote_addr}", self.id)
        if not self.closed_by:
            self.closed_by = "server"
            self.close_reason = reason
        self.aborted = True
        if self.transport is not None:
            self.transport.abort()

    @property
    def local_address(self) -> tuple[str, int]:
        if self._local is None:
            sockname = self.transport.get_extra_info("sockname") if self.transport else None
            self._local = (sockname[0], sockname[1]) if sockname else ("", 0)
        return self._local

    @property
    def local_addr(self) -> str:
        return self.local_address[0]

    @property
    def local_port(self) -> int:
        return self.local_address[1]
