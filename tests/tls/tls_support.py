"""What the TLS tests share: a test CA (trustme) and its certificates, TLS clients.

Certificates are made once per session in a temporary folder; a server config names them
by absolute path. Clients trust only the test CA. Nothing here measures time.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from support import RawConn


@dataclass
class Pair:
    cert: Path
    key: Path


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    folder: Path

    def issue(self, name: str, *hosts: str) -> Pair:
        """A certificate (and key) for `hosts`, named `name` in the folder."""
        cert = self.ca.issue_cert(*hosts)
        pair = Pair(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        if not pair.cert.exists():
            cert.cert_chain_pems[0].write_to_path(str(pair.cert))
            cert.private_key_pem.write_to_path(str(pair.key))
        return pair

    def client(self, **versions: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        for name, version in versions.items():
            setattr(ctx, name, version)
        return ctx


def tls_socket(
    port: int, ctx: ssl.SSLContext, sni: str | None = "localhost", session=None, timeout=10.0
) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except BaseException:
        raw.close()
        raise


class TlsRaw(RawConn):
    """RawConn over TLS: send bytes, read whole responses, pipelined or not."""

    def __init__(self, port: int, ctx: ssl.SSLContext, sni: str | None = "localhost", **kw):
        self.sock = tls_socket(port, ctx, sni, **kw)
        self.buf = b""

    def _fill(self) -> bool:
        try:
            return super()._fill()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return False


def tls_request(
    port: int, ctx: ssl.SSLContext, target: str = "/", sni: str | None = "localhost",
    host: str = "localhost", method: str = "GET", headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with TlsRaw(port, ctx, sni) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return conn.response(head=method == "HEAD")


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample's value from a Prometheus exposition (0 if absent)."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return 0.0
