"""Config errors and values of the nginx-compatibility work (issue 14): nested locations,
the redirect trio, and the directives nginx's test suite needs (directives_compat.py).

Each error names its file:line with nginx's wording; where nginx is installed, `nginx -t`
refuses the same config with the same message (or accepts it, for what both accept).
"""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, nginx_verdict

from webserv import router


def server_of(config):
    (server,) = config.servers
    return server


# --- nested locations ----------------------------------------------------------------------

NESTED_ERRORS = {
    "outside": (
        "server {\n location /a {\n  location /b { }\n }\n}",
        3,
        'location "/b" is outside location "/a"',
    ),
    "shorter than the outer": (
        "server {\n location /a/b {\n  location /a { }\n }\n}",
        3,
        'location "/a" is outside location "/a/b"',
    ),
    "exact outside": (
        "server {\n location /a {\n  location = /b { }\n }\n}",
        3,
        'location "/b" is outside location "/a"',
    ),
    "prefix inside a regex": (
        "server {\n location ~ ^/a {\n  location /a { }\n }\n}",
        3,
        'location "/a" is outside location "^/a"',
    ),
    "inside an exact": (
        "server {\n location = /a {\n  location ~ x { }\n }\n}",
        3,
        'location "x" cannot be inside the exact location "/a"',
    ),
    "named inside": (
        "server {\n location /a {\n  location @x { }\n }\n}",
        3,
        'named location "@x" can be on the server level only',
    ),
    "inside a named": (
        "server {\n location @n {\n  location /x { }\n }\n}",
        3,
        'location "/x" cannot be inside the named location "@n"',
    ),
    "duplicate nested": (
        "server {\n location /a {\n  location /a/b { }\n  location /a/b { }\n }\n}",
        4,
        'duplicate location "/a/b"',
    ),
    "two deep": (
        "server {\n location /a {\n  location /a/b {\n   location /a/c { }\n  }\n }\n}",
        4,
        'location "/a/c" is outside location "/a/b"',
    ),
}


@pytest.mark.parametrize(
    ("body", "line", "reason"), NESTED_ERRORS.values(), ids=list(NESTED_ERRORS)
)
def test_nested_location_errors(conf, body, line, reason):
    conf.check_error(f"http {{\n{body}\n}}\n", line + 1, reason)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize(
    ("body", "line", "reason"), NESTED_ERRORS.values(), ids=list(NESTED_ERRORS)
)
def test_nested_location_errors_are_nginx_s(tmp_path, body, line, reason):
    if "duplicate" in reason:
        reason += " in"  # nginx adds where the first one is; webserv names the second's line
    accepted, message = nginx_verdict(tmp_path, body)
    assert not accepted
    assert message.startswith(reason.removesuffix(" in"))


ACCEPTED = {
    "regex in a prefix": "server { location /a { location ~ \\.x$ { } } }",
    "regex in a regex": "server { location ~ a { location ~ b { } } }",
    "exact in a prefix": "server { location /a { location = /a/b { } } }",
    "the outer's own name": "server { location /a { location /a { } } }",
    "caret-tilde in a prefix": "server { location /a { location ^~ /a/b { } } }",
    "same name in two parents": "server { location /a { location /a/x { } } location /b/ { } }",
}


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=list(ACCEPTED))
def test_nested_locations_nginx_accepts_load(conf, body):
    conf.load(f"http {{ {body} }}")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("body", ACCEPTED.values(), ids=list(ACCEPTED))
def test_nested_locations_accepted_by_nginx_too(tmp_path, body):
    assert nginx_verdict(tmp_path, body) == (True, "")


def test_nested_location_inherits_its_parent_but_return(conf):
    server = server_of(
        conf.load(
            """
            http { server {
                root /srv;
                location /a/ {
                    root /a; autoindex on; error_page 404 /nf.html; index i.html;
                    client_max_body_size 5; return 403;
                    location /a/b/ { }
                    location /a/c/ { root /c; autoindex off; error_page 500 /e.html; }
                }
            } }
            """
        )
    )
    outer = router.find_location(server, "/a/x")
    inner = router.find_location(server, "/a/b/x")
    own = router.find_location(server, "/a/c/x")
    assert outer.return_ is not None and inner.return_ is None and own.return_ is None
    assert (inner.root, inner.autoindex, inner.index) == ("/a", True, ("i.html",))
    assert set(inner.error_pages) == {404} and inner.client_max_body_size == 5
    assert (own.root, own.autoindex, set(own.error_pages)) == ("/c", False, {500})


def test_a_server_return_still_wins_in_nested_locations(conf):
    server = server_of(
        conf.load("http { server { return 410; location /a { location /a/b { return 200; } } } }")
    )
    assert router.find_location(server, "/a/b").return_.code == 410


def test_inherited_alias_replaces_the_prefix_of_the_location_that_said_it(conf):
    server = server_of(
        conf.load(
            "http { server { location /al/ { alias /data/;"
            " location /al/s/ { } location ~ x { } location /al/r/ { root /r; } } } }"
        )
    )
    sub = router.find_location(server, "/al/s/f")
    rx = router.find_location(server, "/al/x")
    own_root = router.find_location(server, "/al/r/f")
    assert (sub.alias, sub.alias_strip) == ("/data/", len("/al/"))
    assert (rx.alias, rx.alias_strip) == ("/data/", len("/al/"))
    assert own_root.alias is None and own_root.root == "/r"


def test_nested_locations_are_in_every_location_list(conf):
    config = conf.load(
        "http { server { location /a { location /a/b { location ~ c { status on; } } } } }"
    )
    patterns = [loc.pattern for loc in router.all_locations(server_of(config))]
    assert patterns == ["", "/a", "/a/b", "c"]


# --- directives accepted for nginx configs (directives_compat.py) ---------------------------

ACCEPTED_DIRECTIVES = {
    # name: (a valid statement, where it may be: "http", "server", "location")
    "client_header_buffer_size": ("client_header_buffer_size 1k;", ("http", "server")),
    "connection_pool_size": ("connection_pool_size 256;", ("http", "server")),
    "client_body_buffer_size": ("client_body_buffer_size 8k;", ("http", "server", "location")),
    "client_body_in_file_only": ("client_body_in_file_only clean;", ("http", "server", "location")),
    "client_body_in_single_buffer": (
        "client_body_in_single_buffer on;",
        ("http", "server", "location"),
    ),
    "server_names_hash_bucket_size": ("server_names_hash_bucket_size 64;", ("http",)),
    "server_names_hash_max_size": ("server_names_hash_max_size 1024;", ("http",)),
    "merge_slashes": ("merge_slashes on;", ("http", "server")),
    "keepalive_disable": ("keepalive_disable msie6 safari;", ("http", "server", "location")),
    "keepalive_time": ("keepalive_time 30m;", ("http", "server", "location")),
    "ignore_invalid_headers": ("ignore_invalid_headers off;", ("http", "server")),
    "underscores_in_headers": ("underscores_in_headers on;", ("http", "server")),
    "log_not_found": ("log_not_found off;", ("http", "server", "location")),
    "uninitialized_variable_warn": (
        "uninitialized_variable_warn off;",
        ("http", "server", "location"),
    ),
    "server_tokens": ("server_tokens build;", ("http", "server", "location")),
    "error_log": ("error_log e.log warn;", ("http", "server", "location")),
    "autoindex_format": ("autoindex_format jsonp;", ("http", "server", "location")),
}


def placed(statement: str, where: str) -> str:
    if where == "http":
        return f"http {{\n{statement}\nserver {{ }}\n}}\n"
    if where == "server":
        return f"http {{\nserver {{\n{statement}\n}}\n}}\n"
    return f"http {{\nserver {{\nlocation / {{\n{statement}\n}}\n}}\n}}\n"


CONTEXT_LINE = {"http": 2, "server": 3, "location": 4}


@pytest.mark.parametrize("name", list(ACCEPTED_DIRECTIVES))
def test_accepted_where_nginx_accepts_it(conf, name):
    statement, contexts = ACCEPTED_DIRECTIVES[name]
    for where in ("http", "server", "location"):
        text = placed(statement, where)
        if where in contexts:
            conf.load(text)
        else:
            conf.check_error(text, CONTEXT_LINE[where], f'"{name}" directive is not allowed here')


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("name", list(ACCEPTED_DIRECTIVES))
def test_nginx_accepts_the_same_statements(tmp_path, name):
    statement, contexts = ACCEPTED_DIRECTIVES[name]
    body = placed(statement, contexts[-1]).removeprefix("http {\n").removesuffix("}\n")
    assert nginx_verdict(tmp_path, body) == (True, "")


BAD_VALUES = {
    "size": ("client_header_buffer_size 1q;", 'invalid size "1q" in "client_header_buffer_size"'),
    "count": (
        "client_body_buffer_size;",
        'invalid number of arguments in "client_body_buffer_size"',
    ),
    "file only": (
        "client_body_in_file_only yes;",
        'invalid value "yes" in "client_body_in_file_only" directive, it must be "on", "clean" '
        'or "off"',
    ),
    "flag": (
        "underscores_in_headers yes;",
        'invalid value "yes" in "underscores_in_headers" directive, it must be "on" or "off"',
    ),
    "browser": ("keepalive_disable opera;", 'invalid value "opera" in "keepalive_disable"'),
    "time": ("keepalive_time 5x;", 'invalid time "5x" in "keepalive_time"'),
    "tokens": (
        "server_tokens maybe;",
        'invalid value "maybe" in "server_tokens" directive, it must be "on" or "off"',
    ),
    "autoindex format": (
        "autoindex_format yaml;",
        'invalid value "yaml" in "autoindex_format" directive',
    ),
    "merge flag": (
        "merge_slashes maybe;",
        'invalid value "maybe" in "merge_slashes" directive, it must be "on" or "off"',
    ),
}


@pytest.mark.parametrize(("statement", "reason"), BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_bad_values_are_refused_with_file_and_line(conf, statement, reason):
    err = conf.error(placed(statement, "server"))
    assert err.line == 3
    assert err.message.startswith(reason), err.message


def test_server_tokens_build_is_on(conf):
    server = server_of(
        conf.load("http { server { server_tokens build; location /off { server_tokens off; } } }")
    )
    assert router.find_location(server, "/").server_tokens is True
    assert router.find_location(server, "/off").server_tokens is False
