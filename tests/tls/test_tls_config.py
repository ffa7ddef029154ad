"""The ssl_* directives are checked at load, as `nginx -t` does: FILE:LINE, exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import REPO

from webserv import tls
from webserv.config import ConfigError, load


def check(tmp_path, text: str, line: int, reason_start: str) -> None:
    conf = tmp_path / "webserv.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.file, info.value.line) == (str(conf), line)
    assert info.value.message.startswith(reason_start), info.value.message
    result = subprocess.run(
        [sys.executable, "-m", "webserv", "-t", str(conf)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"webserv: [emerg] {reason_start}"), first
    assert first.endswith(f" in {conf}:{line}"), first


def conf(cert: str, key: str, extra: str = "") -> str:
    return f"""http {{
    server {{
        listen 127.0.0.1:8443 ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {extra}
    }}
}}
"""


def test_missing_certificate_file(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    check(tmp_path, conf("nowhere.crt", pair.key), 4, 'cannot load certificate "')


def test_unreadable_key(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    (tmp_path / "keydir").mkdir()  # (a folder: unreadable as a file, even for root)
    check(tmp_path, conf(pair.cert, "keydir"), 5, 'cannot load certificate key "')


def test_missing_key_file(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    check(tmp_path, conf(pair.cert, "missing.key"), 5, 'cannot load certificate key "')


def test_key_of_another_certificate(tmp_path, certs):
    one, two = certs.issue("one", "localhost"), certs.issue("two", "b.test")
    check(tmp_path, conf(one.cert, two.key), 5, "SSL_CTX_use_PrivateKey(")


def test_not_a_certificate(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    check(tmp_path, conf(pair.key, pair.key), 4, 'cannot load certificate "')


def test_listen_ssl_without_certificate(tmp_path):
    text = "http {\n    server {\n        listen 127.0.0.1:8443 ssl;\n    }\n}\n"
    check(tmp_path, text, 3, 'no "ssl_certificate" is defined for the listen ... ssl directive')


def test_certificate_without_key(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    text = (
        f"http {{\n  server {{\n    listen 8443 ssl;\n    ssl_certificate {pair.cert};\n  }}\n}}\n"
    )
    check(tmp_path, text, 4, 'no "ssl_certificate_key" is defined for certificate')


def test_bad_protocol_and_ciphers(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    check(
        tmp_path,
        conf(pair.cert, pair.key, "ssl_protocols TLSv1.2 SSLv9;"),
        6,
        'invalid value "SSLv9" in "ssl_protocols" directive',
    )
    check(
        tmp_path,
        conf(pair.cert, pair.key, "ssl_ciphers NOTHING-KNOWN;"),
        6,
        'SSL_CTX_set_cipher_list("NOTHING-KNOWN") failed',
    )


def test_defaults_and_settings(tmp_path, certs):
    pair = certs.issue("one", "localhost")
    path = tmp_path / "ok.conf"
    path.write_text(conf(pair.cert, pair.key, "ssl_session_timeout 10m; ssl_session_tickets off;"))
    config = load(str(path))
    server = config.servers[0]
    assert server.tls.protocols == ("TLSv1.2", "TLSv1.3")  # nginx's default
    assert server.tls.ciphers == "HIGH:!aNULL:!MD5"
    assert not server.tls.prefer_server_ciphers
    assert server.ssl_context.options & __import__("ssl").OP_NO_TICKET
    assert tls.session_timeout(server.ssl_context) in (600, None)  # None: not settable here
    (listener,) = config.listeners
    assert listener.tls is not None and len(listener.tls) == 1
    plain = tmp_path / "plain.conf"
    plain.write_text("http { server { listen 127.0.0.1:8080; } }\n")
    assert load(str(plain)).listeners[0].tls is None
