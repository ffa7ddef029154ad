"""A `#fragment` in a request target (a client should not send one; some do): it ends the
path and the query alike, in origin form and in absolute form, as nginx reads it; the raw
target ($request_uri) keeps it. Side by side with nginx where it is installed."""

from __future__ import annotations

import pytest
from conformance.nginx import webserv_and_nginx
from support import RawConn

BLOCK = """
        location / { return 200 "uri=$uri args=$args req=$request_uri"; }
"""
TARGETS = [
    "/a?x#f",
    "/a#f?x",
    "/a?x#f#g",
    "/a?x=1&y=2#frag?z",
    "http://localhost?args#frag",
    "http://localhost:8080?args#frag",
    "http://localhost/a?x#f",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ws, ng = webserv_and_nginx(tmp_path_factory.mktemp("fragment"), BLOCK)
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def ask(port: int, target: str) -> tuple[int, bytes, bool]:
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, _, body = conn.response()
        conn.send(b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n")  # still serving
        return status, body, conn.response()[0] == 200


@pytest.mark.parametrize("target", TARGETS)
def test_fragment_ends_path_and_query(servers, target):
    ws, ng = servers
    status, body, kept = ask(ws.port, target)
    base = target.split("#")[0]
    path, _, query = base.partition("?")
    uri = path.split("localhost", 1)[-1].split(":8080", 1)[-1] or "/"
    raw = target.split("localhost", 1)[-1].split(":8080", 1)[-1]
    raw = raw if raw.startswith("/") else "/" + raw  # origin form ($request_uri, see README)
    assert (status, kept) == (200, True)
    assert body.decode() == f"uri={uri} args={query} req={raw}"
    if ng is not None:
        theirs = ask(ng.port, target)
        # nginx's $request_uri of `http://host?q` is `?q`: only that one differs
        assert theirs[0] == status and theirs[2] == kept
        assert theirs[1].replace(b"req=?", b"req=/?") == body
