"""What a script sees: RFC 3875 meta-variables, HTTP_* headers, nothing else; cwd and argv."""

from __future__ import annotations

import json
import os

from cgi_support import get, still_serves
from support import RawConn

META = {
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "SERVER_NAME",
    "SERVER_ADDR",
    "SERVER_PORT",
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "SCRIPT_FILENAME",
    "PATH_INFO",
    "QUERY_STRING",
    "DOCUMENT_ROOT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REDIRECT_STATUS",
    "PATH",
}


def rawenv(
    server,
    target: str,
    headers: str = "",
    version: str = "HTTP/1.1",
    method="GET",
    body: bytes = b"",
) -> tuple[dict, int]:
    """The script's environment, and the client port the request came from."""
    head = f"{method} {target} {version}\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    with RawConn(server.port, timeout=30) as conn:
        port = conn.sock.getsockname()[1]
        conn.send(head.encode("latin-1") + body)
        status, fields, payload = conn.response()
    assert status == 200, payload
    assert fields["content-type"] == "application/json"
    return json.loads(payload), port


def test_every_meta_variable(server):
    headers = "X-Custom: one\r\nCookie: a=1\r\nCookie: b=2\r\nUser-Agent: tests\r\n"
    data, client_port = rawenv(server, "/cgi-bin/rawenv.py/extra/p%20ath?a=1&b=%20", headers)
    env = data["env"]
    root = str(server.root)
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_SOFTWARE"].startswith("webserv/")
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["REQUEST_URI"] == "/cgi-bin/rawenv.py/extra/p%20ath?a=1&b=%20"
    assert env["SCRIPT_NAME"] == "/cgi-bin/rawenv.py"
    assert env["SCRIPT_FILENAME"] == root + "/cgi-bin/rawenv.py"
    assert env["PATH_INFO"] == "/extra/p ath"  # decoded, as RFC 3875 §4.1.5 says
    assert env["PATH_TRANSLATED"] == root + "/extra/p ath"
    assert env["QUERY_STRING"] == "a=1&b=%20"  # as sent, not decoded
    assert env["DOCUMENT_ROOT"] == root
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["REDIRECT_STATUS"] == "200"
    assert env["HTTP_X_CUSTOM"] == "one"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_USER_AGENT"] == "tests"
    assert env["HTTP_HOST"] == "localhost"
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env  # no body


def test_environment_holds_nothing_else(server):
    """Only meta-variables, HTTP_* and PATH: none of webserv's own environment (the test
    server runs with PYTHONPATH and PYTHONUNBUFFERED set, and whatever the shell had)."""
    data, _ = rawenv(server, "/cgi-bin/rawenv.py", "Proxy: http://evil.example:3128\r\n")
    env = data["env"]
    extra = {k for k in env if k not in META and not k.startswith("HTTP_")}
    assert extra == set()
    assert "PYTHONPATH" not in env and "HOME" not in env
    assert env["PATH"] == os.environ["PATH"]
    assert "HTTP_PROXY" not in env  # httpoxy
    assert "PATH_TRANSLATED" not in env  # no PATH_INFO, no PATH_TRANSLATED
    assert env["PATH_INFO"] == ""
    assert env["QUERY_STRING"] == ""


def test_mapped_and_ambiguous_headers_not_passed(server):
    body = b'{"x": 1}'
    headers = (
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "X_Underscore: forged\r\nX-Dash: real\r\n"
    )
    data, _ = rawenv(server, "/cgi-bin/rawenv.py", headers, method="POST", body=body)
    env = data["env"]
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert env["CONTENT_TYPE"] == "application/json"
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_X_DASH"] == "real"  # X_Underscore would have claimed HTTP_X_UNDERSCORE
    assert "HTTP_X_UNDERSCORE" not in env
    assert env["REQUEST_METHOD"] == "POST"


def test_working_directory_and_argv(server):
    data, _ = rawenv(server, "/cgi-bin/rawenv.py")
    script = str(server.root / "cgi-bin" / "rawenv.py")
    assert data["cwd"] == str(server.root / "cgi-bin")
    assert data["argv"] == [script]  # the interpreter ran the script path as first argument


def test_http10_server_protocol_and_absolute_form(server):
    data, _ = rawenv(server, "http://localhost/cgi-bin/rawenv.py?q=1", version="HTTP/1.0")
    assert data["env"]["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert data["env"]["REQUEST_URI"] == "/cgi-bin/rawenv.py?q=1"
    assert data["env"]["QUERY_STRING"] == "q=1"


def test_alias_location_maps_script_and_path_info(server):
    data, _ = rawenv(server, "/slow/rawenv.py/more/info")
    env = data["env"]
    assert env["SCRIPT_NAME"] == "/slow/rawenv.py"
    assert env["SCRIPT_FILENAME"] == str(server.root / "cgi-bin" / "rawenv.py")
    assert env["PATH_INFO"] == "/more/info"


def test_first_segment_with_the_extension_is_the_script(server):
    # "env.py" is the script; ".py" later in PATH_INFO does not matter
    data, _ = rawenv(server, "/cgi-bin/rawenv.py/x.py/y")
    assert data["env"]["SCRIPT_NAME"] == "/cgi-bin/rawenv.py"
    assert data["env"]["PATH_INFO"] == "/x.py/y"


def test_demo_env_dump(server):
    status, fields, body = get(server.port, "/cgi-bin/env.py/extra/path?a=1")
    assert status == 200 and fields["content-type"].startswith("text/html")
    assert b"<th>PATH_INFO</th><td><code>/extra/path</code>" in body
    assert b"<th>QUERY_STRING</th><td><code>a=1</code>" in body
    status, fields, body = get(server.port, "/cgi-bin/env.py?format=text")
    assert status == 200 and fields["content-type"].startswith("text/plain")
    assert b"GATEWAY_INTERFACE=CGI/1.1\n" in body
    still_serves(server)
