"""allow_methods (405 + Allow, 501) and `return` in its forms."""

from __future__ import annotations

import pytest
from support import RawConn, request

CONF = """
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /rw/ {{ allow_methods GET POST DELETE; }}
        location /getonly/ {{ allow_methods GET; }}
        location /r301 {{ return 301 http://example.com/new; }}
        location /r302 {{ return 302 /relative/path; }}
        location /r303 {{ return 303 http://example.com/see; }}
        location /r307 {{ return 307 http://example.com/temp; }}
        location /r308 {{ return 308 http://example.com/perm; }}
        location /bare-url {{ return http://example.com/bare; }}
        location /https {{ return 301 https://$host$request_uri; }}
        location /text {{ return 200 "hello text"; }}
        location /vars {{ return 200 "host=$host uri=$uri args=$args request_uri=$request_uri method=$request_method"; }}
        location /gone {{ return 404; }}
        location /gone-text {{ return 410 "it is gone"; }}
        location /nocontent {{ return 204; }}
        location /close {{ return 444; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        return 301 http://elsewhere.example$request_uri;
    }}
}}
"""
REDIRECT_TITLES = {
    301: "301 Moved Permanently",
    302: "302 Found",
    303: "303 See Other",
    307: "307 Temporary Redirect",
    308: "308 Permanent Redirect",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import RunningServer

    files = {"index.html": "home\n", "rw/file.txt": "rw\n", "getonly/file.txt": "g\n"}
    srv = RunningServer(tmp_path_factory.mktemp("methods"), CONF, files, ports=2).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("POST", "/index.html", "GET, HEAD"),
        ("PUT", "/index.html", "GET, HEAD"),
        ("DELETE", "/index.html", "GET, HEAD"),
        ("OPTIONS", "/", "GET, HEAD"),
        ("PATCH", "/", "GET, HEAD"),
        # TRACE (and CONNECT): 405 before any location, closed, no Allow (test_trace.py)
        ("PUT", "/rw/file.txt", "GET, HEAD, POST, DELETE"),
        ("POST", "/getonly/file.txt", "GET, HEAD"),
    ],
)
def test_405_with_allow(server, method, path, allow):
    with RawConn(server.port) as conn:
        conn.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = conn.response()
        assert status == 405
        assert headers["allow"] == allow
        assert b"<title>405 Method Not Allowed</title>" in body
        # no body was announced: the connection stays usable
        assert headers["connection"] == "keep-alive"
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, b"home\n")


def test_405_with_a_body_closes(server):
    with RawConn(server.port) as conn:
        conn.send(b"PUT /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        status, headers, _ = conn.response()
        assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert server.alive()


def test_get_implies_head(server):
    status, headers, body = request(server.port, "/getonly/file.txt", method="HEAD")
    assert (status, headers["content-length"], body) == (200, "2", b"")


@pytest.mark.parametrize("method", ["FOO", "BREW", "PROPFIND"])
def test_unknown_method_501(server, method):
    with RawConn(server.port) as conn:
        conn.send(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = conn.response()
        assert status == 501
        assert b"<title>501 Not Implemented</title>" in body
        assert headers["connection"] == "close"
        assert conn.closed_by_peer()
    assert server.alive()


@pytest.mark.parametrize("line", [b"get / HTTP/1.1", b"G@T / HTTP/1.1"])
def test_malformed_method_400(server, line):
    with RawConn(server.port) as conn:
        conn.send(line + b"\r\nHost: x\r\n\r\n")
        assert conn.response()[0] == 400
        assert conn.closed_by_peer()
    assert server.alive()


@pytest.mark.parametrize(
    "path, status, location",
    [
        ("/r301", 301, "http://example.com/new"),
        ("/r302", 302, "/relative/path"),
        ("/r303", 303, "http://example.com/see"),
        ("/r307", 307, "http://example.com/temp"),
        ("/r308", 308, "http://example.com/perm"),
        ("/bare-url", 302, "http://example.com/bare"),
    ],
)
def test_return_redirects(server, path, status, location):
    got, headers, body = request(server.port, path)
    assert got == status
    assert headers["location"] == location
    assert headers["content-type"] == "text/html"
    title = REDIRECT_TITLES[status]
    assert (
        body
        == (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>webserv/0.1.0</center>\r\n"
            "</body>\r\n</html>\r\n"
        ).encode()
    )
    assert headers["content-length"] == str(len(body))


def test_return_applies_to_any_known_method(server):
    # return runs before the method check, as nginx's rewrite phase precedes access
    status, headers, _ = request(server.port, "/r307", method="POST")
    assert (status, headers["location"]) == (307, "http://example.com/temp")


def test_return_with_host_and_request_uri(server):
    status, headers, _ = request(server.port, "/https/a%20b?x=1&y=%2F", host="Example.ORG:8080")
    assert status == 301
    # $host is lower-cased and without port; $request_uri is the raw target
    assert headers["location"] == "https://example.org/https/a%20b?x=1&y=%2F"


def test_return_location_cannot_split_headers(server):
    status, headers, _ = request(server.port, "/https/a%0d%0aSet-Cookie:%20x=1")
    assert status == 301
    assert "set-cookie" not in headers
    assert headers["location"] == "https://localhost/https/a%0d%0aSet-Cookie:%20x=1"


def test_server_level_return(server):
    status, headers, _ = request(server.ports[1], "/any/path?q=1")
    assert (status, headers["location"]) == (301, "http://elsewhere.example/any/path?q=1")


def test_return_text(server):
    status, headers, body = request(server.port, "/text")
    assert (status, body) == (200, b"hello text")
    assert headers["content-type"] == "text/plain"  # default_type, as in nginx
    assert headers["content-length"] == "10"


def test_return_text_with_variables(server):
    status, _, body = request(server.port, "/vars/caf%C3%A9?a=1&b=2", host="Host.Example")
    assert status == 200
    expected = "host=host.example uri=/vars/café args=a=1&b=2 request_uri=/vars/caf%C3%A9?a=1&b=2 method=GET"
    assert body == expected.encode()


def test_return_text_head(server):
    status, headers, body = request(server.port, "/text", method="HEAD")
    assert (status, headers["content-length"], body) == (200, "10", b"")


def test_return_error_code_default_page(server):
    status, _, body = request(server.port, "/gone")
    assert status == 404
    assert b"<title>404 Not Found</title>" in body


def test_return_error_code_with_text(server):
    status, headers, body = request(server.port, "/gone-text")
    assert (status, body, headers["content-type"]) == (410, b"it is gone", "text/plain")


def test_return_204_has_no_body_or_length(server):
    with RawConn(server.port) as conn:
        conn.send(
            b"GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /text HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        status, headers, body = conn.response()
        assert (status, body) == (204, b"")
        assert "content-length" not in headers and "content-type" not in headers
        assert conn.response()[::2] == (200, b"hello text")


def test_return_444_closes_without_response(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.closed_by_peer()
        assert conn.buf == b""
    assert server.alive()


def test_return_444_after_pipelined_request(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /text HTTP/1.1\r\nHost: x\r\n\r\nGET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, b"hello text")
        assert conn.closed_by_peer()
        assert conn.buf == b""
