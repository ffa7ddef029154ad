"""Default error pages for every status webserv produces, and `error_page` in its forms."""

from __future__ import annotations

import socket

import pytest
from support import RawConn, RunningServer, read_until_close, request

CONF = """
http {{
    access_log off;
    client_header_timeout 1s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /upload {{ allow_methods GET POST; client_max_body_size 10; }}
        location /quiet/ {{ server_tokens off; }}
    }}
}}
"""
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def page(status: int, server: str = "webserv/0.1.0") -> bytes:
    """nginx's default page shape, with webserv's name."""
    text = f"{status} {REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n"
        f"<center><h1>{text}</h1></center>\r\n<hr><center>{server}</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def make_socket_file(path):
    """open() on a unix socket fails with ENXIO: the one 500 a static site can produce."""
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = {"index.html": "home\n", "dir/file": "x", "quiet/x": "x"}
    srv = RunningServer(tmp_path_factory.mktemp("errors"), CONF, files)
    sock = make_socket_file(srv.root / "sock")
    yield srv.start()
    srv.stop()
    sock.close()


LONG = b"a" * 9000
CASES = {
    400: b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    403: b"GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n",
    404: b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
    405: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    411: b"POST /upload HTTP/1.1\r\nHost: x\r\n\r\n",  # a body is expected, no length given
    413: b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
    414: b"GET /" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    431: b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + LONG + b"\r\n\r\n",
    500: b"GET /sock HTTP/1.1\r\nHost: x\r\n\r\n",
    501: b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
    505: b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
}
CLOSES = {400, 408, 413, 414, 431, 500, 501, 505}


@pytest.mark.parametrize("status", sorted(CASES))
def test_default_page(server, status):
    with RawConn(server.port) as conn:
        conn.send(CASES[status])
        got, headers, body = conn.response()
        assert got == status
        assert headers[":status-line"] == f"HTTP/1.1 {status} {REASONS[status]}"
        assert headers["content-type"] == "text/html"
        assert headers["content-length"] == str(len(body))
        assert body == page(status)
        if status in CLOSES:
            assert headers["connection"] == "close"
            assert conn.closed_by_peer()
        else:
            assert headers["connection"] == "keep-alive"
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response()[::2] == (200, b"home\n")
    if status == 405:
        assert headers["allow"] == "GET, HEAD"
    assert server.alive()


def test_408_default_page(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the header section never ends
        status, headers, body = conn.response()
        assert (status, body) == (408, page(408))
        assert headers["connection"] == "close"
        assert conn.closed_by_peer()
    assert server.alive()


def test_error_page_without_server_tokens(server):
    status, headers, body = request(server.port, "/quiet/missing")
    assert (status, body) == (404, page(404, "webserv"))
    assert headers["server"] == "webserv"


def test_head_on_error_has_headers_only(server):
    status, headers, body = request(server.port, "/missing", method="HEAD")
    assert (status, body) == (404, b"")
    assert headers["content-length"] == str(len(page(404)))
    assert headers["content-type"] == "text/html"


CUSTOM = """
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        error_page 404 /errors/custom404.html;
        error_page 400 414 /errors/bad.html;
        error_page 500 502 /50x.html;
        location /ok/ {{ error_page 404 =200 /errors/replacement.txt; }}
        location /same/ {{ error_page 404 = /errors/replacement.txt; }}
        location /away/ {{ error_page 404 http://example.com/gone?x=1; }}
        location /moved/ {{ error_page 404 =301 http://example.com/moved; }}
        location /missing-page/ {{ error_page 404 /errors/nonexistent.html; }}
        location /broken50x/ {{ error_page 500 /errors/nonexistent.html; }}
        location /post/ {{ allow_methods GET; error_page 405 /errors/custom404.html; }}
        location /errors/ {{ }}
    }}
}}
"""
CUSTOM_FILES = {
    "index.html": "home\n",
    "errors/custom404.html": "<p>custom 404</p>\n",
    "errors/bad.html": "<p>bad request</p>\n",
    "errors/replacement.txt": "replacement\n",
    "50x.html": "<p>server trouble</p>\n",
}


@pytest.fixture
def custom(webserv):
    srv = webserv(CUSTOM, files=CUSTOM_FILES)
    srv.socks = [make_socket_file(srv.root / "sock"), make_socket_file(srv.root / "broken50x-sock")]
    (srv.root / "broken50x").mkdir()
    srv.socks.append(make_socket_file(srv.root / "broken50x" / "sock"))
    yield srv
    for sock in srv.socks:
        sock.close()


def test_error_page_uri_keeps_status(custom):
    status, headers, body = request(custom.port, "/nothing-here")
    assert (status, body) == (404, b"<p>custom 404</p>\n")
    assert headers["content-type"] == "text/html"
    assert headers["content-length"] == str(len(body))
    # the page file's validators do not describe the error (nginx drops them as well)
    assert "last-modified" not in headers and "accept-ranges" not in headers


def test_error_page_ignores_client_conditionals(custom):
    _, headers, _ = request(custom.port, "/errors/custom404.html")
    status, _, body = request(custom.port, "/nothing", headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (404, b"<p>custom 404</p>\n")
    status, _, body = request(custom.port, "/nothing", headers={"Range": "bytes=0-2"})
    assert (status, body) == (404, b"<p>custom 404</p>\n")


def test_error_page_for_errors_found_before_routing(custom):
    for target in (b"/%zz", b"/" + LONG):
        with RawConn(custom.port) as conn:
            conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = conn.response()
            assert status in (400, 414)
            assert body == b"<p>bad request</p>\n"
            assert headers["connection"] == "close"
            assert conn.closed_by_peer()
    assert custom.alive()


def test_error_page_with_new_status(custom):
    status, headers, body = request(custom.port, "/ok/nothing")
    assert (status, body) == (200, b"replacement\n")
    assert headers["content-type"] == "application/octet-stream"


def test_error_page_bare_equals_takes_page_status(custom):
    status, _, body = request(custom.port, "/same/nothing")
    assert (status, body) == (200, b"replacement\n")


def test_error_page_500_502(custom):
    status, headers, body = request(custom.port, "/sock")
    assert (status, body) == (500, b"<p>server trouble</p>\n")
    assert headers["connection"] == "close"
    assert custom.alive()


def test_error_page_url_redirects(custom):
    status, headers, body = request(custom.port, "/away/nothing")
    assert status == 302
    assert headers["location"] == "http://example.com/gone?x=1"
    assert b"<title>302 Found</title>" in body
    status, headers, _ = request(custom.port, "/moved/nothing")
    assert (status, headers["location"]) == (301, "http://example.com/moved")


def test_missing_error_page_gives_default_page_with_original_status(custom):
    status, headers, body = request(custom.port, "/missing-page/nothing")
    assert (status, body) == (404, page(404))
    status, headers, body = request(custom.port, "/broken50x/sock")
    assert (status, body) == (500, page(500))
    assert custom.alive()


def test_custom_405_keeps_allow(custom):
    status, headers, body = request(custom.port, "/post/", method="POST")
    assert (status, body) == (405, b"<p>custom 404</p>\n")
    assert headers["allow"] == "GET, HEAD"


def test_head_on_custom_error_page(custom):
    status, headers, body = request(custom.port, "/nothing", method="HEAD")
    assert (status, body) == (404, b"")
    assert headers["content-length"] == str(len(b"<p>custom 404</p>\n"))


def test_error_page_keeps_connection_for_404(custom):
    with RawConn(custom.port) as conn:
        conn.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (404, b"<p>custom 404</p>\n")
        assert conn.response()[::2] == (200, b"home\n")


def test_error_with_http10_client(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /missing HTTP/1.0\r\n\r\n")
        reply = read_until_close(sock)
    assert reply.startswith(b"HTTP/1.0 404 Not Found\r\n")
    assert b"\r\nConnection: close\r\n" in reply
    assert reply.endswith(b"\r\n\r\n" + page(404))
