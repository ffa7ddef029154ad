"""gzip, gzip_* and gzip_static / brotli_static at load: nginx's contexts, arity, values and
wording (checked against `nginx -t` 1.22), defaults and inheritance. Serving:
tests/http/test_gzip.py, tests/http/test_gzip_static.py."""

from __future__ import annotations

import pytest

DIRECTIVES = [
    "gzip on",
    "gzip_types text/css",
    "gzip_min_length 100",
    "gzip_comp_level 5",
    "gzip_vary on",
    "gzip_proxied any",
    "gzip_http_version 1.0",
    "gzip_disable msie6",
    "gzip_buffers 16 8k",
    "gzip_static on",
    "brotli_static always",
]


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


def arity(name: str) -> str:
    return f'invalid number of arguments in "{name}" directive'


# (text on line 4 of a location, nginx's reason)
ERRORS = {
    "gzip bad": (
        "gzip maybe;",
        'invalid value "maybe" in "gzip" directive, it must be "on" or "off"',
    ),
    "gzip none": ("gzip;", arity("gzip")),
    "gzip two": ("gzip on off;", arity("gzip")),
    "gzip_static bad": ("gzip_static maybe;", 'invalid value "maybe"'),
    "gzip_static two": ("gzip_static on off;", arity("gzip_static")),
    "gzip_static none": ("gzip_static;", arity("gzip_static")),
    "brotli_static bad": ("brotli_static yes;", 'invalid value "yes"'),
    "brotli_static two": ("brotli_static on always;", arity("brotli_static")),
    "level zero": ("gzip_comp_level 0;", "value must be between 1 and 9"),
    "level ten": ("gzip_comp_level 10;", "value must be between 1 and 9"),
    "level word": ("gzip_comp_level x;", '"gzip_comp_level" directive invalid number'),
    "level negative": ("gzip_comp_level -1;", '"gzip_comp_level" directive invalid number'),
    "level none": ("gzip_comp_level;", arity("gzip_comp_level")),
    "min_length word": ("gzip_min_length x;", '"gzip_min_length" directive invalid value'),
    "min_length two": ("gzip_min_length 1 2;", arity("gzip_min_length")),
    "http_version 2.0": ("gzip_http_version 2.0;", 'invalid value "2.0"'),
    "http_version 1": ("gzip_http_version 1;", 'invalid value "1"'),
    "proxied bogus": ("gzip_proxied bogus;", 'invalid value "bogus"'),
    "proxied second bogus": ("gzip_proxied expired nope;", 'invalid value "nope"'),
    "proxied none": ("gzip_proxied;", arity("gzip_proxied")),
    "types none": ("gzip_types;", arity("gzip_types")),
    "vary none": ("gzip_vary;", arity("gzip_vary")),
    "vary bad": (
        "gzip_vary yes;",
        'invalid value "yes" in "gzip_vary" directive, it must be "on" or "off"',
    ),
    "buffers one": ("gzip_buffers 16;", arity("gzip_buffers")),
    "buffers word": ("gzip_buffers x 8k;", '"gzip_buffers" directive invalid value'),
    "buffers size": ("gzip_buffers 16 big;", '"gzip_buffers" directive invalid value'),
    "disable none": ("gzip_disable;", arity("gzip_disable")),
    "gzip duplicate": ("gzip on;\ngzip on;", '"gzip" directive is duplicate'),
    "gzip_static duplicate": (
        "gzip_static on;\ngzip_static off;",
        '"gzip_static" directive is duplicate',
    ),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_errors_name_file_and_line(conf, case):
    text, reason = ERRORS[case]
    line = 5 if case.endswith("duplicate") else 4
    conf.check_error(wrap(text), line, reason)


def test_bad_disable_regex_names_file_and_line(conf):
    path = conf.write("webserv.conf", wrap('gzip_disable "(";'))
    from webserv.config import ConfigError, load

    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert (info.value.line, info.value.message.startswith("regex compile failed")) == (4, True)


@pytest.mark.parametrize("name", DIRECTIVES, ids=[d.split()[0] for d in DIRECTIVES])
def test_not_allowed_in_main_or_events(conf, name):
    word = name.split()[0]
    conf.check_error(
        f"worker_processes 1;\n{name};\nhttp {{\n    server {{\n    }}\n}}\n",
        2,
        f'"{word}" directive is not allowed here',
    )
    conf.check_error(
        f"events {{\n    {name};\n}}\nhttp {{\n    server {{\n    }}\n}}\n",
        2,
        f'"{word}" directive is not allowed here',
    )


@pytest.mark.parametrize("where", ["http", "server", "location"])
def test_allowed_at_every_http_level(conf, where):
    body = ";\n".join(DIRECTIVES) + ";"
    blocks = {
        "http": f"http {{\n{body}\n    server {{\n        location / {{\n        }}\n    }}\n}}\n",
        "server": f"http {{\n    server {{\n{body}\n        location / {{\n        }}\n    }}\n}}\n",
        "location": f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n",
    }
    (server,) = conf.load(blocks[where]).servers
    c = server.prefixes[0].compress
    assert c.gzip is True
    assert c.types == frozenset({"text/css", "text/html"})  # text/html always
    assert (c.min_length, c.level, c.vary, c.http_minor) == (100, 5, True, 0)
    assert c.proxied == frozenset({"any"})
    assert c.msie6 is True and c.disable == ()
    assert c.variants == (("br", ".br", "always"), ("gzip", ".gz", "on"))


def test_defaults_cost_nothing(conf):
    (server,) = conf.load(
        "http {\n    server {\n        location / {\n        }\n    }\n}\n"
    ).servers
    assert server.fallback.compress is None
    assert server.prefixes[0].compress is None  # the writer and static.py skip it


def test_default_values(conf):
    (server,) = conf.load("http {\n    gzip on;\n    server {\n    }\n}\n").servers
    c = server.fallback.compress
    assert c.types == frozenset({"text/html"}) and not c.any_type
    assert (c.min_length, c.level, c.vary, c.http_minor) == (20, 1, False, 1)
    assert c.proxied == frozenset() and c.disable == () and not c.msie6
    assert c.static is False and c.variants == ()


def test_inheritance_and_inner_wins(conf):
    (server,) = conf.load(
        """
        http {
            gzip on;
            gzip_comp_level 6;
            gzip_types text/css application/json;
            server {
                location /off/ { gzip off; }
                location /inherit/ { }
                location /own/ { gzip_comp_level 2; gzip_types *; }
                location /static/ { gzip off; gzip_static on; }
            }
        }
        """
    ).servers
    by = {loc.pattern: loc for loc in server.prefixes}
    assert by["/off/"].compress is None
    assert by["/inherit/"].compress.level == 6
    assert by["/inherit/"].compress.types == frozenset(
        {"text/css", "application/json", "text/html"}
    )
    assert by["/own/"].compress.level == 2 and by["/own/"].compress.any_type
    assert by["/static/"].compress.gzip is False and by["/static/"].compress.static


def test_disable_patterns_are_caseless(conf):
    (server,) = conf.load(
        'http {\n    gzip on;\n    gzip_disable "curl/7" msie6;\n    server {\n    }\n}\n'
    ).servers
    c = server.fallback.compress
    assert c.msie6 and c.disable[0].search("Mozilla CURL/7.88")


def test_proxied_off_with_others_is_the_others(conf):
    (server,) = conf.load(
        "http {\n    gzip on;\n    gzip_proxied off any;\n    server {\n    }\n}\n"
    ).servers
    assert server.fallback.compress.proxied == frozenset({"any"})  # nginx: "off any" is any
