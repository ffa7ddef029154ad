"""One home for every default: the directive table. What the reference documents is what
parsing that text gives, and what a configuration that does not set a directive gets."""

from __future__ import annotations

import os

import pytest

from webserv.config import load
from webserv.config.directives import DIRECTIVES
from webserv.config.lexer import Statement, Token

MINIMAL = "http { server { listen 127.0.0.1:8999; location /l/ { } } }\n"
UNPARSABLE_TEXT = {"error_log", "types", "server_name"}  # documented in words, not syntax


def statement(name: str, text: str) -> Statement:
    args = [Token(word, "/x.conf", 1) for word in text.split()]
    return Statement(name, args, "/x.conf", 1)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, d in DIRECTIVES.items()
        if d.default is not None and d.parse is not None and n not in UNPARSABLE_TEXT
    ],
)
def test_the_documented_default_is_the_default(name):
    directive = DIRECTIVES[name]
    stmt = statement(name, directive.default_text)
    assert directive.parse(stmt, stmt.arg_texts()) == directive.default


def test_word_defaults_say_what_they_hold():
    assert DIRECTIVES["error_log"].default_text.split() == list(DIRECTIVES["error_log"].default)
    assert DIRECTIVES["server_name"].default == ("",)
    assert DIRECTIVES["types"].default_text.split() == list(DIRECTIVES["types"].default)


def test_a_configuration_that_sets_nothing_gets_every_default(tmp_path):
    path = tmp_path / "minimal.conf"
    path.write_text(MINIMAL)
    config = load(str(path))
    d = {name: DIRECTIVES[name].default for name in DIRECTIVES}
    assert config.worker_processes == d["worker_processes"]
    assert config.master_process == d["master_process"]
    assert config.worker_shutdown_timeout == d["worker_shutdown_timeout"]
    assert config.worker_connections == d["worker_connections"]
    assert config.error_log == d["error_log"]
    (server,) = config.servers
    assert server.names == d["server_name"]
    assert server.client_header_timeout == d["client_header_timeout"]
    count, size = d["large_client_header_buffers"]
    assert (server.header_line_limit, server.header_section_limit) == (size, count * size)
    assert server.lifecycle == d["lifecycle"]
    assert server.lifecycle_log is None  # "off"
    assert server.status_history == d["status_history"]
    for loc in (server.fallback, server.prefixes[0]):
        assert loc.root == os.path.join(str(tmp_path), d["root"])
        assert loc.index == d["index"]
        assert loc.autoindex == d["autoindex"]
        assert loc.client_max_body_size == d["client_max_body_size"]
        assert loc.allow_methods == d["allow_methods"]
        assert (loc.keepalive_timeout, loc.keepalive_header) == d["keepalive_timeout"]
        assert loc.client_body_timeout == d["client_body_timeout"]
        assert loc.send_timeout == d["send_timeout"]
        assert dict(loc.types) == d["types"]
        assert loc.default_type == d["default_type"]
        assert loc.server_tokens == d["server_tokens"]
        assert loc.open_file_cache == d["open_file_cache"]
        assert loc.open_file_cache_valid == d["open_file_cache_valid"]
        assert loc.cgi_timeout == d["cgi_timeout"]
        assert (loc.status, loc.metrics) == (d["status"], d["metrics"])
        assert loc.cgi == {} and loc.upload_store is None and loc.return_ is None
        assert [a.file.path for a in loc.access_logs] == [str(tmp_path / "logs/access.log")]
