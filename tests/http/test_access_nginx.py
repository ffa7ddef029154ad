"""allow/deny, auth_basic and satisfy side by side with nginx: the same server block and the
same htpasswd file (written by Debian's htpasswd) in both; compared: status,
WWW-Authenticate and Connection, from 127.0.0.1 and 127.0.0.2, for right, wrong and hostile
credentials. Skipped without /usr/sbin/nginx or htpasswd."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer

HTPASSWD = shutil.which("htpasswd")
pytestmark = pytest.mark.skipif(
    NGINX is None or HTPASSWD is None, reason="nginx or htpasswd (apache2-utils) missing"
)

BLOCK = """
        root {root};
        deny 127.0.0.3;
        location /open/ { }
        location /p/ { auth_basic "Private"; auth_basic_user_file @USERS@; }
        location /deny/ { deny 127.0.0.2; }
        location /only/ { allow 127.0.0.1; deny all; }
        location /first/ { allow 127.0.0.2; deny 127.0.0.0/8; }
        location /own/ { allow 127.0.0.9; }
        location /all/ {
            allow 127.0.0.1; deny all;
            auth_basic "All"; auth_basic_user_file @USERS@;
        }
        location /any/ {
            satisfy any; allow 127.0.0.1; deny all;
            auth_basic "Any"; auth_basic_user_file @USERS@;
        }
        location /anyauth/ {
            satisfy any; deny 127.0.0.2;
            auth_basic "AnyAuth"; auth_basic_user_file @USERS@;
        }
        location /off/ { auth_basic off; }
        location /norealm/ { auth_basic_user_file @USERS@; }
        location /nofile/ { auth_basic "NoFile"; }
"""
DIRS = ["open", "p", "deny", "only", "first", "own", "all", "any", "anyauth", "off"]
DIRS += ["norealm", "nofile"]
USERS = {"bc": (["-B", "-C", "4"], "bc-pw"), "md": (["-m"], "md-pw"), "sh": (["-s"], "sh-pw")}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


AUTH = {
    "none": None,
    "bcrypt": "Basic " + b64(b"bc:bc-pw"),
    "apr1": "Basic " + b64(b"md:md-pw"),
    "sha": "Basic " + b64(b"sh:sh-pw"),
    "plain": "Basic " + b64(b"pl:pl-pw"),
    "wrong": "Basic " + b64(b"bc:nope"),
    "unknown user": "Basic " + b64(b"nobody:x"),
    "empty": "",
    "scheme only": "Basic",
    "not base64": "Basic !!!",
    "no colon": "Basic " + b64(b"bc"),
    "empty user": "Basic " + b64(b":bc-pw"),
    "bearer": "Bearer " + b64(b"bc:bc-pw"),
    "lower case": "basic   " + b64(b"md:md-pw"),
    "after padding": "Basic " + b64(b"sh:sh-pw") + "==junk",
    "one char too many": "Basic " + b64(b"sh:sh-pw").rstrip("=") + "A====",  # "sh-pw\\0"
    "NUL then more": "Basic " + b64(b"md:md-pw\0more"),
    "NUL in the user": "Basic " + b64(b"md\0x:md-pw"),
    "large": "Basic " + b64(b"u" * 2000 + b":" + b"p" * 2000),
}
PATHS = [f"/{d}/f.txt" for d in DIRS] + ["/p/missing", "/deny/missing"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access-nginx")
    users = tmp / "users"
    lines = []
    for user, (flags, password) in USERS.items():
        out = subprocess.run(
            [HTPASSWD, "-nb", *flags, user, password], capture_output=True, check=True
        ).stdout
        lines.append(out.decode().strip())
    lines.append("pl:{PLAIN}pl-pw")
    users.write_text("\n".join(lines) + "\n")
    block = BLOCK.replace("@USERS@", str(users))
    files = {f"{d}/f.txt": f"{d}\n" for d in DIRS}
    ws = RunningServer(
        tmp / "webserv",
        "error_log {tmp}/error.log info;\nhttp {{ access_log off; server {{\n"
        "listen 127.0.0.1:{port};\n"
        + block.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n",
        files,
    )
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    ws.start()
    (tmp / "nginx").mkdir()
    ng = RunningNginx(tmp / "nginx", ws.root, block).start()
    yield ws, ng
    ng.stop()
    ws.stop()


def ask(port: int, source: str, path: str, authorization: str | None) -> dict:
    with RawConn(port) as conn:
        conn.sock.close()
        conn.sock = socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0))
        lines = [f"GET {path} HTTP/1.1", "Host: localhost"]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, headers, _ = conn.response()
        return {
            "status": status,
            "www-authenticate": headers.get("www-authenticate"),
            "connection": headers.get("connection"),
        }


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
@pytest.mark.parametrize("path", PATHS)
def test_addresses_same_as_nginx(pair, path, source):
    ws, ng = pair
    for auth in ("none", "apr1"):
        value = AUTH[auth]
        assert ask(ws.port, source, path, value) == ask(ng.port, source, path, value), auth


@pytest.mark.parametrize("auth", sorted(AUTH))
@pytest.mark.parametrize("path", ["/p/f.txt", "/all/f.txt", "/any/f.txt", "/anyauth/f.txt"])
@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_credentials_same_as_nginx(pair, path, auth, source):
    ws, ng = pair
    value = AUTH[auth]
    assert ask(ws.port, source, path, value) == ask(ng.port, source, path, value)
