"""rewrite, rewrite_log, try_files: nginx's contexts, arity, values and error wording, and
what each location runs, decided at load (the serving side: tests/http/test_rewrite.py,
tests/http/test_try_files.py and their _nginx twins)."""

from __future__ import annotations

import pytest

from webserv.rewrite import LocationRewrite, ServerRewrite, clean_path, escape_args
from webserv.try_files import TryFiles


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


# (text on line 4 of a location, reason): nginx's wording (nginx -t, 1.22) unless noted
ERRORS = {
    "rewrite one argument": ("rewrite ^/x;", 'invalid number of arguments in "rewrite" directive'),
    "rewrite four arguments": (
        "rewrite ^/x /y last extra;",
        'invalid number of arguments in "rewrite" directive',
    ),
    "rewrite no arguments": ("rewrite;", 'invalid number of arguments in "rewrite" directive'),
    "rewrite bad flag": ("rewrite ^/x /y bogus;", 'invalid parameter "bogus"'),
    "rewrite flag case": ("rewrite ^/x /y LAST;", 'invalid parameter "LAST"'),
    # nginx: pcre2_compile() failed: missing closing parenthesis in "^/(x"
    "rewrite bad regex": (
        "rewrite ^/(x /y;",
        'regex compile failed: missing ), unterminated subpattern at position 2 in "^/(x"',
    ),
    "rewrite bad repeat": (
        "rewrite *x /y;",
        'regex compile failed: nothing to repeat at position 0 in "*x"',
    ),
    "rewrite unknown variable": ("rewrite ^/x /$nosuch;", 'unknown "nosuch" variable'),
    "rewrite braced capture": ("rewrite ^/(x) /${1};", 'unknown "1" variable'),
    "rewrite as a block": ("rewrite ^/x /y { }", 'directive "rewrite" is not terminated by ";"'),
    "rewrite_log bad value": (
        "rewrite_log maybe;",
        'invalid value "maybe" in "rewrite_log" directive, it must be "on" or "off"',
    ),
    "rewrite_log two values": (
        "rewrite_log on off;",
        'invalid number of arguments in "rewrite_log" directive',
    ),
    "try_files no arguments": (
        "try_files;",
        'invalid number of arguments in "try_files" directive',
    ),
    "try_files one argument": (
        "try_files $uri;",
        'invalid number of arguments in "try_files" directive',
    ),
    "try_files bad code": ("try_files $uri =abc;", 'invalid code "=abc"'),
    "try_files code too big": ("try_files $uri =1000;", 'invalid code "=1000"'),
    "try_files empty code": ("try_files $uri =;", 'invalid code "="'),
    # nginx takes =0..=99; no status line has fewer than three digits (README differences)
    "try_files code too small": ("try_files $uri =99;", 'invalid code "=99"'),
    "try_files unknown variable": ("try_files $uri $nosuch /x;", 'unknown "nosuch" variable'),
    "try_files unknown variable in uri": (
        "try_files $uri /x?$nosuch;",
        'unknown "nosuch" variable',
    ),
    # webserv has no named locations
    "try_files named location": (
        "try_files $uri @app;",
        'named locations ("@app") are not supported by webserv',
    ),
    "return unknown variable": (
        "return 301 https://$nosuch$request_uri;",
        'unknown "nosuch" variable',
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_file_and_line(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap(text), 4, reason)


def test_a_duplicate_names_the_second_line(conf):
    conf.check_error(
        wrap("try_files $uri /x;\ntry_files $uri /y;"), 5, '"try_files" directive is duplicate'
    )


@pytest.mark.parametrize("name", ["rewrite ^ /x", "try_files $uri /x"])
def test_not_allowed_in_http_main_or_events(conf, name):
    conf.check_error(
        f"http {{\n    {name};\n    server {{\n    }}\n}}\n",
        2,
        f'"{name.split()[0]}" directive is not allowed here',
    )
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


def test_rewrite_log_is_allowed_at_every_http_level(conf):
    conf.load(
        "http {\n rewrite_log on;\n server {\n  rewrite_log off;\n"
        "  location / { rewrite_log on; }\n }\n}\n"
    )


def phases_of(loc):
    return tuple(type(p) for p in loc.phases or ())


def test_what_each_location_runs(conf):
    cfg = conf.load(
        """
        http {
            server {
                rewrite ^/old/(.*)$ /new/$1;
                try_files $uri /index.html;
                location / { }
                location /own/ { rewrite ^ /x; try_files $uri =404; }
                location /tf/ { try_files $uri $uri/ /tf/index.html; }
                location /ret/ { return 200 "x"; }
            }
            server {
                listen 8081;
                location / { }
                location /ret/ { return 200 "x"; }
                location /both/ { rewrite ^/both/a$ /b; return 404; }
            }
        }
        """
    )
    first, second = cfg.servers
    by = {loc.pattern: loc for loc in first.prefixes}
    # the server's rules run first everywhere; its try_files only where no location matches
    assert phases_of(first.fallback) == (ServerRewrite, TryFiles)
    assert phases_of(by["/"]) == (ServerRewrite,)
    assert phases_of(by["/own/"]) == (ServerRewrite, LocationRewrite, TryFiles)
    assert phases_of(by["/tf/"]) == (ServerRewrite, TryFiles)
    # a location's return waits for the server's rules: the location's rewrite phase owns it
    assert phases_of(by["/ret/"]) == (ServerRewrite, LocationRewrite)
    assert by["/ret/"].phases[1].takes_return and not by["/ret/"].phases[0].takes_return
    # nothing at all where nothing is used: the hot path pays one `is None`
    by2 = {loc.pattern: loc for loc in second.prefixes}
    assert second.fallback.phases is None and by2["/"].phases is None
    assert by2["/ret/"].phases is None
    assert phases_of(by2["/both/"]) == (LocationRewrite,) and by2["/both/"].phases[0].takes_return


def test_server_return_is_owned_by_the_server_rules(conf):
    cfg = conf.load(
        "http {\n server {\n  rewrite ^/go$ /a last;\n  return 403;\n  location /a { }\n }\n}\n"
    )
    (server,) = cfg.servers
    loc = server.prefixes[0]
    assert loc.return_ is not None and loc.phases[0].takes_return
    assert server.fallback.phases[0].takes_return


def test_rewrite_flags_and_redirects_are_decided_at_load(conf):
    cfg = conf.load(
        wrap(
            "rewrite ^/a /b;\nrewrite ^/a /b last;\nrewrite ^/a /b break;\n"
            "rewrite ^/a /b redirect;\nrewrite ^/a /b permanent;\n"
            "rewrite ^/a http://x/;\nrewrite ^/a https://x/ permanent;\n"
            "rewrite ^/a $scheme://x/;\nrewrite ^/a /b?;\nrewrite ^/a /b?c=d?;"
        )
    )
    rules = cfg.servers[0].prefixes[0].phases[0].rules
    assert [(r.flag, r.redirect, r.add_args) for r in rules] == [
        ("", 0, True),
        ("last", 0, True),
        ("break", 0, True),
        ("redirect", 302, True),
        ("permanent", 301, True),
        ("", 302, True),
        ("permanent", 301, True),
        ("", 302, True),
        ("", 0, False),
        ("", 0, False),
    ]
    assert rules[-1].parts == ("/b?c=d",)


def test_pcre_named_groups_are_taken(conf):
    cfg = conf.load(wrap('rewrite "^/(?<name>[a-z]+)$" /u/$name;'))
    rule = cfg.servers[0].prefixes[0].phases[0].rules[0]
    assert rule.regex.groupindex == {"name": 1}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/a/b", "/a/b"),
        ("a/b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/./b/", "/a/b/"),
        ("//a//b", "/a/b"),
        ("/a/..", "/"),
        ("/a/b/..", "/a/"),
        ("/.", "/"),
        ("", "/"),
        ("/%2e%2e/x", "/%2e%2e/x"),  # not decoded: a file really named so
        ("/a\x00b", None),
    ],
)
def test_clean_path(raw, clean):
    assert clean_path(raw) == clean


def test_escape_args_is_nginx_args_set():
    assert escape_args("a b#c%d&e+f;g?h") == "a%20b%23c%25d%26e%2Bf%3Bg%3Fh"
    assert escape_args("plain-._~/=") == "plain-._~/="
    assert escape_args("é") == "%C3%A9"
