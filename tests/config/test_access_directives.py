"""allow, deny, satisfy, auth_basic, auth_basic_user_file: nginx's contexts, arity, values and
inheritance, compiled at load into the ACCESS phase (serving: tests/http/test_access.py and
tests/http/test_auth_basic.py)."""

from __future__ import annotations

import pytest

from webserv.access import AccessPhase, address_key
from webserv.config.directives_access import compile_rules


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


ERRORS = {
    "allow no argument": ("allow;", 'invalid number of arguments in "allow" directive'),
    "allow two arguments": (
        "allow 10.0.0.1 10.0.0.2;",
        'invalid number of arguments in "allow" directive',
    ),
    "deny no argument": ("deny;", 'invalid number of arguments in "deny" directive'),
    "allow a name": ("allow localhost;", 'invalid parameter "localhost"'),
    "allow a bad address": ("allow 10.0.0.256;", 'invalid parameter "10.0.0.256"'),
    "allow prefix too long": ("allow 10.0.0.0/33;", 'invalid parameter "10.0.0.0/33"'),
    "deny v6 prefix too long": ("deny ::1/129;", 'invalid parameter "::1/129"'),
    "deny prefix not a number": ("deny 10.0.0.0/x;", 'invalid parameter "10.0.0.0/x"'),
    "deny netmask form": ("deny 10.0.0.0/255.0.0.0;", 'invalid parameter "10.0.0.0/255.0.0.0"'),
    "deny empty prefix": ("deny 10.0.0.0/;", 'invalid parameter "10.0.0.0/"'),
    "deny unix with a path": ("deny unix:/tmp/s;", 'invalid parameter "unix:/tmp/s"'),
    "satisfy bad value": (
        "satisfy some;",
        'invalid value "some" in "satisfy" directive, it must be "all" or "any"',
    ),
    "satisfy two arguments": (
        "satisfy all any;",
        'invalid number of arguments in "satisfy" directive',
    ),
    "auth_basic no argument": (
        "auth_basic;",
        'invalid number of arguments in "auth_basic" directive',
    ),
    "auth_basic two arguments": (
        "auth_basic a b;",
        'invalid number of arguments in "auth_basic" directive',
    ),
    "auth_basic variable": (
        "auth_basic $host;",
        '"auth_basic" with variables is not supported by webserv',
    ),
    "auth_basic quote in realm": (
        "auth_basic 'a\"b';",
        'invalid realm in "auth_basic" directive (CR, LF, NUL or a quote)',
    ),
    "auth_basic newline in realm": (
        'auth_basic "a\nb";',
        'invalid realm in "auth_basic" directive (CR, LF, NUL or a quote)',
    ),
    "auth_basic_user_file none": (
        "auth_basic_user_file;",
        'invalid number of arguments in "auth_basic_user_file" directive',
    ),
    "auth_basic_user_file unknown variable": (
        "auth_basic_user_file $nonesuch.htpasswd;",
        'unknown "nonesuch" variable',
    ),
    "auth_basic duplicate": (
        "auth_basic a; auth_basic b;",
        '"auth_basic" directive is duplicate',
    ),
    "satisfy duplicate": ("satisfy any; satisfy all;", '"satisfy" directive is duplicate'),
    "auth_delay bad time": ("auth_delay soon;", 'invalid time "soon" in "auth_delay" directive'),
    "auth_delay arity": (
        "auth_delay 1s 2s;",
        'invalid number of arguments in "auth_delay" directive',
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_config_errors(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap(text), 4, reason)


@pytest.mark.parametrize("name", ["allow all", "deny all", "satisfy any", "auth_basic x"])
def test_not_allowed_in_main_or_events(conf, name):
    conf.check_error(
        f"{name};\nhttp {{ server {{ }} }}\n",
        1,
        f'"{name.split()[0]}" directive is not allowed here',
    )
    conf.check_error(
        f"events {{\n  {name};\n}}\nhttp {{ server {{ }} }}\n",
        2,
        f'"{name.split()[0]}" directive is not allowed here',
    )


def phase(loc) -> AccessPhase | None:
    found = [p for p in loc.phases or () if isinstance(p, AccessPhase)]
    assert len(found) <= 1
    return found[0] if found else None


def locations(cfg):
    server = cfg.servers[0]
    return {loc.pattern: loc for loc in server.prefixes} | {"server": server.fallback}


def decide(loc, address):
    return phase(loc).rules.decide(address)


def test_no_rules_no_phase(conf):
    cfg = conf.load("http { server { location / { } location /a/ { auth_basic off; } } }")
    for loc in locations(cfg).values():
        assert phase(loc) is None
    # a realm without a user file asks nothing (nginx: the handler declines)
    cfg = conf.load("http { server { location / { auth_basic on; } } }")
    assert phase(locations(cfg)["/"]) is None


def test_inner_level_with_its_own_lines_replaces_the_outer_list(conf):
    cfg = conf.load(
        """
        http {
            deny 10.0.0.0/8;
            allow 127.0.0.1;
            server {
                location /inherits/ { }
                location /own/ { deny 127.0.0.1; }
                location /own_allow/ { allow 192.0.2.1; }
            }
        }
        """
    )
    locs = locations(cfg)
    assert decide(locs["/inherits/"], "10.1.2.3") is False
    assert decide(locs["/inherits/"], "127.0.0.1") is True
    assert decide(locs["/inherits/"], "192.0.2.1") is None
    # `deny 127.0.0.1` alone: http's allow and deny are both gone
    assert decide(locs["/own/"], "127.0.0.1") is False
    assert decide(locs["/own/"], "10.1.2.3") is None
    # `allow` alone replaces http's `deny` too (one list, as nginx)
    assert decide(locs["/own_allow/"], "10.1.2.3") is None
    assert decide(locs["/own_allow/"], "192.0.2.1") is True


def test_server_level_replaces_http_and_later_http_lines_count(conf):
    cfg = conf.load(
        """
        http {
            server { allow 127.0.0.1; location / { } }
            deny all;
        }
        """
    )
    loc = locations(cfg)["/"]
    assert decide(loc, "127.0.0.1") is True
    assert decide(loc, "10.0.0.1") is None


def test_first_match_wins_in_config_order_across_allow_and_deny(conf):
    cfg = conf.load(
        "http { server { location / {\n"
        "deny 192.0.2.1; allow 192.0.2.0/24; deny 192.0.2.128/25; deny all;\n"
        "} } }"
    )
    loc = locations(cfg)["/"]
    assert decide(loc, "192.0.2.1") is False
    assert decide(loc, "192.0.2.2") is True
    assert decide(loc, "192.0.2.200") is True  # the /24 came first
    assert decide(loc, "198.51.100.1") is False
    assert decide(loc, "::1") is False  # `all` is in every family's list
    assert decide(loc, "-") is False  # a unix-domain peer too


def test_families_and_mapped_addresses(conf):
    cfg = conf.load(
        "http { server {\n"
        "location /v4/ { deny 127.0.0.0/8; }\n"
        "location /v6/ { deny ::1; deny 2001:db8::/32; }\n"
        "location /mapped_v6_rule/ { deny ::ffff:127.0.0.1; }\n"
        "location /unix/ { deny unix:; }\n"
        "location /zero/ { allow 0.0.0.0/0; deny ::/0; }\n"
        "} }"
    )
    locs = locations(cfg)
    assert decide(locs["/v4/"], "127.0.0.2") is False
    assert decide(locs["/v4/"], "::ffff:127.0.0.2") is False  # mapped: the IPv4 rules
    assert decide(locs["/v4/"], "::1") is None
    assert decide(locs["/v6/"], "::1") is False
    assert decide(locs["/v6/"], "2001:db8:ffff::7") is False
    assert decide(locs["/v6/"], "2001:db9::1") is None
    assert decide(locs["/v6/"], "127.0.0.1") is None
    # no IPv4 rules: a mapped client is an IPv6 one (nginx's rule)
    assert decide(locs["/mapped_v6_rule/"], "::ffff:127.0.0.1") is False
    assert decide(locs["/mapped_v6_rule/"], "127.0.0.1") is None
    assert decide(locs["/unix/"], "-") is False
    assert decide(locs["/unix/"], "127.0.0.1") is None
    assert decide(locs["/zero/"], "203.0.113.9") is True
    assert decide(locs["/zero/"], "2001:db8::1") is False


def test_low_bits_are_masked_with_a_warning(conf):
    cfg = conf.load("http { server { location / {\ndeny 10.1.2.3/8;\n} } }")
    assert decide(locations(cfg)["/"], "10.200.0.1") is False
    assert any("low address bits of 10.1.2.3/8 are meaningless" in w for w in cfg.warnings)


def test_auth_settings_inherit_separately_and_off_cancels(conf):
    conf.write("users", "alice:{PLAIN}pw\n")
    cfg = conf.load(
        """
        http {
            auth_basic_user_file users;
            server {
                auth_basic "Outer";
                location /in/ { }
                location /realm/ { auth_basic "Inner"; }
                location /off/ { auth_basic off; }
                location /any/ { satisfy any; allow 127.0.0.1; }
            }
        }
        """
    )
    locs = locations(cfg)
    assert phase(locs["/in/"]).auth.realm == "Outer"
    assert phase(locs["/in/"]).auth.file.path == str(conf.path / "users")
    assert phase(locs["/realm/"]).auth.realm == "Inner"
    assert phase(locs["/off/"]) is None
    assert phase(locs["/in/"]).any is False and phase(locs["/any/"]).any is True
    # one UserFile per path and config: one look a second however many locations use it
    assert phase(locs["/in/"]).auth.file is phase(locs["/realm/"]).auth.file


def test_user_file_is_relative_to_the_config_folder(conf):
    conf.write("sub/users", "a:{PLAIN}b\n")
    cfg = conf.load(
        "http { server { location / { auth_basic x; auth_basic_user_file users; } } }",
        name="sub/webserv.conf",
    )
    file = phase(locations(cfg)["/"]).auth.file
    assert file.path == str(conf.path / "sub" / "users") and file.error is None


def test_missing_user_file_loads_and_is_an_error_per_request(conf):
    cfg = conf.load("http { server { location / { auth_basic x; auth_basic_user_file nope; } } }")
    file = phase(locations(cfg)["/"]).auth.file
    assert file.error.startswith(f'open() "{conf.path / "nope"}" failed (2: ')


def test_address_key():
    assert address_key("127.0.0.1") == (4, 0x7F000001)
    assert address_key("::1") == (6, 1)
    assert address_key("::ffff:10.0.0.1") == (6, (0xFFFF << 32) | 0x0A000001)
    assert address_key("-") == (0, 0)
    assert address_key("fe80::1%eth0") == (6, (0xFE80 << 112) | 1)


def test_compile_rules_empty_is_none():
    assert compile_rules([]) is None


def test_reference_lists_the_directives():
    from webserv.config.table import DIRECTIVES

    for name in ("allow", "deny", "satisfy", "auth_basic", "auth_basic_user_file"):
        row = DIRECTIVES[name]
        assert row.doc and row.syntax.startswith(name)
