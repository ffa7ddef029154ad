"""The bare uvloop + httptools Protocol, serving one file in one of five ways.

    python benchmarks/sendfile_protocol.py PORT FILE MODE

MODE: memory (the bytes read at start-up), sendfile (a descriptor kept open: send(MSG_MORE)
for the header, then sendfile), sendfile-nonblock (the same descriptor opened O_NONBLOCK),
open-each (open + fstat + sendfile + close per request, no cache), pread-write (the kept
descriptor read per request and written with the header in one call). Nothing else: what
separates the modes is the cost of the way the body leaves. bench_sendfile.py runs them.
"""

import asyncio
import os
import socket
import sys

import httptools
import uvloop

PORT, PATH, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BODY = open(PATH, "rb").read()
HEAD = b"HTTP/1.1 200 OK\r\nServer: bare\r\nContent-Length: %d\r\n\r\n" % len(BODY)
FD = os.open(PATH, os.O_RDONLY | (os.O_NONBLOCK if MODE == "sendfile-nonblock" else 0))


class Http(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport, self.parser = transport, httptools.HttpRequestParser(self)
        fd = transport.get_extra_info("socket").fileno()
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fd)

    def connection_lost(self, exc) -> None:
        self.raw.detach()

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        if MODE == "memory":
            self.transport.write(HEAD + BODY)
        elif MODE == "pread-write":
            self.transport.write(HEAD + os.pread(FD, len(BODY), 0))
        elif MODE == "open-each":
            fd = os.open(PATH, os.O_RDONLY)
            size = os.fstat(fd).st_size
            self.raw.send(HEAD, socket.MSG_MORE)
            os.sendfile(self.raw.fileno(), fd, 0, size)
            os.close(fd)
        else:  # sendfile, sendfile-nonblock
            self.raw.send(HEAD, socket.MSG_MORE)
            os.sendfile(self.raw.fileno(), FD, 0, len(BODY))
        if not keep:
            self.transport.close()


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", PORT, backlog=1024)
    async with server:
        await server.serve_forever()


uvloop.run(main())
