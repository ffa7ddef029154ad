"""autoindex_format xml | json | jsonp over real sockets, byte for byte against nginx
where it is installed (the same folder served by both: same names, sizes and mtimes)."""

from __future__ import annotations

import json
import os
import re

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer, request

BLOCK = """
        root {root};
        autoindex on;
        location /xml/ { autoindex_format xml; alias {root}/d/; }
        location /json/ { autoindex_format json; alias {root}/d/; }
        location /jsonp/ { autoindex_format jsonp; alias {root}/d/; }
"""
FILES = {
    "d/plain": "x" * 42,
    "d/q'uote": "",
    'd/d"ouble': "",
    "d/<angle>&": "",
    "d/back\\slash": "",
    "d/sub/inner": "",
    "d/\u0444\u0444": "utf8",
}
MTIME = 1704164645


@pytest.fixture(scope="module")
def webserv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aifmt")
    conf = (
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + BLOCK.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    server = RunningServer(tmp, conf, FILES)
    server.conf.write_text(server.conf.read_text().replace("@ROOT@", str(server.root)))
    for dirpath, dirs, files in os.walk(server.root):
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), (MTIME, MTIME))
    server.start()
    yield server
    server.stop()


def test_json_listing(webserv):
    status, headers, body = request(webserv.port, "/json/")
    assert status == 200 and headers["content-type"] == "application/json"
    listing = json.loads(body)
    assert listing[0] == {
        "name": "sub",
        "type": "directory",
        "mtime": "Tue, 02 Jan 2024 03:04:05 GMT",
    }
    by_name = {e["name"]: e for e in listing}
    assert by_name["plain"]["size"] == 42 and by_name["plain"]["type"] == "file"
    assert {'d"ouble', "back\\slash", "q'uote", "<angle>&", "\u0444\u0444"} <= set(by_name)


def test_xml_listing(webserv):
    status, headers, body = request(webserv.port, "/xml/")
    assert status == 200 and headers["content-type"] == "text/xml; charset=utf-8"
    text = body.decode()
    assert text.startswith(
        '<?xml version="1.0"?>\r\n<list>\r\n<directory mtime="2024-01-02T03:04:05Z">sub</directory>'
    )
    assert '<file mtime="2024-01-02T03:04:05Z" size="42">plain</file>' in text
    assert ">d&quot;ouble</file>" in text and ">&lt;angle&gt;&amp;</file>" in text
    assert ">q'uote</file>" in text


def test_jsonp_wraps_in_the_callback(webserv):
    status, headers, body = request(webserv.port, "/jsonp/sub/?callback=cb.x_1")
    assert status == 200 and headers["content-type"] == "application/javascript"
    assert re.fullmatch(rb"/\* callback \*/\r\ncb\.x_1\(\[\r\n\{.*\}\r\n\]\);", body, re.S)
    # without a callback: plain JSON
    status, headers, body = request(webserv.port, "/jsonp/sub/?callback=")
    assert headers["content-type"] == "application/json" and json.loads(body)[0]["name"] == "inner"


@pytest.mark.parametrize("callback", ["a(b)", "x" * 129, "%3Cscript%3E", "a-b"])
def test_bad_callback_is_a_400_and_the_server_goes_on(webserv, callback):
    with RawConn(webserv.port) as conn:
        conn.send(f"GET /jsonp/?callback={callback} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, _, body = conn.response()
        assert status == 400 and b"callback" not in body
    assert request(webserv.port, "/jsonp/?callback=ok")[0] == 200
    assert (webserv.root / "d" / "plain").read_text() == "x" * 42


@pytest.fixture(scope="module")
def nginx(webserv, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    ng = RunningNginx(tmp_path_factory.mktemp("aifmt-nginx"), webserv.root, BLOCK).start()
    yield ng
    ng.stop()


@pytest.mark.parametrize(
    "target", ["/xml/", "/json/", "/jsonp/?callback=f", "/jsonp/", "/jsonp/?callback=a(b)"]
)
def test_same_bytes_as_nginx(webserv, nginx, target):
    ours, theirs = request(webserv.port, target), request(nginx.port, target)
    assert ours[0] == theirs[0]
    assert ours[1].get("content-type") == theirs[1].get("content-type")
    if ours[0] == 200:
        assert ours[2] == theirs[2]
