"""Every config error names its file, its line and the reason, and `-t` exits 1 with it.

Each case is checked twice (see conftest.ConfDir.check_error): load() raises ConfigError with
exactly that file, line and message, and `python -m webserv -t CONF` prints
`webserv: [emerg] REASON in FILE:LINE` then `... test failed`, and exits 1.
"""

from __future__ import annotations

import os

import pytest

# (config text, line, reason); errors sit below line 1 so a wrong line number shows
CASES = {
    "unknown directive": (
        "http {\n    server {\n        listen 8080;\n        roots /srv;\n    }\n}\n",
        4,
        'unknown directive "roots"',
    ),
    "listen in http": (
        "http {\n    listen 8080;\n    server {\n    }\n}\n",
        2,
        '"listen" directive is not allowed here',
    ),
    "root in main": (
        "worker_processes 1;\nroot /srv;\nhttp {\n    server {\n    }\n}\n",
        2,
        '"root" directive is not allowed here',
    ),
    "alias in server": (
        "http {\n    server {\n        alias /srv;\n    }\n}\n",
        3,
        '"alias" directive is not allowed here',
    ),
    "server in server": (
        "http {\n    server {\n        server {\n        }\n    }\n}\n",
        3,
        '"server" directive is not allowed here',
    ),
    "location in an exact location": (
        "http {\n    server {\n        location = /a {\n            location /a/b {\n            }\n"
        "        }\n    }\n}\n",
        4,
        'location "/a/b" cannot be inside the exact location "/a"',
    ),
    "log_format in server": (
        "http {\n    server {\n        log_format x '$uri';\n    }\n}\n",
        3,
        '"log_format" directive is not allowed here',
    ),
    "worker_connections outside events": (
        "worker_connections 10;\nhttp {\n    server {\n    }\n}\n",
        1,
        '"worker_connections" directive is not allowed here',
    ),
    "no arguments": (
        "http {\n    server {\n        root;\n    }\n}\n",
        3,
        'invalid number of arguments in "root" directive',
    ),
    "too many arguments": (
        "http {\n    server {\n        autoindex on off;\n    }\n}\n",
        3,
        'invalid number of arguments in "autoindex" directive',
    ),
    "listen with an unknown parameter": (
        "http {\n    server {\n        listen 8080 default_server x;\n    }\n}\n",
        3,
        'invalid parameter "x"',  # nginx's words: listen takes any number of parameters
    ),
    "location without pattern": (
        "http {\n    server {\n        location {\n        }\n    }\n}\n",
        3,
        'invalid number of arguments in "location" directive',
    ),
    "error_page without uri": (
        "http {\n    server {\n        error_page 404;\n    }\n}\n",
        3,
        'invalid number of arguments in "error_page" directive',
    ),
    "include with two files": (
        "http {\n    include a.conf b.conf;\n}\n",
        2,
        'invalid number of arguments in "include" directive',
    ),
    "bad size": (
        "http {\n    server {\n        client_max_body_size 1.5m;\n    }\n}\n",
        3,
        'invalid size "1.5m" in "client_max_body_size" directive',
    ),
    "bad size unit": (
        "http {\n    client_max_body_size 1t;\n    server {\n    }\n}\n",
        2,
        'invalid size "1t" in "client_max_body_size" directive',
    ),
    "bad time": (
        "http {\n    server {\n        keepalive_timeout 10x;\n    }\n}\n",
        3,
        'invalid time "10x" in "keepalive_timeout" directive',
    ),
    "time units out of order": (
        "http {\n    server {\n        send_timeout 1s1h;\n    }\n}\n",
        3,
        'invalid time "1s1h" in "send_timeout" directive',
    ),
    "bad flag": (
        "http {\n    server {\n        autoindex yes;\n    }\n}\n",
        3,
        'invalid value "yes" in "autoindex" directive, it must be "on" or "off"',
    ),
    "unknown method": (
        "http {\n    server {\n        allow_methods GET FETCH;\n    }\n}\n",
        3,
        'unknown method "FETCH" in "allow_methods" directive',
    ),
    "method not implemented": (
        "http {\n    server {\n        allow_methods GET OPTIONS;\n    }\n}\n",
        3,
        'method "OPTIONS" is not implemented by webserv',
    ),
    "listen port too large": (
        "http {\n    server {\n        listen 70000;\n    }\n}\n",
        3,
        'invalid port in "70000" in "listen" directive',
    ),
    "listen port zero": (
        "http {\n    server {\n        listen 127.0.0.1:0;\n    }\n}\n",
        3,
        'invalid port in "127.0.0.1:0" in "listen" directive',
    ),
    "listen port not a number": (
        "http {\n    server {\n        listen localhost:http;\n    }\n}\n",
        3,
        'invalid port in "localhost:http" in "listen" directive',
    ),
    "listen bad ipv6": (
        "http {\n    server {\n        listen [::zz]:8080;\n    }\n}\n",
        3,
        'invalid IPv6 address "::zz" in "listen" directive',
    ),
    "listen unknown option": (
        "http {\n    server {\n        listen 8080 quic;\n    }\n}\n",
        3,
        'invalid parameter "quic"',
    ),
    "error_page code below 300": (
        "http {\n    server {\n        error_page 404 200 /e.html;\n    }\n}\n",
        3,
        'value "200" must be between 300 and 599',
    ),
    "error_page code above 599": (
        "http {\n    error_page 600 /e.html;\n    server {\n    }\n}\n",
        2,
        'value "600" must be between 300 and 599',
    ),
    "error_page bad response code": (
        "http {\n    server {\n        error_page 404 =abc /e.html;\n    }\n}\n",
        3,
        'invalid value "=abc"',
    ),
    "return code too large": (
        "http {\n    server {\n        location / {\n            return 1000;\n        }\n    }\n}\n",
        4,
        'invalid return code "1000"',
    ),
    "return code below 100": (
        "http {\n    server {\n        return 99 text;\n    }\n}\n",
        3,
        'invalid return code "99"',
    ),
    "return code not a number": (
        "http {\n    server {\n        return ok;\n    }\n}\n",
        3,
        'invalid return code "ok"',
    ),
    "duplicate listen": (
        "http {\n    server {\n        listen 8080;\n        server_name a;\n        listen *:8080;\n"
        "    }\n}\n",
        5,
        "a duplicate listen *:8080",
    ),
    "duplicate listen written as 0.0.0.0": (
        "http {\n    server {\n        listen 8080;\n        listen 0.0.0.0:8080 default_server;\n"
        "    }\n}\n",
        4,
        "a duplicate listen *:8080",
    ),
    "duplicate listen ipv6": (
        "http {\n    server {\n        listen [::1]:8080;\n        listen [::1]:8080;\n    }\n}\n",
        4,
        "a duplicate listen [::1]:8080",
    ),
    "two default servers": (
        "http {\n    server {\n        listen 8080 default_server;\n    }\n    server {\n"
        "        server_name b;\n        listen 8080 default_server;\n    }\n}\n",
        7,
        "a duplicate default server for *:8080",
    ),
    "duplicate directive": (
        "http {\n    server {\n        root /a;\n        root /b;\n    }\n}\n",
        4,
        '"root" directive is duplicate',
    ),
    "duplicate location": (
        "http {\n    server {\n        location /a {\n        }\n        location ^~ /a {\n"
        "        }\n    }\n}\n",
        5,
        'duplicate location "/a"',
    ),
    "bad location regex": (
        "http {\n    server {\n        location ~ ^/(a {\n        }\n    }\n}\n",
        3,
        'invalid location regex "^/(a": missing ), unterminated subpattern at position 2',
    ),
    "bad server name wildcard": (
        "http {\n    server {\n        server_name www.*.com;\n    }\n}\n",
        3,
        'invalid server name or wildcard "www.*.com"',
    ),
    "block directive without block": (
        "http {\n    server;\n}\n",
        2,
        'directive "server" has no opening "{"',
    ),
    "simple directive with block": (
        "http {\n    server {\n        root /srv {\n        }\n    }\n}\n",
        3,
        'directive "root" is not terminated by ";"',
    ),
    "missing semicolon before }": (
        "http {\n    server {\n        listen 8080\n    }\n}\n",
        4,
        'unexpected "}"',
    ),
    "missing semicolon before the next directive": (
        "http {\n    server {\n        listen 8080\n        root /srv;\n    }\n}\n",
        3,
        'invalid parameter "root"',
    ),
    "missing semicolon at end of file": (
        "http {\n    server {\n    }\n}\nworker_processes 1\n",
        5,
        'unexpected end of file, expecting ";" or "}"',
    ),
    "missing }": (
        "http {\n    server {\n        listen 8080;\n\n    }\n",
        5,
        'unexpected end of file, expecting "}"',
    ),
    "unbalanced }": (
        "http {\n    server {\n    }\n}\n}\n",
        5,
        'unexpected "}"',
    ),
    "stray semicolon": (
        "http {\n    server {\n        ;\n    }\n}\n",
        3,
        'unexpected ";"',
    ),
    "unterminated quote": (
        'http {\n    server {\n        root "/srv;\n    }\n}\n',
        3,
        "unexpected end of file, expecting closing quote",
    ),
    "text after a closing quote": (
        "http {\n    server {\n        root '/srv'x;\n    }\n}\n",
        3,
        'unexpected "x" after a closing quote',
    ),
    "unknown log_format variable": (
        "http {\n    log_format main '$remote_addr $no_such_thing';\n    server {\n    }\n}\n",
        2,
        'unknown "no_such_thing" variable',
    ),
    "unknown log format in access_log": (
        "http {\n    log_format main '$status';\n    server {\n"
        "        access_log logs/a.log mian;\n    }\n}\n",
        4,
        'unknown log format "mian"',
    ),
    "duplicate log_format": (
        "http {\n    log_format main '$status';\n    log_format main '$uri';\n    server {\n"
        "    }\n}\n",
        3,
        'duplicate "log_format" name "main"',
    ),
    "access_log off with another": (
        "http {\n    server {\n        access_log off;\n        access_log logs/a.log;\n    }\n}\n",
        3,
        '"access_log off" cannot be combined with other access_log directives',
    ),
    "bad error_log level": (
        "error_log logs/error.log loud;\nhttp {\n    server {\n    }\n}\n",
        1,
        'invalid log level "loud"',
    ),
    "bad worker_connections": (
        "events {\n    worker_connections 0;\n}\nhttp {\n    server {\n    }\n}\n",
        2,
        'invalid number "0" in "worker_connections" directive',
    ),
    "missing include": (
        "http {\n    server {\n        include missing.conf;\n    }\n}\n",
        3,
        'open() "{dir}/missing.conf" failed (No such file or directory)',
    ),
    "include of a directory": (
        "http {\n    server {\n    }\n    include sites;\n}\n",
        4,
        'open() "{dir}/sites" failed (Is a directory)',
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_names_file_line_and_reason(conf, name):
    text, line, reason = CASES[name]
    (conf.path / "sites").mkdir()
    conf.check_error(text, line, reason.replace("{dir}", str(conf.path)))


def test_error_inside_an_included_file_names_that_file(conf):
    conf.write("sites/a.conf", "server {\n    listen 8080;\n}\n")
    conf.write("sites/b.conf", "server {\n    listen 8081;\n    autoindex maybe;\n}\n")
    conf.check_error(
        "http {\n    include sites/*.conf;\n}\n",
        3,
        'invalid value "maybe" in "autoindex" directive, it must be "on" or "off"',
        file="sites/b.conf",
    )


def test_missing_brace_inside_an_included_file(conf):
    conf.write("part.conf", "server {\n    listen 8080;\n")
    conf.check_error(
        "http {\n    include part.conf;\n}\n",
        2,
        'unexpected end of file, expecting "}"',
        file="part.conf",
    )


def test_missing_include_nested_in_an_include_names_the_inner_include_line(conf):
    conf.write("outer.conf", "# outer\ninclude inner/*.conf;\ninclude gone.conf;\n")
    conf.check_error(
        "http {\n    include outer.conf;\n    server {\n    }\n}\n",
        3,
        f'open() "{conf.path}/gone.conf" failed (No such file or directory)',
        file="outer.conf",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_include(conf):
    secret = conf.write("secret.conf", "index i;\n")
    secret.chmod(0)
    conf.check_error(
        "http {\n    server {\n        include secret.conf;\n    }\n}\n",
        3,
        f'open() "{secret}" failed (Permission denied)',
    )


def test_include_that_is_not_utf8(conf):
    conf.write("latin1.conf", b"index caf\xe9.html;\n")
    conf.check_error(
        "http {\n    server {\n        include latin1.conf;\n    }\n}\n",
        3,
        f'"{conf.path}/latin1.conf" is not valid UTF-8',
    )


def test_first_error_wins(conf):
    conf.check_error(
        "http {\n    server {\n        autoindex yes;\n        roots /x;\n    }\n}\n",
        3,
        'invalid value "yes" in "autoindex" directive, it must be "on" or "off"',
    )


def test_no_server_is_an_error_without_a_line(conf):
    path = conf.write("webserv.conf", "events {\n}\nhttp {\n}\n")
    result = conf.cli("-t", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"webserv: [emerg] no server defined (an http {{ server {{ ... }} }} block is needed) in {path}",
        f"webserv: configuration file {path} test failed",
    ]


def test_missing_config_file(conf):
    path = conf.path / "nope.conf"
    result = conf.cli("-t", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'webserv: [emerg] open() "{path}" failed (No such file or directory) in {path}',
        f"webserv: configuration file {path} test failed",
    ]
