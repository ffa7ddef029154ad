"""`if` and `break`: nginx's condition syntax and wording (ngx_http_rewrite_if_condition,
nginx -t 1.22), file:line of each error, what webserv refuses inside `if`, and what each
level runs, decided at load (the serving side: tests/http/test_rewrite_if.py)."""

from __future__ import annotations

import pytest

from webserv.rewrite import LocationRewrite, ServerRewrite
from webserv.rewrite_if import Compare, FileTest, LocationScript, RegexTest, ServerScript, VarTest


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


# (text on line 4 of a location, reason): nginx's wording unless noted
ERRORS = {
    "no parenthesis": ("if $a { }", 'invalid condition "$a"'),
    "no closing parenthesis": ("if ($a { }", 'invalid condition "$a"'),
    "closing only": ("if $a) { }", 'invalid condition "$a)"'),
    "empty": ("if () { }", 'invalid condition ")"'),
    "empty spaced": ("if ( ) { }", 'invalid condition ")"'),
    "not a variable": ("if (abc) { }", 'invalid condition "abc"'),
    "dollar alone": ("if ($) { }", 'invalid condition "$"'),
    "two words": ("if ($a b) { }", 'invalid condition "$a"'),
    "four words": ("if ($a = b c) { }", 'invalid condition "$a"'),
    "bad operator": ("if ($a == b) { }", 'unexpected "==" in condition'),
    "bad operator tilde": ("if ($a ~~ b) { }", 'unexpected "~~" in condition'),
    "bad file operator": ("if (-z /tmp) { }", 'invalid condition "-z"'),
    "bad negated file operator": ("if (!-z /tmp) { }", 'invalid condition "!-z"'),
    "file operator without path": ("if (-f) { }", 'invalid condition "-f"'),
    "file operator two paths": ("if (-f /a /b) { }", 'invalid condition "-f"'),
    "unknown variable": ("if ($nosuch) { }", 'unknown "nosuch" variable'),
    "unknown variable compared": ("if ($uri = $nosuch) { }", 'unknown "nosuch" variable'),
    "unknown variable in path": ("if (-f /x/$nosuch) { }", 'unknown "nosuch" variable'),
    # nginx: pcre2_compile() failed: missing closing parenthesis in "(x"
    "bad regex": (
        "if ($uri ~ (x) { }",
        'regex compile failed: missing ), unterminated subpattern at position 0 in "(x"',
    ),
    "no block": ("if ($a);", 'directive "if" has no opening "{"'),
    "no arguments": ("if { }", 'invalid number of arguments in "if" directive'),
    "break with an argument": ("break now;", 'invalid number of arguments in "break" directive'),
    "break as a block": ("break { }", 'directive "break" is not terminated by ";"'),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_file_and_line(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap(text), 4, reason)


# inside the block: the error names the inner line (line 5)
INNER = {
    "webserv refuses add_header": (
        'add_header X-A "1";',
        '"add_header" is not supported inside "if" by webserv',
    ),
    "webserv refuses root": ("root /tmp;", '"root" is not supported inside "if" by webserv'),
    "webserv refuses error_page": (
        "error_page 404 /x;",
        '"error_page" is not supported inside "if" by webserv',
    ),
    "unknown directive": ("frobnicate on;", 'unknown directive "frobnicate"'),
    "not allowed": ("worker_processes 2;", '"worker_processes" directive is not allowed here'),
    "location inside if": ("location /x { }", '"location" is not supported inside "if" by webserv'),
    "bad rewrite flag": ("rewrite ^ /x bogus;", 'invalid parameter "bogus"'),
    "rewrite arity": ("rewrite ^;", 'invalid number of arguments in "rewrite" directive'),
    "bad return code": ("return abc;", 'invalid return code "abc"'),
    "return arity": ("return 200 a b;", 'invalid number of arguments in "return" directive'),
    "return unknown variable": ("return 200 $nosuch;", 'unknown "nosuch" variable'),
    # nginx: no `if` inside `if`
    "nested if": ("if ($arg_b) { }", '"if" directive is not allowed here'),
    "rewrite as a block": ("rewrite ^ /x { }", 'directive "rewrite" is not terminated by ";"'),
}


@pytest.mark.parametrize("case", sorted(INNER))
def test_inner_errors_name_their_own_line(conf, case):
    text, reason = INNER[case]
    conf.check_error(wrap("if ($arg_a) {\n" + text + "\n}"), 5, reason)


def test_inner_error_names_its_line(conf):
    conf.check_error(
        wrap("if ($arg_a) {\n  return 204;\n  break;\n  root /x;\n}"),
        7,
        '"root" is not supported inside "if" by webserv',
    )


def test_not_allowed_in_http(conf):
    conf.check_error(
        "http {\n    if ($a) { }\n    server {\n    }\n}\n", 2, '"if" directive is not allowed here'
    )
    conf.check_error(
        "http {\n    break;\n    server {\n    }\n}\n", 2, '"break" directive is not allowed here'
    )


def only(cfg, path="/"):
    server = cfg.servers[0]
    return server, {loc.pattern: loc for loc in server.prefixes}


def test_conditions_parsed_as_nginx(conf):
    cfg = conf.load(
        """
        http {
            server {
                location /a { if ($arg_c) { } }
                location /b { if ( $arg_c ) { } }
                location /c { if ($arg_c = "x y") { } }
                location /d { if ($arg_c !~* "^a{2}$") { } }
                location /e { if (!-x /bin/$arg_c) { } }
                location /f { if ($arg_c="x") { } }
            }
        }
        """
    )
    _, locs = only(cfg)
    conds = {p: locs[p].phases[0].ops[0].condition for p in ("/a", "/b", "/c", "/d", "/e")}
    assert isinstance(conds["/a"], VarTest) and isinstance(conds["/b"], VarTest)
    assert isinstance(conds["/c"], Compare) and conds["/c"].other == ("x y",)
    assert isinstance(conds["/d"], RegexTest) and conds["/d"].negate
    assert conds["/d"].regex.pattern == "^a{2}$" and conds["/d"].regex.flags & 2  # IGNORECASE
    assert isinstance(conds["/e"], FileTest) and (conds["/e"].kind, conds["/e"].negate) == (
        "x",
        True,
    )
    # `$arg_c="x"` is one word: a variable named `arg_c="x"` (nginx: an arg_ variable too)
    assert isinstance(locs["/f"].phases[0].ops[0].condition, VarTest)


def phases_of(loc):
    return tuple(type(p) for p in loc.phases or ())


def test_what_each_level_runs(conf):
    cfg = conf.load(
        """
        http {
            server {
                location /plain/ { }
                location /rw/ { rewrite ^ /x; }
                location /if/ { if ($arg_a) { return 204; } }
                location /brk/ { rewrite ^ /x; break; }
                location /outer/ {
                    if ($arg_a) { return 204; }
                    location /outer/inner/ { }
                }
            }
            server {
                listen 8081;
                if ($arg_a) { return 204; }
                return 403;
                location /plain/ { }
                location /ret/ { return 200 "x"; }
                location /if/ { if ($arg_b) { return 204; } }
            }
            server {
                listen 8082;
                if ($arg_a) { rewrite ^ /x; }
                location /ret/ { return 200 "x"; }
            }
        }
        """
    )
    first, second, third = cfg.servers
    locs = {loc.pattern: loc for loc in first.prefixes}
    assert locs["/plain/"].phases is None
    assert phases_of(locs["/rw/"]) == (LocationRewrite,)
    assert phases_of(locs["/if/"]) == (LocationScript,)
    assert phases_of(locs["/brk/"]) == (LocationScript,)
    assert phases_of(locs["/outer/"]) == (LocationScript,)
    (inner,) = locs["/outer/"].prefixes
    assert inner.pattern == "/outer/inner/"
    assert inner.phases is None  # a nested location does not inherit its parent's `if`
    locs = {loc.pattern: loc for loc in second.prefixes}
    assert phases_of(locs["/plain/"]) == (ServerScript,)
    assert locs["/plain/"].phases[0].takes_return
    # the server's `return` wins over a location's (nginx: it runs before any location)
    assert phases_of(locs["/ret/"]) == (ServerScript,)
    assert phases_of(locs["/if/"]) == (ServerScript, LocationScript)
    assert phases_of(second.fallback) == (ServerScript,)
    assert ServerRewrite not in phases_of(second.fallback)
    # a location's own return waits for the server's script: owned by a location phase
    (ret,) = third.prefixes
    assert phases_of(ret) == (ServerScript, LocationRewrite)
    assert ret.phases[1].takes_return and not ret.phases[0].takes_return
