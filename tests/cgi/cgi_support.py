"""What the CGI tests share: the server's configuration, the scripts, process checks.

The server runs the demo scripts of www/cgi-bin/ and the test scripts of scripts/, copied
into its root's cgi-bin/ with their modes. Nothing here measures time: tests wait for
something to happen (`wait_until`) and check what happened.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
from pathlib import Path

from support import REPO, RawConn, RunningServer, wait_until

HERE = Path(__file__).resolve().parent
PHP_CGI = "/usr/bin/php-cgi"
PYTHON = sys.executable  # any Python 3 runs the scripts; this one is surely there

CONF = """
worker_processes 1;
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    client_max_body_size 1m;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        location /cgi-bin/ {{
            cgi .py PYTHON;
            cgi .php PHP_CGI;
            allow_methods GET HEAD POST;
        }}
        location /slow/ {{
            alias {root}/cgi-bin/;
            cgi .py PYTHON;
            cgi_timeout 1s;
            allow_methods GET HEAD POST;
        }}
        location /exec/ {{
            cgi .sh;
            allow_methods GET POST;
        }}
        location /badinterp/ {{
            alias {root}/cgi-bin/;
            cgi .py /nonexistent/bin/python3;
        }}
        location /small/ {{
            alias {root}/cgi-bin/;
            cgi .py PYTHON;
            client_max_body_size 100;
            client_body_timeout 1s;
            allow_methods GET POST;
        }}
        location /pages/ {{
            alias {root}/cgi-bin/;
            cgi .py PYTHON;
            error_page 404 502 /errors/cgi.html;
        }}
        location /getonly/ {{
            alias {root}/cgi-bin/;
            cgi .py PYTHON;
        }}
    }}
}}
""".replace("PYTHON", PYTHON).replace("PHP_CGI", PHP_CGI)


def start_server(tmp: Path) -> RunningServer:
    files = {
        "index.html": "home\n",
        "static.txt": "static file\n",
        "errors/cgi.html": "<p>custom error page</p>\n",
    }
    server = RunningServer(tmp, CONF, files)
    bin_dir = server.root / "cgi-bin"
    bin_dir.mkdir()
    for source in (REPO / "www" / "cgi-bin", HERE / "scripts"):
        for path in source.iterdir():
            if path.is_file():
                shutil.copy2(path, bin_dir / path.name)  # keeps the mode: x bits matter
    exec_dir = server.root / "exec"
    exec_dir.mkdir()
    for name in ("hello.sh", "noexec.sh"):
        shutil.copy2(HERE / "scripts" / name, exec_dir / name)
    (bin_dir / "dir.py").mkdir()  # a directory named like a script
    outside = tmp / "outside.py"
    outside.write_text("print('Content-Type: text/plain\\n\\nescaped the root')\n")
    (bin_dir / "outside.py").symlink_to(outside)
    return server.start()


# --- processes ---------------------------------------------------------------------------


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat ("R", "S", "Z", ...), None when there is no PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits to be reaped)."""
    return proc_state(pid) not in (None, "Z")


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is PID."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0]))
    return found


def read_pids(path: Path) -> list[int]:
    """The PIDs a pids.py wrote (waits for the file: the script writes it first thing)."""
    wait_until(path.exists, timeout=20)
    return [int(p) for p in path.read_text().split()]


def all_gone(pids: list[int]) -> bool:
    return not any(alive(p) for p in pids)


# --- connections --------------------------------------------------------------------------


def get(
    port: int,
    target: str,
    method: str = "GET",
    headers: str = "",
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> tuple[int, dict[str, str], bytes]:
    """One request with `Connection: close` on a fresh connection."""
    head = f"{method} {target} {version}\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    with RawConn(port, timeout=30) as conn:
        conn.send(head.encode("latin-1") + body)
        return conn.response(head=method == "HEAD")


def reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0): the server sees the client go at once."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_until(sock: socket.socket, marker: bytes, buf: bytes = b"") -> bytes:
    while marker not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before {marker!r}: {buf!r}")
        buf += data
    return buf


def still_serves(server: RunningServer) -> None:
    """Another client is answered normally: static file and a CGI script."""
    status, _, body = get(server.port, "/static.txt")
    assert (status, body) == (200, b"static file\n")
    status, _, body = get(server.port, "/cgi-bin/respond.py?Content-Type:%20text/plain%0A%0Aok")
    assert (status, body) == (200, b"ok")


def error_log(server: RunningServer) -> str:
    return server.error_log.read_text(errors="replace") if server.error_log.exists() else ""
