"""add_header, expires, etag, if_modified_since, keepalive_requests: nginx's contexts, arity,
values, defaults and inheritance, resolved at load (the serving side: tests/http/
test_headers_caching.py)."""

from __future__ import annotations

import pytest

from webserv.headers import EXPIRES_EPOCH, AddHeader, Expires


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


# (text on line 4 of a location, reason)
ERRORS = {
    "add_header one argument": (
        "add_header X;",
        'invalid number of arguments in "add_header" directive',
    ),
    "add_header four arguments": (
        "add_header X y always more;",
        'invalid number of arguments in "add_header" directive',
    ),
    "add_header bad flag": ("add_header X y sometimes;", 'invalid parameter "sometimes"'),
    "add_header bad name": (
        'add_header "X Y" z;',
        'invalid header name "X Y" in "add_header" directive',
    ),
    "add_header colon in name": (
        "add_header X: z;",
        'invalid header name "X:" in "add_header" directive',
    ),
    "add_header CR LF value": (
        'add_header X "a\r\nInjected: 1";',
        'header "X" value contains CR, LF or NUL in "add_header" directive',
    ),
    "add_header LF value": (
        'add_header X "a\nb";',
        'header "X" value contains CR, LF or NUL in "add_header" directive',
    ),
    "add_header unknown variable": ("add_header X $nope;", 'unknown "nope" variable'),
    "add_trailer bad name": (
        'add_trailer "X Y" v;',
        'invalid header name "X Y" in "add_trailer" directive',
    ),
    "add_trailer flag": ("add_trailer X v sometimes;", 'invalid parameter "sometimes"'),
    "add_trailer arity": (
        "add_trailer X;",
        'invalid number of arguments in "add_trailer" directive',
    ),
    "expires no argument": ("expires;", 'invalid number of arguments in "expires" directive'),
    "expires three arguments": (
        "expires modified 1h 2h;",
        'invalid number of arguments in "expires" directive',
    ),
    "expires bad time": ("expires soon;", '"expires" directive invalid value'),
    "expires ms": ("expires 500ms;", '"expires" directive invalid value'),
    "expires two words not modified": ("expires access 1h;", '"expires" directive invalid value'),
    "expires modified epoch": ("expires modified epoch;", '"expires" directive invalid value'),
    "expires modified daily": (
        "expires modified @10h;",
        '"expires" directive daily time cannot be used with "modified" parameter',
    ),
    "expires daily too late": (
        "expires @25h;",
        '"expires" directive daily time value must be less than 24 hours',
    ),
    "expires variable": ("expires $arg_t;", '"expires" with variables is not supported by webserv'),
    "expires duplicate": ("expires 1h;\nexpires 2h;", '"expires" directive is duplicate'),
    "etag bad": ("etag yes;", 'invalid value "yes" in "etag" directive, it must be "on" or "off"'),
    "etag arity": ("etag on off;", 'invalid number of arguments in "etag" directive'),
    "ims bad": (
        "if_modified_since after;",
        'invalid value "after" in "if_modified_since" directive',
    ),
    "ims arity": (
        "if_modified_since;",
        'invalid number of arguments in "if_modified_since" directive',
    ),
    "keepalive_requests bad": (
        "keepalive_requests many;",
        'invalid number "many" in "keepalive_requests" directive',
    ),
    "keepalive_requests negative": (
        "keepalive_requests -1;",
        'invalid number "-1" in "keepalive_requests" directive',
    ),
    "keepalive_requests arity": (
        "keepalive_requests 1 2;",
        'invalid number of arguments in "keepalive_requests" directive',
    ),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_errors_name_file_and_line(conf, case):
    text, reason = ERRORS[case]
    line = 5 if case.endswith("duplicate") else 4  # where the statement starts
    conf.check_error(wrap(text), line, reason)


@pytest.mark.parametrize(
    "name",
    ["add_header X y", "expires 1h", "etag off", "if_modified_since off", "keepalive_requests 5"],
)
def test_not_allowed_in_main_or_events(conf, name):
    conf.check_error(
        f"worker_processes 1;\n{name};\nhttp {{\n    server {{\n    }}\n}}\n",
        2,
        f'"{name.split()[0]}" directive is not allowed here',
    )
    conf.check_error(
        f"events {{\n    {name};\n}}\nhttp {{\n    server {{\n    }}\n}}\n",
        2,
        f'"{name.split()[0]}" directive is not allowed here',
    )


@pytest.mark.parametrize("where", ["http", "server", "location"])
def test_allowed_at_every_http_level(conf, where):
    body = (
        "add_header X y always;\nexpires 1h;\netag off;\nif_modified_since before;\n"
        "keepalive_requests 7;"
    )
    blocks = {
        "http": f"http {{\n{body}\n    server {{\n        location / {{\n        }}\n    }}\n}}\n",
        "server": f"http {{\n    server {{\n{body}\n        location / {{\n        }}\n    }}\n}}\n",
        "location": f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n",
    }
    (server,) = conf.load(blocks[where]).servers
    loc = server.prefixes[0]
    assert loc.etag is False
    assert loc.if_modified_since == "before"
    assert loc.keepalive_requests == 7
    assert loc.header_filter.expires == Expires("access", 3600)
    assert [h.name for h in loc.header_filter.safe] == ["X"]


def test_defaults(conf):
    (server,) = conf.load("http {\n    server {\n    }\n}\n").servers
    loc = server.fallback
    assert loc.header_filter is None  # nothing to do per response
    assert (loc.etag, loc.if_modified_since, loc.keepalive_requests) == (True, "exact", 1000)


def locations(conf, text):
    (server,) = conf.load(text).servers
    return server.fallback, {loc.pattern: loc for loc in server.prefixes}


def names(loc):
    return [h.name for h in loc.header_filter.safe] if loc.header_filter else []


def test_add_header_inner_level_forgets_all_outer_ones(conf):
    config = conf.load(
        """
        http {
            add_header H1 1;
            add_header H2 2;
            server {
                listen 8080;
                location /inherit/ { }
                location /own/ { add_header L 1; }
                location /expires/ { expires 1h; }
            }
            server {
                listen 8081;
                add_header S 1;
                location /srv/ { }
                location /own2/ { add_header L2 1 always; }
            }
        }
        """
    )
    first, second = config.servers
    locs = {loc.pattern: loc for s in config.servers for loc in s.prefixes}
    assert names(first.fallback) == ["H1", "H2"]
    assert names(locs["/inherit/"]) == ["H1", "H2"]
    assert names(locs["/own/"]) == ["L"]  # not merged
    # expires is a directive of its own: it does not reset add_header
    assert names(locs["/expires/"]) == ["H1", "H2"]
    assert locs["/expires/"].header_filter.expires == Expires("access", 3600)
    assert names(second.fallback) == ["S"]
    assert names(locs["/srv/"]) == ["S"]
    assert names(locs["/own2/"]) == ["L2"]


def test_add_header_server_level_replaces_http_level(conf):
    config = conf.load(
        """
        http {
            add_header H 1;
            server { add_header S 1; location /a/ { } location /b/ { add_header L 1; } }
        }
        """
    )
    (server,) = config.servers
    by = {loc.pattern: loc for loc in server.prefixes}
    assert names(server.fallback) == ["S"]
    assert names(by["/a/"]) == ["S"]
    assert names(by["/b/"]) == ["L"]


def test_scalar_directives_inherit_and_inner_wins(conf):
    fallback, locs = locations(
        conf,
        """
        http {
            expires 1h; etag off; if_modified_since off; keepalive_requests 10;
            server {
                expires max;
                location /a/ { }
                location /b/ { expires off; etag on; if_modified_since before; keepalive_requests 2; }
            }
        }
        """,
    )
    assert fallback.header_filter.expires == Expires("max")
    assert (fallback.etag, fallback.if_modified_since, fallback.keepalive_requests) == (
        False,
        "off",
        10,
    )
    assert locs["/a/"].header_filter.expires == Expires("max")
    assert locs["/b/"].header_filter is None  # expires off, and no add_header
    assert (locs["/b/"].etag, locs["/b/"].if_modified_since, locs["/b/"].keepalive_requests) == (
        True,
        "before",
        2,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", Expires("access", 3600)),
        ("+1h", Expires("access", 3600)),
        ("-1", Expires("access", -1)),
        ("0", Expires("access", 0)),
        ('"1d 2h"', Expires("access", 93600)),
        ("modified 10m", Expires("modified", 600)),
        ("modified -10m", Expires("modified", -600)),
        ("@15h30m", Expires("daily", 15 * 3600 + 30 * 60)),
        ("epoch", Expires("epoch")),
        ("max", Expires("max")),
        ("off", None),
    ],
)
def test_expires_values(conf, text, expected):
    fallback, _ = locations(conf, f"http {{\n    server {{\n        expires {text};\n    }}\n}}\n")
    got = fallback.header_filter.expires if fallback.header_filter else None
    assert got == expected


def test_add_header_values_are_built_at_load(conf):
    fallback, _ = locations(
        conf,
        """
        http {
            server {
                add_header X-Const "a b";
                add_header X-Var "$host$uri" always;
                add_header X-Empty "";
            }
        }
        """,
    )
    const, var, empty = fallback.header_filter.safe
    assert const == AddHeader("X-Const", "a b", False, b"X-Const: a b\r\n", None)
    assert var.line is None and callable(var.render) and var.always
    assert empty.line == b"" and empty.render is None
    assert fallback.header_filter.other == (var,)
    # not constant (a variable): nothing prebuilt for either class
    assert fallback.header_filter.safe_const is None


def test_constant_headers_are_one_prebuilt_bytes(conf):
    fallback, _ = locations(
        conf,
        """
        http { server { add_header A 1; add_header B 2 always; add_header C ""; } }
        """,
    )
    hf = fallback.header_filter
    assert hf.safe_const == b"A: 1\r\nB: 2\r\n"
    assert hf.other_const == b"B: 2\r\n"


def test_a_thousand_add_header_lines_load(conf):
    lines = "\n".join(f"add_header X-H{i} v{i};" for i in range(1000))
    fallback, _ = locations(conf, f"http {{\n server {{\n{lines}\n }}\n}}\n")
    assert len(fallback.header_filter.safe) == 1000
    assert fallback.header_filter.safe_const.count(b"\r\n") == 1000


def test_epoch_constant_text():
    assert EXPIRES_EPOCH.startswith(b"Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\n")
