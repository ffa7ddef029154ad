"""`set $name value` (nginx's rewrite module): its load errors in nginx's wording with file:line
(each checked against `nginx -t` 1.22 where nginx is installed), what nginx accepts, names
declared for the whole configuration, and what each level runs, decided at load (a level
without `set` keeps its phases; one without rewrite directives has none). The serving side:
tests/http/test_set.py."""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, nginx_verdict

from webserv import variables
from webserv.rewrite import LocationRewrite
from webserv.rewrite_if import LocationScript, ServerScript, SetArgsOp, SetOp


def wrap(body: str) -> str:
    """BODY on line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


# (text on line 4 of a location, reason): nginx's wording
ERRORS = {
    "no dollar": ("set name x;", 'invalid variable name "name"'),
    "dollar alone": ("set $ x;", 'invalid variable name "$"'),
    "no value": ("set $a;", 'invalid number of arguments in "set" directive'),
    "two values": ("set $a b c;", 'invalid number of arguments in "set" directive'),
    "no arguments": ("set;", 'invalid number of arguments in "set" directive'),
    "as a block": ("set $a b { }", 'directive "set" is not terminated by ";"'),
    "uri": ("set $uri /x;", 'the duplicate "uri" variable'),
    "host": ("set $host h;", 'the duplicate "host" variable'),
    "caseless": ("set $UrI /x;", 'the duplicate "UrI" variable'),
    "request_uri": ("set $request_uri /x;", 'the duplicate "request_uri" variable'),
    "query_string": ("set $query_string a=1;", 'the duplicate "query_string" variable'),
    "remote_addr": ("set $remote_addr 1;", 'the duplicate "remote_addr" variable'),
    "status": ("set $status 1;", 'the duplicate "status" variable'),
    "tcpinfo_rtt": ("set $tcpinfo_rtt 1;", 'the duplicate "tcpinfo_rtt" variable'),
    "http_host": ("set $http_host h;", 'the duplicate "http_host" variable'),
    "http_user_agent": ("set $http_user_agent a;", 'the duplicate "http_user_agent" variable'),
    "sent_http_location": (
        "set $sent_http_location a;",
        'the duplicate "sent_http_location" variable',
    ),
    "document_root": ("set $document_root /x;", 'the duplicate "document_root" variable'),
    "request_id": ("set $request_id 1;", 'the duplicate "request_id" variable'),
    "unknown in value": ("set $a $nosuch;", 'unknown "nosuch" variable'),
    "unknown braced": ("set $a ${nosuch}x;", 'unknown "nosuch" variable'),
}
NGINX_SAYS_NO_PLACE = {"unknown in value", "unknown braced"}  # (nginx finds them at init)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_file_and_line(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap(text), 4, reason)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_inside_if_name_their_own_line(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap("if ($arg_a) {\n" + text + "\n}"), 5, reason)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_are_nginx_s(tmp_path, case):
    text, reason = ERRORS[case]
    accepted, message = nginx_verdict(tmp_path, f"server {{ location / {{ {text} }} }}")
    assert (accepted, message) == (False, reason)


def test_not_allowed_in_http(conf):
    conf.check_error(
        "http {\n    set $a 1;\n    server {\n    }\n}\n", 2, '"set" directive is not allowed here'
    )


def test_limit_rate_is_refused_by_webserv(conf):
    # nginx sets the response's rate; webserv's limit_rate is the location's, fixed at load
    conf.check_error(
        wrap("set $limit_rate 1k;"),
        4,
        '"set $limit_rate" is not supported by webserv (use limit_rate)',
    )


# what nginx 1.22 accepts: its changeable variables ($args, $http_NAME / $arg_NAME /
# $sent_http_NAME / $cookie_NAME beyond its own few, TLS ones), and names no template can
# read back (nginx takes everything after the "$")
ACCEPTED = {
    "a name": "set $a 1;",
    "twice": "set $a 1; set $a 2;",
    "itself": "set $a ${a}x;",
    "caseless reuse": "set $A 1; return 200 $a;",
    "args": "set $args a=1;",
    "arg_": "set $arg_q 1;",
    "http_": "set $http_x_real 1;",
    "sent_http_": "set $sent_http_x 1;",
    "cookie_": "set $cookie_a 1;",
    "ssl_": "set $ssl_cipher x;",
    "dash": "set $a-b 1;",
    "braces": "set ${a} 1;",
    "digit": "set $1 x;",
    "quoted": 'set "$a" "x y";',
    "captures": "set $a $1$2x;",
    "in an if": "if ($arg_x ~ (?<w>.+)) { set $a $w; }",
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_as_nginx(conf, case):
    conf.load(f"http {{ server {{ location / {{ {ACCEPTED[case]} }} }} }}")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_nginx_accepts_them(tmp_path, case):
    assert nginx_verdict(tmp_path, f"server {{ location / {{ {ACCEPTED[case]} }} }}") == (True, "")


def test_a_set_anywhere_declares_it_everywhere(conf):
    # nginx knows every `set` name config-wide: used before its `set`, in another server,
    # in a log format written above both
    conf.load(
        """
        http {
            log_format f "$early $later";
            access_log logs/a.log f;
            server {
                add_header X-A $later;
                location / { return 200 "$early $later"; }
            }
            server {
                listen 8081;
                set $early 1;
                location / { set $later 2; }
            }
        }
        """
    )
    assert variables.set_names == {"early", "later"}


def test_a_name_no_set_declares_is_unknown(conf):
    conf.check_error(
        "http {\n    server {\n        set $a 1;\n        return 200 $b;\n    }\n}\n",
        4,
        'unknown "b" variable',
    )


def phases_of(loc):
    return tuple(type(p) for p in loc.phases or ())


def test_what_each_level_runs(conf):
    cfg = conf.load(
        """
        http {
            server {
                location /plain/ { }
                location /rw/ { rewrite ^ /x; }
                location /set/ { set $a 1; }
                location /args/ { set $args a=1; rewrite ^ /x; }
                location /outer/ {
                    set $a 1;
                    location /outer/inner/ { }
                }
            }
            server {
                listen 8081;
                set $a 1;
                location /plain/ { }
                location /ret/ { return 200 "$a"; }
                location /set/ { set $b 2; }
            }
        }
        """
    )
    first, second = cfg.servers
    locs = {loc.pattern: loc for loc in first.prefixes}
    assert locs["/plain/"].phases is None  # no rewrite directive: no phase at all
    assert phases_of(locs["/rw/"]) == (LocationRewrite,)  # no `set`: rewrite.py's phase
    assert phases_of(locs["/set/"]) == (LocationScript,)
    (op,) = locs["/set/"].phases[0].ops
    assert type(op) is SetOp and (op.key, op.value) == ("a", ("1",))
    assert [type(op) for op in locs["/args/"].phases[0].ops][0] is SetArgsOp
    (inner,) = locs["/outer/"].prefixes
    assert inner.phases is None  # a nested location does not inherit its parent's `set`
    assert first.fallback.phases is None
    locs = {loc.pattern: loc for loc in second.prefixes}
    assert phases_of(locs["/plain/"]) == (ServerScript,)
    assert phases_of(second.fallback) == (ServerScript,)
    # the location's `return` waits for the server's script (its $a is set there)
    assert phases_of(locs["/ret/"]) == (ServerScript, LocationRewrite)
    assert locs["/ret/"].phases[1].takes_return
    assert phases_of(locs["/set/"]) == (ServerScript, LocationScript)
