"""The demo pages that need more than one request: the session counter, PHP through php-cgi."""

from __future__ import annotations

import os
import re

import pytest
from cgi_support import PHP_CGI, get
from support import RawConn


def session_request(port: int, cookie: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = f"Cookie: {cookie}\r\n" if cookie else ""
    return get(port, "/cgi-bin/session.py", headers=headers)


def test_session_counter_survives_reloads(server):
    status, fields, body = session_request(server.port, None)
    assert status == 200 and fields["x-session-count"] == "1"
    match = re.fullmatch(
        r"sid=([0-9a-f]{32}); Path=/; HttpOnly; SameSite=Lax", fields["set-cookie"]
    )
    assert match, fields["set-cookie"]
    cookie = f"theme=dark; sid={match.group(1)}"
    for expected in (2, 3):
        status, fields, body = session_request(server.port, cookie)
        assert status == 200 and fields["x-session-count"] == str(expected)
        assert "set-cookie" not in fields  # the same session goes on
        assert f'<strong id="count">{expected}</strong>'.encode() in body
    # another browser (no cookie) has its own count; a forged id is not a session
    assert session_request(server.port, None)[1]["x-session-count"] == "1"
    status, fields, _ = session_request(server.port, "sid=../../etc/passwd")
    assert fields["x-session-count"] == "1" and "set-cookie" in fields


@pytest.mark.skipif(
    not os.access(PHP_CGI, os.X_OK), reason=f"{PHP_CGI} is not installed (apt-get install php-cgi)"
)
def test_php_page_through_php_cgi(server):
    status, fields, body = get(server.port, "/cgi-bin/info.php?name=Ada%20%3Cb%3E")
    assert status == 200 and fields["content-type"] == "text/html; charset=utf-8"
    assert b'<span id="name">Ada &lt;b&gt;</span>' in body
    assert b'<code id="method">GET</code>' in body
    assert re.search(rb"<h1>PHP \d+\.\d+\.\d+ through CGI</h1>", body)
    form = b"name=Bob"
    headers = f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n"
    status, _, body = get(server.port, "/cgi-bin/info.php", "POST", headers, form)
    assert status == 200
    assert b'<code id="method">POST</code>' in body
    assert b"{&quot;name&quot;:&quot;Bob&quot;}" in body
    # a chunked POST: php-cgi needs CONTENT_LENGTH, which webserv learns by spooling the body
    chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(form), form)
    headers = "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
    status, _, body = get(server.port, "/cgi-bin/info.php", "POST", headers, chunked)
    assert status == 200 and b'<span id="name">Bob</span>' in body


def test_php_head(server):
    if not os.access(PHP_CGI, os.X_OK):
        pytest.skip(f"{PHP_CGI} is not installed (apt-get install php-cgi)")
    with RawConn(server.port, timeout=30) as conn:
        conn.send(b"HEAD /cgi-bin/info.php HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, fields, body = conn.response(head=True)
        assert (status, body) == (200, b"")
        assert fields["content-type"] == "text/html; charset=utf-8"
