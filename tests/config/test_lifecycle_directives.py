"""The lifecycle directives' config errors and values (each error: load() and `-t` alike).

lifecycle, lifecycle_log, lifecycle_capture, lifecycle_request_tcpinfo, status_history are
http/server directives; status and metrics belong to a location.
"""

from __future__ import annotations

import pytest


def server(body: str) -> str:
    return f"http {{\n    server {{\n        listen 8080;\n{body}    }}\n}}\n"


ERRORS = {
    "request_tcpinfo 0": (
        server("        lifecycle_request_tcpinfo 0;\n"),
        4,
        'invalid number "0" in "lifecycle_request_tcpinfo" directive',
    ),
    "request_tcpinfo a word": (
        server("        lifecycle_request_tcpinfo sometimes;\n"),
        4,
        'invalid number "sometimes" in "lifecycle_request_tcpinfo" directive',
    ),
    "request_tcpinfo negative": (
        server("        lifecycle_request_tcpinfo -4;\n"),
        4,
        'invalid number "-4" in "lifecycle_request_tcpinfo" directive',
    ),
    "request_tcpinfo no argument": (
        server("        lifecycle_request_tcpinfo;\n"),
        4,
        'invalid number of arguments in "lifecycle_request_tcpinfo" directive',
    ),
    "request_tcpinfo two arguments": (
        server("        lifecycle_request_tcpinfo every 2;\n"),
        4,
        'invalid number of arguments in "lifecycle_request_tcpinfo" directive',
    ),
    "request_tcpinfo in a location": (
        server("        location / {\n            lifecycle_request_tcpinfo every;\n        }\n"),
        5,
        '"lifecycle_request_tcpinfo" directive is not allowed here',
    ),
    "request_tcpinfo in main": (
        "lifecycle_request_tcpinfo every;\n" + server(""),
        1,
        '"lifecycle_request_tcpinfo" directive is not allowed here',
    ),
    "capture not a flag": (
        server("        lifecycle_capture yes;\n"),
        4,
        'invalid value "yes" in "lifecycle_capture" directive, it must be "on", "off" or "userspace"',
    ),
    "capture in a location": (
        server("        location / {\n            lifecycle_capture on;\n        }\n"),
        5,
        '"lifecycle_capture" directive is not allowed here',
    ),
    "lifecycle not a flag": (
        server("        lifecycle 1;\n"),
        4,
        'invalid value "1" in "lifecycle" directive, it must be "on" or "off"',
    ),
    "status_history 0": (
        server("        status_history 0;\n"),
        4,
        'invalid number "0" in "status_history" directive',
    ),
    "status_history too many": (
        server("        status_history 100001;\n"),
        4,
        '"status_history" of 100001 connections is too many (100000 at most)',
    ),
    "status in a server": (
        server("        status on;\n"),
        4,
        '"status" directive is not allowed here',
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_error(conf, name):
    text, line, reason = ERRORS[name]
    conf.check_error(text, line, reason)


@pytest.mark.parametrize(
    ("value", "every"), [("every", 1), ("1", 1), ("16", 16), ("off", 0), (None, 0)]
)
def test_request_tcpinfo_values(conf, value, every):
    line = f"        lifecycle_request_tcpinfo {value};\n" if value else ""
    (loaded,) = conf.load(server(line)).servers
    assert loaded.request_tcpinfo == every


def test_request_tcpinfo_inherited_from_http_and_overridden_by_a_server(conf):
    text = (
        "http {\n    lifecycle_request_tcpinfo 8;\n"
        "    server {\n        listen 8080;\n    }\n"
        "    server {\n        listen 8081;\n        lifecycle_request_tcpinfo off;\n    }\n}\n"
    )
    first, second = conf.load(text).servers
    assert (first.request_tcpinfo, second.request_tcpinfo) == (8, 0)


@pytest.mark.parametrize(
    ("value", "mode"), [("on", True), ("off", False), ("userspace", "userspace"), (None, False)]
)
def test_capture_values(conf, value, mode):
    line = f"        lifecycle_capture {value};\n" if value else ""
    (loaded,) = conf.load(server(line)).servers
    assert loaded.lifecycle_capture == mode


def test_one_userspace_server_makes_the_generation_capture_in_user_space(conf):
    from webserv.capture import capture_ports, kernel_matching

    text = (
        "http {\n    lifecycle_capture on;\n"
        "    server {\n        listen 8080;\n    }\n"
        "    server {\n        listen 8081;\n        lifecycle_capture userspace;\n    }\n}\n"
    )
    loaded = conf.load(text)
    assert capture_ports(loaded) == [8080, 8081]
    assert not kernel_matching(loaded)
    assert kernel_matching(conf.load(server("        lifecycle_capture on;\n")))
