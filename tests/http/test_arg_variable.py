"""`$arg_NAME` as nginx reads it (ngx_http_arg): the raw value of the first `NAME=` in the
query whose name starts the query or follows an `&`, matched without regard to case; not
percent-decoded, `+` kept; a name with no `=` after it is not a match. Side by side with
nginx where it is installed; every answer is followed by another request on the same
connection."""

from __future__ import annotations

import pytest
from conformance.nginx import webserv_and_nginx
from support import RawConn

BLOCK = """
        location / { return 200 "a=[$arg_a] ab=[$arg_a_b] Q=[$arg_Q]"; }
"""
# (query, expected body)
CASES = [
    ("", "a=[] ab=[] Q=[]"),
    ("a=1", "a=[1] ab=[] Q=[]"),
    ("a=1&a=2", "a=[1] ab=[] Q=[]"),  # the first one
    ("a=%41%20b", "a=[%41%20b] ab=[] Q=[]"),  # raw: not decoded
    ("a=x+y", "a=[x+y] ab=[] Q=[]"),  # `+` stays
    ("A=up", "a=[up] ab=[] Q=[]"),  # names match whatever their case
    ("q=low", "a=[] ab=[] Q=[low]"),
    ("ba=1&a=2", "a=[2] ab=[] Q=[]"),  # `ba=` does not end in `a=` as a name
    ("a&a=3", "a=[3] ab=[] Q=[]"),  # no `=`: not that argument
    ("a=", "a=[] ab=[] Q=[]"),
    ("x=1&a_b=%zz&a=", "a=[] ab=[%zz] Q=[]"),
    ("a=1;b=2", "a=[1;b=2] ab=[] Q=[]"),  # only `&` separates
    ("a=v=w", "a=[v=w] ab=[] Q=[]"),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ws, ng = webserv_and_nginx(tmp_path_factory.mktemp("args"), BLOCK)
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def ask(port: int, query: str) -> tuple[int, bytes, bool]:
    target = f"/p?{query}" if query else "/p"
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, _, body = conn.response()
        conn.send(b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n")  # still serving
        return status, body, conn.response()[0] == 200


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_arg_is_nginx_raw_first_match(servers, query, expected):
    ws, ng = servers
    status, body, kept = ask(ws.port, query)
    assert (status, body.decode(), kept) == (200, expected, True)
    if ng is not None:
        assert ask(ng.port, query) == (status, body, kept)
