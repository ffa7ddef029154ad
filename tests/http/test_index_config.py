"""The `index` directive at load: its errors at file:line in nginx's words, names with
`$variables` compiled once, and repeated `index` lines adding their names (as nginx's)."""

from __future__ import annotations

import subprocess

import pytest
from conformance.nginx import NGINX
from support import RawConn, RunningServer

from webserv import router
from webserv.config import ConfigError, load

ERRORS = {
    "empty name": ('index "";', 'index "" in "index" directive is invalid'),
    "empty after one": ('index a.html "";', 'index "" in "index" directive is invalid'),
    "unknown variable": ("index $nope.html;", 'unknown "nope" variable'),
    "no name": ("index;", 'invalid number of arguments in "index" directive'),
}


def _conf(line: str) -> str:
    return (
        f"http {{\n server {{\n  listen 127.0.0.1:1;\n  location / {{\n   {line}\n  }}\n }}\n}}\n"
    )


@pytest.mark.parametrize(("line", "reason"), ERRORS.values(), ids=list(ERRORS))
def test_index_errors(tmp_path, line, reason):
    path = tmp_path / "webserv.conf"
    path.write_text(_conf(line))
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert (info.value.file, info.value.line, info.value.message) == (str(path), 5, reason)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize(("line", "reason"), ERRORS.values(), ids=list(ERRORS))
def test_index_errors_are_nginx_s(tmp_path, line, reason):
    conf = tmp_path / "nginx.conf"
    conf.write_text("events { }\n" + _conf(line).replace("127.0.0.1:1", "127.0.0.1:8080"))
    proc = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    if "$" in line:  # (nginx finds an unknown variable after the parse: it names no place)
        assert f"[emerg] {reason}\n" in proc.stderr
    elif '"a.html"' in proc.stderr:  # (nginx 1.22 names the word before the empty one)
        assert f'[emerg] index "a.html" in "index" directive is invalid in {conf}:6' in proc.stderr
    else:
        assert f"[emerg] {reason} in {conf}:6" in proc.stderr  # (its `events` line: +1)


def _location(config):
    (server,) = config.servers
    return router.find_location(server, "/")


def test_names_and_templates(tmp_path):
    path = tmp_path / "webserv.conf"
    path.write_text(_conf("index a.html $host.html /fallback.html; index b.html;"))
    names = _location(load(str(path))).index
    assert names[0] == "a.html" and names[2:] == ("/fallback.html", "b.html")
    assert callable(names[1])  # compiled at load, rendered per request


def test_default_is_index_html(tmp_path):
    path = tmp_path / "webserv.conf"
    path.write_text(_conf(""))
    assert _location(load(str(path))).index == ("index.html",)


def test_repeated_index_lines_add_names(tmp_path):
    ws = RunningServer(
        tmp_path,
        "http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {root};"
        " location / {{ index a.html; index b.html; }} }} }}\n",
        {"b.html": "b\n"},
    ).start()
    try:
        status, _, body = ws_get(ws.port, "/")
        assert (status, body) == (200, b"b\n")
    finally:
        ws.stop()


def ws_get(port: int, target: str):
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        return conn.response()
