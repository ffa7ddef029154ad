"""Start a real nginx on a free loopback port, serving a given docroot, for side-by-side runs.

The config lives under the test's tmp directory (prefix, pid, logs, temp paths: nothing
outside it is touched). `NGINX` is None when no nginx binary is installed; callers skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

from support import RunningServer, free_port

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
MIME_TYPES = Path("/etc/nginx/mime.types")


class RunningNginx:
    def __init__(self, tmp: Path, root: Path, server_block: str) -> None:
        """`server_block` is the inside of `server { }`; `{port}` and `{root}` are replaced."""
        self.tmp = tmp
        self.root = root
        self.port = free_port()
        self.error_log = tmp / "nginx-error.log"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        types = f"include {MIME_TYPES};" if MIME_TYPES.exists() else ""
        # As root, nginx's workers would switch to `nobody`, who cannot read pytest's tmp.
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(
            f"""
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    {types}
    default_type application/octet-stream;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        {server_block.replace("{port}", str(self.port)).replace("{root}", str(root))}
    }}
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RunningNginx:
        assert NGINX, "nginx is not installed"
        with open(self.tmp / "nginx-stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.tmp), "-c", str(self.conf), "-e", str(self.error_log)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {self.proc.returncode}: "
                    + (self.tmp / "nginx-stderr.log").read_text(errors="replace")
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def webserv_and_nginx(tmp: Path, block: str, files: dict[str, str] | None = None):
    """The same server block (`{root}` for the files' folder) run by webserv and, where it
    is installed, by nginx: (webserv, nginx or None), both started. For side-by-side tests."""
    conf = (
        "http {{ access_log off; server {{ listen 127.0.0.1:{port};"
        + block.replace("{root}", "@ROOT@").replace("{", "{{").replace("}", "}}")
        + "}} }}\n"
    )
    ws = RunningServer(tmp / "webserv", conf, files)
    ws.conf.write_text(ws.conf.read_text().replace("@ROOT@", str(ws.root)))
    ws.start()
    ng = None
    if NGINX is not None:
        (tmp / "nginx").mkdir()
        ng = RunningNginx(tmp / "nginx", ws.root, block).start()
    return ws, ng


def nginx_verdict(tmp_path: Path, body: str) -> tuple[bool, str]:
    """(accepted, the [emerg] message without its place) of `nginx -t` on http { BODY }."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"events {{ }}\nhttp {{\n{textwrap.dedent(body)}\n}}\n")
    proc = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    line = next((x for x in proc.stderr.splitlines() if "[emerg]" in x), "")
    message = line.split("[emerg] ", 1)[-1].rsplit(" in ", 1)[0]
    return proc.returncode == 0, message
