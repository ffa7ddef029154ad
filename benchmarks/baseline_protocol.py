"""The ceiling for Python: an asyncio Protocol on uvloop + httptools answering from memory.

    python benchmarks/baseline_protocol.py PORT FILE...

Each FILE is read once at start-up and answered at /BASENAME with a fixed header section:
no file system, no routing, no logging, no Date. Whatever webserv adds on top of this
(sendfile, headers, conditional requests, logs) is what its ratio to this row measures.
"""

import asyncio
import os
import sys

import httptools
import uvloop

HEAD = b"HTTP/1.1 %d %s\r\nServer: baseline\r\nContent-Type: application/octet-stream\r\n"
NOT_FOUND = HEAD % (404, b"Not Found") + b"Content-Length: 0\r\n"


class Http(asyncio.Protocol):
    def __init__(self, responses: dict[bytes, bytes]) -> None:
        self.responses, self.url = responses, b""

    def connection_made(self, transport) -> None:
        self.transport, self.parser = transport, httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        head, body = self.responses.get(self.url, (NOT_FOUND, b""))
        keep = self.parser.should_keep_alive()
        self.transport.write(head + (b"\r\n" if keep else b"Connection: close\r\n\r\n") + body)
        if not keep:
            self.transport.close()


def main() -> None:
    port, paths, responses = int(sys.argv[1]), sys.argv[2:], {}
    for path in paths:
        with open(path, "rb") as f:
            body = f.read()
        head = HEAD % (200, b"OK") + b"Content-Length: %d\r\n" % len(body)
        responses[b"/" + os.path.basename(path).encode()] = (head, body)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Http(responses), "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
