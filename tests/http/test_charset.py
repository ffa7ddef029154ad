"""`charset` and `charset_types`: the Content-Type of static files, `return` texts and
error pages, resolved at config load; side by side with nginx (skipped without it), and
the config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer

MIME = Path(__file__).resolve().parents[2] / "config" / "mime.types"
BLOCK = """
        root {root};
        charset utf-8;
        location /types/ { charset_types text/css; }
        location /star/ { charset_types *; }
        location /off/ { charset off; }
        location /latin/ { charset iso-8859-1; }
        location = /ret { default_type text/plain; return 200 "x"; }
        location = /ret-json { default_type application/json; return 200 "x"; }
"""
FILES = ["a.html", "a.txt", "a.json", "a.css", "a.png", "types/a.css", "types/a.txt"]
FILES += ["star/a.png", "off/a.html", "latin/a.html", "latin/a.js"]
TARGETS = [f"/{name}" for name in FILES] + ["/missing", "/types/missing", "/off/missing"]
TARGETS += ["/ret", "/ret-json", "/latin/missing"]


@pytest.fixture(scope="module")
def webserv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("charset")
    conf = (
        "http {{ access_log off; include " + str(MIME) + "; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    server = RunningServer(tmp, conf, {name: "x\n" for name in FILES})
    server.conf.write_text(server.conf.read_text().replace("@ROOT@", str(server.root)))
    server.start()
    yield server
    server.stop()


def content_type(port: int, target: str, conn: RawConn) -> tuple[int, str | None]:
    conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    status, headers, _ = conn.response()
    return status, headers.get("content-type")


EXPECTED = {
    "/a.html": (200, "text/html; charset=utf-8"),
    "/a.txt": (200, "text/plain; charset=utf-8"),
    "/a.json": (200, "application/json"),
    "/a.css": (200, "text/css"),
    "/a.png": (200, "image/png"),
    "/types/a.css": (200, "text/css; charset=utf-8"),
    "/types/a.txt": (200, "text/plain"),  # its own list replaces the default one
    "/star/a.png": (200, "image/png; charset=utf-8"),
    "/off/a.html": (200, "text/html"),
    "/latin/a.html": (200, "text/html; charset=iso-8859-1"),
    "/missing": (404, "text/html; charset=utf-8"),
    "/types/missing": (404, "text/html; charset=utf-8"),  # text/html always is in the list
    "/off/missing": (404, "text/html"),
    "/ret": (200, "text/plain; charset=utf-8"),
    "/ret-json": (200, "application/json"),
}


def test_content_types_on_one_connection(webserv):
    with RawConn(webserv.port) as conn:
        for target, expected in EXPECTED.items():
            assert content_type(webserv.port, target, conn) == expected, target
        assert not conn.closed_by_peer()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_same_as_nginx(webserv, tmp_path):
    nginx = RunningNginx(tmp_path, webserv.root, BLOCK).start()
    try:
        with RawConn(webserv.port) as ours, RawConn(nginx.port) as theirs:
            for target in TARGETS:
                mine = content_type(webserv.port, target, ours)
                if target.endswith(".js"):
                    # Debian's mime.types says application/javascript, webserv's text/javascript
                    continue
                assert mine == content_type(nginx.port, target, theirs), target
    finally:
        nginx.stop()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("charset;", 'invalid number of arguments in "charset" directive'),
        ("charset utf-8 latin1;", 'invalid number of arguments in "charset" directive'),
        ('charset "utf 8";', 'invalid charset name "utf 8"'),
        ("charset_types;", 'invalid number of arguments in "charset_types" directive'),
    ],
)
def test_config_errors(tmp_path, line, reason):
    from webserv.config.errors import ConfigError
    from webserv.config.load import load

    conf = tmp_path / "webserv.conf"
    conf.write_text(f"http {{\n    server {{\n        listen 8080;\n        {line}\n    }}\n}}\n")
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (4, reason)
