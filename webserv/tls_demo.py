"""The demo's self-signed certificate: made on first run, never committed.

    python -m webserv.tls_demo DIR    # DIR/demo.crt and DIR/demo.key, unless both exist

With the `cryptography` package (a dependency), else with `openssl req` where installed.
For localhost and 127.0.0.1 only, valid for a year; browsers warn about it (it is signed by
nobody they trust). Never touches a file that exists.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


def ensure(folder: str | Path) -> tuple[Path, Path]:
    folder = Path(folder)
    cert, key = folder / "demo.crt", folder / "demo.key"
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _with_cryptography(cert, key)
    except ImportError:
        _with_openssl(cert, key)
    return cert, key


def _with_cryptography(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webserv demo (localhost)")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in NAMES] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _with_openssl(cert: Path, key: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("neither the cryptography package nor openssl is installed")
    alt = ",".join([f"DNS:{n}" for n in NAMES] + [f"IP:{a}" for a in ADDRESSES])
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "365", "-subj", "/CN=webserv demo (localhost)",
         "-addext", f"subjectAltName={alt}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    os.chmod(key, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    made = ensure(sys.argv[1] if len(sys.argv) > 1 else "var/tls")
    print(f"certificate {made[0]}, key {made[1]}")
