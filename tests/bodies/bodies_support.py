"""Helpers for the request-body tests: what is on disk, and requests no client library sends."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from support import wait_until

TEMP_PREFIX = ".webserv-upload-"


# --- what is on disk --------------------------------------------------------------------


def listing(directory: Path) -> dict[str, bytes]:
    """Every entry of a directory tree (hidden ones too) → its bytes (b"<dir>" for dirs)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), directory)] = b"<dir>"
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, directory)
            out[rel] = b"<link>" if os.path.islink(path) else Path(path).read_bytes()
    return out


def temp_files(directory: Path) -> list[str]:
    return [
        os.path.relpath(os.path.join(dirpath, name), directory)
        for dirpath, _, names in os.walk(directory)
        for name in names
        if name.startswith(TEMP_PREFIX)
    ]


def wait_no_temp(directory: Path) -> None:
    """The handler discards its temp file after the connection is gone: wait for that."""
    wait_until(lambda: not temp_files(directory))


def wait_temp(directory: Path, min_size: int = 1, other_than: frozenset[str] = frozenset()) -> str:
    """Wait until an upload is under way: a temp file (not one of `other_than`) with at
    least min_size bytes."""

    def grown() -> str | None:
        for rel in set(temp_files(directory)) - other_than:
            try:
                if os.path.getsize(directory / rel) >= min_size:
                    return rel
            except FileNotFoundError:
                pass
        return None

    return wait_until(grown)


def assert_unchanged(directory: Path, before: dict[str, bytes]) -> None:
    wait_no_temp(directory)
    assert listing(directory) == before


# --- building requests --------------------------------------------------------------------


def head(method: str, target: str, fields: dict[str, str | int] | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    lines += [f"{name}: {value}" for name, value in (fields or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def multipart(parts: list[tuple], boundary: str = "b0undary-XyZ") -> tuple[bytes, str]:
    """A multipart/form-data body from (name, value) fields and (name, filename, bytes) files.

    A filename may be bytes, sent as they are (for names a browser would never produce).
    """
    out = []
    for part in parts:
        out.append(b"--" + boundary.encode() + b"\r\n")
        if len(part) == 2:
            name, value = part
            out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.append(value if isinstance(value, bytes) else value.encode())
        else:
            name, filename, data = part
            if isinstance(filename, str):
                filename = filename.encode()
            out.append(
                b'Content-Disposition: form-data; name="'
                + name.encode()
                + b'"; filename="'
                + filename
                + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            )
            out.append(data)
        out.append(b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def chunked(data: bytes, size: int) -> bytes:
    return (
        b"".join(
            b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n"
            for i in range(0, len(data), size)
        )
        + b"0\r\n\r\n"
    )


def rst_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that are not all alike (every 4 KiB block differs), so a misplaced block shows."""
    block = bytes((i * 7 + seed) & 0xFF for i in range(4096))
    out = bytearray()
    n = 0
    while len(out) < size:
        out += n.to_bytes(4, "big") + block[4:]
        n += 1
    return bytes(out[:size])
