"""The balancer directives at load: `listen ... proxy_protocol`, set_real_ip_from and
real_ip_header as nginx spells them, and every mistake as `file:line` with nginx's wording
(or, where webserv reads less than nginx, a one-line reason), under load() and `-t`."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import pytest
from support import REPO

from webserv.config.errors import ConfigError
from webserv.config.load import load

OK = """http {
    set_real_ip_from 10.0.0.0/8;
    set_real_ip_from 192.168.1.77/24;
    set_real_ip_from 2001:db8::/32;
    set_real_ip_from unix:;
    real_ip_header proxy_protocol;
    server {
        listen 127.0.0.1:8080 proxy_protocol;
        listen 127.0.0.1:8443 ssl proxy_protocol default_server;
        listen 127.0.0.1:8081;
        ssl_certificate CERT;
        ssl_certificate_key KEY;
    }
    server {
        listen 127.0.0.1:8082 proxy_protocol;
        set_real_ip_from 172.16.0.1;
    }
}
"""


@pytest.fixture
def certs(tmp_path):
    import trustme

    cert = trustme.CA().issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "a.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "a.key"))
    return str(tmp_path / "a.crt"), str(tmp_path / "a.key")


def test_accepted_and_resolved(tmp_path, certs):
    conf = tmp_path / "webserv.conf"
    conf.write_text(OK.replace("CERT", certs[0]).replace("KEY", certs[1]))
    config = load(str(conf))
    by_port = {listener.address.port: listener for listener in config.listeners}
    assert by_port[8080].proxy_protocol and by_port[8443].proxy_protocol
    assert not by_port[8081].proxy_protocol
    assert by_port[8443].tls is not None
    first, second = config.servers
    assert first.real_ip.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.0/24"),  # host bits dropped, as nginx does
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert first.real_ip.unix
    assert first.real_ip.trusts("10.1.2.3") and first.real_ip.trusts("2001:db8::5")
    assert first.real_ip.trusts("::ffff:10.0.0.1")  # a v4-mapped peer is its IPv4 address
    assert not first.real_ip.trusts("11.0.0.1") and not first.real_ip.trusts("garbage")
    # an inner list replaces the outer one whole (nginx's merge of set_real_ip_from)
    assert second.real_ip.networks == (ipaddress.ip_network("172.16.0.1/32"),)
    assert not second.real_ip.trusts("10.0.0.1")


def test_no_set_real_ip_from_means_no_real_ip(tmp_path):
    conf = tmp_path / "webserv.conf"
    conf.write_text("http {\n    server {\n        listen 8080 proxy_protocol;\n    }\n}\n")
    (server,) = load(str(conf)).servers
    assert server.real_ip is None


CASES = {
    "bad address": (
        "http {\n    server {\n        set_real_ip_from 10.0.0.300;\n"
        "        real_ip_header proxy_protocol;\n    }\n}\n",
        3,
        'invalid parameter "10.0.0.300"',
    ),
    "bad mask": (
        "http {\n    set_real_ip_from 10.0.0.0/33;\n    real_ip_header proxy_protocol;\n}\n",
        2,
        'invalid parameter "10.0.0.0/33"',
    ),
    "hostname": (
        "http {\n    set_real_ip_from lb.example;\n    real_ip_header proxy_protocol;\n}\n",
        2,
        'invalid parameter "lb.example"',
    ),
    "no argument": ("http {\n    set_real_ip_from;\n}\n", 2,
                    'invalid number of arguments in "set_real_ip_from" directive'),
    "two arguments": ("http {\n    set_real_ip_from 10.0.0.1 10.0.0.2;\n}\n", 2,
                      'invalid number of arguments in "set_real_ip_from" directive'),
    "in location": (
        "http {\n    server {\n        location / {\n            set_real_ip_from 10.0.0.1;\n"
        "        }\n    }\n}\n",
        4,
        '"set_real_ip_from" directive is not allowed here',
    ),
    "in main": ("real_ip_header proxy_protocol;\nhttp {\n}\n", 1,
                '"real_ip_header" directive is not allowed here'),
    "header twice": (
        "http {\n    real_ip_header proxy_protocol;\n    real_ip_header proxy_protocol;\n}\n",
        3,
        '"real_ip_header" directive is duplicate',
    ),
    "X-Forwarded-For": (
        "http {\n    set_real_ip_from 10.0.0.1;\n    real_ip_header X-Forwarded-For;\n"
        "    server {\n    }\n}\n",
        3,
        '"real_ip_header X-Forwarded-For" is not supported: webserv reads the client address '
        'only from the PROXY protocol ("real_ip_header proxy_protocol;")',
    ),
    "set_real_ip_from without real_ip_header": (
        "http {\n    server {\n        listen 8080 proxy_protocol;\n"
        "        set_real_ip_from 10.0.0.1;\n    }\n}\n",
        4,
        '"set_real_ip_from" needs "real_ip_header proxy_protocol;": webserv reads no '
        "X-Real-IP or X-Forwarded-For header",
    ),
    "real_ip_recursive": ("http {\n    real_ip_recursive on;\n}\n", 2,
                          'unknown directive "real_ip_recursive"'),
    "listen typo": ("http {\n    server {\n        listen 8080 proxy_protocl;\n    }\n}\n", 3,
                    'invalid parameter "proxy_protocl"'),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_errors(tmp_path, name):
    text, line, reason = CASES[name]
    conf = tmp_path / "webserv.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.file, info.value.line, info.value.message) == (str(conf), line, reason)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "webserv", "-t", str(conf)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"webserv: [emerg] {reason} in {conf}:{line}"
