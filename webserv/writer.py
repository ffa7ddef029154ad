"""The response writer: header section encoding, bodies from memory, files and streams.

A base of Connection (it shares the connection's slots; the chain is in connection.py): connection.py reads, this module
writes. The transport's high-water mark is 0, so `write_blocked` means exactly "bytes are
waiting in the transport". While nothing waits, file bodies go straight to the socket with
`send(MSG_MORE)` + `sendfile` (zero copy, header and first bytes in one segment); when the
socket is full, one chunk goes through the transport, which watches writability and calls
`resume_writing` when it has drained, and sendfile goes on from there. (A small file the
open file cache holds arrives as bytes, like any body from memory: one write with its
header; see files.SMALL_FILE.)
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from typing import Any

from .config.model import KEEPALIVE_MSIE6, KEEPALIVE_SAFARI
from .framing import InputFraming
from .headers import SAFE_STATUSES
from .http.dates import http_date_bytes_now
from .http.request import Exchange
from .http.response import FilePart, Response
from .http.status import NO_BODY, SERVER_BARE, SERVER_WITH_VERSION, status_line
from .pacing import send_paced

MSG_MORE = getattr(socket, "MSG_MORE", 0)
CHUNK = 64 * 1024  # one transport write while the socket is full

_SERVER = {
    True: f"Server: {SERVER_WITH_VERSION}\r\n".encode(),
    False: f"Server: {SERVER_BARE}\r\n".encode(),
}
_KEEP_ALIVE = b"Connection: keep-alive\r\n\r\n"
_CLOSE = b"Connection: close\r\n\r\n"


class _DateLines:
    """`Server:` + `Date:` lines, rebuilt once a second (the date changes, nothing else)."""

    __slots__ = ("date", "lines")

    def __init__(self) -> None:
        self.date = b""
        self.lines = {True: b"", False: b""}

    def get(self, tokens: bool) -> bytes:
        date = http_date_bytes_now()
        if date is not self.date:
            self.date = date
            self.lines = {t: _SERVER[t] + b"Date: " + date + b"\r\n" for t in (True, False)}
        return self.lines[tokens]


_date_lines = _DateLines()


def trailer_section(ex: Exchange, trailers: tuple[Any, ...]) -> bytes:
    """The last chunk with the location's `add_trailer` fields (nginx sends them only on a
    chunked answer): those for its status (200, 201, 204, 206, 301..308), or `always`."""
    lines = [b"0\r\n"]
    safe = ex.status in SAFE_STATUSES
    for trailer in trailers:
        if not (safe or trailer.always):
            continue
        if trailer.render is None:
            if trailer.line:
                lines.append(trailer.line)
            continue
        value = "".join(c for c in trailer.render(ex) if c not in "\r\n\0")
        if value:
            lines.append(f"{trailer.name}: {value}\r\n".encode("utf-8", "surrogateescape"))
    lines.append(b"\r\n")
    return b"".join(lines)


def browser_without_keepalive(agent: bytes | None, disable: int) -> bool:
    """keepalive_disable: nginx's reading of User-Agent (ngx_http_process_user_agent).
    msie6 is MSIE 4.x and 5.x, and 6.x without "SV1", and concerns only POST (the caller
    checks the method); safari is "Safari/" with "Mac OS X" in a UA that is none of MSIE,
    Opera, Gecko/, Chrome/. Opera's UAs say "MSIE" too and are not MSIE."""
    if not agent:
        return False
    opera = b"Opera" in agent
    msie = agent.find(b"MSIE ")
    if msie >= 0 and not opera:
        if disable & KEEPALIVE_MSIE6 and agent[msie + 6 : msie + 7] == b".":
            major = agent[msie + 5 : msie + 6]
            if major in (b"4", b"5") or (major == b"6" and b"SV1" not in agent[msie + 8 :]):
                return True
        return False
    if disable & KEEPALIVE_SAFARI and not opera:
        return (
            b"Gecko/" not in agent
            and b"Chrome/" not in agent
            and b"Safari/" in agent
            and b"Mac OS X" in agent
        )
    return False


class ResponseWriter(InputFraming):
    __slots__ = ()

    def send(self, ex: Exchange, response: Response) -> None:
        """Encode the header section and hand the body to the kernel (or start streaming it)."""
        status = ex.status = response.status
        if self.record is not None and not self.feeding:
            # answered later than parsed (a handler that waited): the time it starts going
            # out; an answer given while parsing takes the parse's timestamps instead
            ex.t_response = time.time()
        if status == 444:
            self.log(ex)
            self.active = None
            self.close("return 444", linger=0)
            return
        loc = ex.location
        if loc is None:  # an error found before routing: the server's own settings apply
            loc = ex.location = (ex.server or self.group.default).fallback
        header_filter = loc.header_filter  # add_header, expires (None without them)
        if header_filter is not None and not ex.error_paged:  # (a page: dispatch applied it)
            header_filter.apply(ex, response)
        compress = loc.compress  # gzip on the fly (None without gzip* directives)
        if compress is not None and compress.gzip:
            compress.apply(ex, response)
        keep = (
            ex.keep_alive
            and not response.close
            and loc.keepalive_timeout > 0
            # keepalive_requests: a pipelined request parsed since can make the count run
            # ahead of this one; only then is this one's own number worked out
            and (
                self.requests < loc.keepalive_requests
                or self.request_number(ex) < loc.keepalive_requests
            )
            and not self.peer_eof
            and not self.stop_parsing
            and not self.worker.stopping
            and (ex.body is None or ex.body.complete)  # an unread body ends the connection
            and ex.start - self.started <= loc.keepalive_time
            # keepalive_disable safari (msie6, POST only, is reader.py's: no test for a GET)
            and not (
                loc.keepalive_safari
                and browser_without_keepalive(ex.headers.get(b"user-agent"), KEEPALIVE_SAFARI)
            )
        )
        length = response.length
        stream = response.stream
        chunked = False
        head = [status_line(status, ex.minor), _date_lines.get(loc.server_tokens), response.fields]
        if length is not None:
            if status not in NO_BODY:
                head.append(b"Content-Length: %d\r\n" % length)
        elif stream is not None and not ex.head:
            if ex.minor == 1:
                head.append(b"Transfer-Encoding: chunked\r\n")
                chunked = True
            else:
                keep = False  # HTTP/1.0: the body ends when the connection does
        if keep:
            if loc.keepalive_header is not None:
                head.append(b"Keep-Alive: timeout=%d\r\n" % int(loc.keepalive_header))
            head.append(_KEEP_ALIVE)
        else:
            head.append(_CLOSE)
        head = ex.sent_head = b"".join(head)  # ($sent_http_NAME reads it)
        ex.keep_alive = keep
        ex.bytes_sent = len(head)
        parts = response.parts
        if (
            loc.limit_rate is not None
            and length
            and stream is None  # (a stream, even of a known length, goes out as it comes)
            and not ex.head
            and status not in NO_BODY
        ):
            # limit_rate: paced by pacing.py (files and bodies from memory alike)
            body = parts if parts is not None else [response.body]
            self.task = asyncio.get_running_loop().create_task(
                send_paced(self, ex, head, body, loc.limit_rate)
            )
            return
        if ex.head or status in NO_BODY:
            for part in parts or ():
                if type(part) is FilePart and part.owner is not None:
                    part.owner.release()
            self.transport.write(head)
            self.finish(ex)
        elif parts is not None:
            if length:
                self.send_parts(ex, head, parts)
            else:  # an empty file: nothing to sendfile (whose 0 would mean "truncated")
                self.release_parts(parts)
                self.transport.write(head)
                self.finish(ex)
        elif stream is not None:
            self.transport.write(head)
            self.task = asyncio.get_running_loop().create_task(
                self.send_stream(ex, stream, chunked)
            )
        else:
            body = response.body
            self.transport.write(head + body if body else head)
            ex.body_bytes_sent = len(body)
            ex.bytes_sent += len(body)
            self.finish(ex)

    def request_number(self, ex: Exchange) -> int:
        """Which request of the connection EX is: the count less those parsed after it."""
        number = self.requests - len(self.queue)
        if self.ex is not None and self.ex is not ex:
            number -= 1  # the next one, its header section still coming
        return number

    def send_parts(self, ex: Exchange, head: bytes, parts: list[bytes | FilePart]) -> None:
        if self.sendfile and not self.write_blocked and type(parts[0]) is FilePart:
            # the header waits in the kernel for the file's first bytes: one segment, not two
            try:
                sent = self.raw_socket().send(head, MSG_MORE)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.release_parts(parts)
                self.abort(f"send() failed: {exc.strerror}")
                return
            if sent < len(head):
                self.transport.write(head[sent:])
        else:
            self.transport.write(head)
        self.out.extend(parts)
        self.out_ex = ex
        self.pump()

    def pump(self) -> None:
        """Send queued body parts until done or the socket is full."""
        out = self.out
        ex = self.out_ex
        transport = self.transport
        while out:
            if self.write_blocked:
                return
            part = out[0]
            if type(part) is bytes:
                del out[0]
                ex.body_bytes_sent += len(part)
                ex.bytes_sent += len(part)
                transport.write(part)
                continue
            sent = -1
            if self.sendfile:
                try:
                    sent = os.sendfile(self.fd, part.fd, part.offset, part.length)
                except BlockingIOError:
                    sent = -1
                except OSError as exc:
                    if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        self.sendfile = False  # this pair cannot sendfile: copy from now on
                        continue
                    self.abort(f"sendfile() failed: {exc.strerror}")
                    return
                if sent == 0 and part.length:  # (an empty part has nothing to send)
                    self.abort(
                        f'"{getattr(part.owner, "path", "?")}" was truncated while being sent'
                    )
                    return
            if sent < 0:
                # the socket is full (or sendfile is unavailable): one chunk through the
                # transport, which tells us with resume_writing when it has drained
                try:
                    chunk = os.pread(part.fd, min(part.length, CHUNK), part.offset)
                except OSError as exc:
                    self.abort(f"pread() failed: {exc.strerror}")
                    return
                if not chunk and part.length:
                    self.abort(
                        f'"{getattr(part.owner, "path", "?")}" was truncated while being sent'
                    )
                    return
                sent = len(chunk)
                transport.write(chunk)
            part.offset += sent
            part.length -= sent
            ex.body_bytes_sent += sent
            ex.bytes_sent += sent
            if part.length == 0:
                del out[0]
                if part.owner is not None:
                    part.owner.release()
        self.out_ex = None
        self.finish(ex)

    def release_parts(self, parts: Any) -> None:
        for part in parts:
            if type(part) is FilePart and part.owner is not None:
                part.owner.release()

    async def send_stream(self, ex: Exchange, stream: Any, chunked: bool) -> None:
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                data = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
                self.transport.write(data)
                ex.body_bytes_sent += len(chunk)
                ex.bytes_sent += len(data)
                if self.write_blocked:
                    await self.drain()
            if chunked:
                trailers = ex.location.add_trailers if ex.location is not None else None
                end = b"0\r\n\r\n" if trailers is None else trailer_section(ex, trailers)
                self.transport.write(end)
                ex.bytes_sent += len(end)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # too late for an error status: an unterminated body tells the client it failed
            self.error_log_of(ex).error(f"response body failed mid-stream: {exc!r}", self.id)
            self.task = None
            self.abort(f"stream failed: {exc!r}")
            return
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        self.task = None
        self.finish(ex)

    async def drain(self) -> None:
        """Wait until the transport has written everything it holds."""
        if self.write_blocked:
            self.drain_waiter = asyncio.get_running_loop().create_future()
            await self.drain_waiter
