"""limit_req_zone, limit_req, limit_conn_zone, limit_conn, their _status/_log_level/_dry_run,
limit_rate, limit_rate_after: nginx's contexts, arity, values and wording, and inheritance,
resolved at load (the serving side: tests/http/test_limit_*.py). Each refused config is also
given to nginx -t where nginx is installed: the same reason, word for word."""

from __future__ import annotations

import re
import subprocess

import pytest
from conformance.nginx import NGINX

from webserv import limits

ZONE = "limit_req_zone $binary_remote_addr zone=one:1m rate=10r/s;"
CZONE = "limit_conn_zone $binary_remote_addr zone=c:1m;"


def config(http: str = "", location: str = "") -> str:
    """HTTP on line 2, LOCATION on line 5."""
    return (
        f"http {{\n    {http}\n    server {{\n        location / {{\n            {location}\n"
        "        }\n    }\n}\n"
    )


# id: (http-level text on line 2, location text on line 5, the line, nginx's reason)
ERRORS = {
    "zone without size": (
        "limit_req_zone $binary_remote_addr zone=one rate=1r/s;", "", 2,
        'invalid zone size "zone=one"',
    ),
    "zone bad size": (
        "limit_req_zone $binary_remote_addr zone=one:abc rate=1r/s;", "", 2,
        'invalid zone size "zone=one:abc"',
    ),
    "zone too small": (
        "limit_req_zone $binary_remote_addr zone=one:10k rate=1r/s;", "", 2,
        'zone "zone=one:10k" is too small',
    ),
    "zone missing": (
        "limit_req_zone $binary_remote_addr rate=1r/s foo=1;", "", 2, 'invalid parameter "foo=1"'
    ),
    "zone parameter missing": (
        "limit_req_zone $binary_remote_addr rate=1r/s rate=2r/s;", "", 2,
        '"limit_req_zone" must have "zone" parameter',
    ),
    "rate zero": (
        "limit_req_zone $binary_remote_addr zone=one:1m rate=0r/s;", "", 2,
        'invalid rate "rate=0r/s"',
    ),
    "rate words": (
        "limit_req_zone $binary_remote_addr zone=one:1m rate=abc;", "", 2, 'invalid rate "rate=abc"'
    ),
    "rate per hour": (
        "limit_req_zone $binary_remote_addr zone=one:1m rate=5r/h;", "", 2,
        'invalid rate "rate=5r/h"',
    ),
    "req zone two arguments": (
        "limit_req_zone $binary_remote_addr zone=one:1m;", "", 2,
        'invalid number of arguments in "limit_req_zone" directive',
    ),
    "unknown variable in key": (
        "limit_req_zone $nosuch zone=one:1m rate=1r/s;", "", 2, 'unknown "nosuch" variable'
    ),
    "zone bound twice": (
        ZONE + " limit_req_zone $remote_addr zone=one:1m rate=1r/s;", "", 2,
        'limit_req_zone "one" is already bound to key "$binary_remote_addr"',
    ),
    "zone sizes conflict": (
        ZONE + " limit_req_zone $remote_addr zone=one:2m rate=1r/s;", "", 2,
        'the size 2097152 of shared memory zone "one" conflicts with already declared size '
        "1048576",
    ),
    "zone for two uses": (
        ZONE + " limit_conn_zone $remote_addr zone=one:1m;", "", 2,
        'the shared memory zone "one" is already declared for a different use',
    ),
    "limit_req unknown zone": (ZONE, "limit_req zone=two;", 5, 'zero size shared memory zone "two"'),
    "limit_req burst zero": (ZONE, "limit_req zone=one burst=0;", 5, 'invalid burst value "burst=0"'),
    "limit_req burst words": (
        ZONE, "limit_req zone=one burst=a;", 5, 'invalid burst value "burst=a"'
    ),
    "limit_req delay zero": (
        ZONE, "limit_req zone=one delay=0;", 5, 'invalid delay value "delay=0"'
    ),
    "limit_req bad parameter": (ZONE, "limit_req zone=one fast;", 5, 'invalid parameter "fast"'),
    "limit_req without zone": (ZONE, "limit_req burst=5;", 5, '"limit_req" must have "zone" parameter'),
    "limit_req twice": (
        ZONE, "limit_req zone=one; limit_req zone=one burst=2;", 5,
        '"limit_req" directive is duplicate',
    ),
    "limit_req on a conn zone": (
        CZONE, "limit_req zone=c;", 5,
        'the shared memory zone "c" is already declared for a different use',
    ),
    "limit_req no argument": ("", "limit_req;", 5, 'invalid number of arguments in "limit_req" directive'),
    "limit_req_zone in location": (
        "", ZONE, 5, '"limit_req_zone" directive is not allowed here'
    ),
    "limit_req_status too low": ("", "limit_req_status 399;", 5, "value must be between 400 and 599"),
    "limit_req_status too high": ("", "limit_req_status 600;", 5, "value must be between 400 and 599"),
    "limit_req_status words": (
        "", "limit_req_status abc;", 5, '"limit_req_status" directive invalid number'
    ),
    "limit_req_log_level debug": ("", "limit_req_log_level debug;", 5, 'invalid value "debug"'),
    "limit_req_dry_run maybe": (
        "", "limit_req_dry_run maybe;", 5,
        'invalid value "maybe" in "limit_req_dry_run" directive, it must be "on" or "off"',
    ),
    "conn zone without zone": (
        "limit_conn_zone $binary_remote_addr foo;", "", 2, 'invalid parameter "foo"'
    ),
    "conn zone one argument": (
        "limit_conn_zone $binary_remote_addr;", "", 2,
        'invalid number of arguments in "limit_conn_zone" directive',
    ),
    "conn zone too small": (
        "limit_conn_zone $binary_remote_addr zone=c:1k;", "", 2, 'zone "zone=c:1k" is too small'
    ),
    "limit_conn zero": (CZONE, "limit_conn c 0;", 5, 'invalid number of connections "0"'),
    "limit_conn words": (CZONE, "limit_conn c x;", 5, 'invalid number of connections "x"'),
    "limit_conn too many": (CZONE, "limit_conn c 65536;", 5, "connection limit must be less 65536"),
    "limit_conn twice": (CZONE, "limit_conn c 1; limit_conn c 2;", 5, '"limit_conn" directive is duplicate'),
    "limit_conn unknown zone": ("", "limit_conn c 1;", 5, 'zero size shared memory zone "c"'),
    "limit_conn one argument": (CZONE, "limit_conn c;", 5, 'invalid number of arguments in "limit_conn" directive'),
    "limit_conn_status": ("", "limit_conn_status 200;", 5, "value must be between 400 and 599"),
    "limit_conn_log_level": ("", "limit_conn_log_level crit;", 5, 'invalid value "crit"'),
    "limit_rate words": ("", "limit_rate fast;", 5, '"limit_rate" directive invalid value'),
    "limit_rate negative": ("", "limit_rate -1;", 5, '"limit_rate" directive invalid value'),
    "limit_rate_after words": ("", "limit_rate_after x;", 5, '"limit_rate_after" directive invalid value'),
}  # fmt: skip


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_errors_name_file_line_and_nginx_reason(conf, case):
    http, location, line, reason = ERRORS[case]
    conf.check_error(config(http, location), line, reason)


NGINX_WRAP = (
    "pid {tmp}/n.pid; error_log {tmp}/e.log; events {{}}\n"
    "http {{ access_log off; {http}\n server {{ listen 127.0.0.1:9; location / {{ {loc} }} }} }}\n"
)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_nginx_refuses_the_same_with_the_same_words(tmp_path, case):
    http, location, _, reason = ERRORS[case]
    path = tmp_path / "n.conf"
    path.write_text(NGINX_WRAP.format(tmp=tmp_path, http=http, loc=location))
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    found = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*?)(?: in \S+:\d+)?\s*$", result.stderr, re.M)
    assert found is not None, result.stderr
    assert found.group(1) == reason


def location(cfg, path="/"):
    server = cfg.servers[0]
    return next(loc for loc in server.prefixes if loc.pattern == path)


def phase(loc, kind):
    return next((p for p in loc.phases or () if isinstance(p, kind)), None)


def test_values_defaults_and_inheritance(conf):
    cfg = conf.load(
        """
        http {
            limit_req_zone $binary_remote_addr zone=one:1m rate=30r/m;
            limit_req_zone $server_name zone=two:64k rate=5r/s sync;
            limit_conn_zone $remote_addr zone=c:1m;
            limit_req zone=one burst=5;
            limit_rate 10k;
            server {
                limit_conn c 3;
                limit_req_status 429;
                location / { }
                location /own/ { limit_req zone=two nodelay; limit_req zone=one delay=2 burst=4; }
                location /dry/ { limit_req_dry_run on; limit_conn_log_level info; }
                location /off/ { limit_rate 0; }
                location /after/ { limit_rate_after 1m; }
                location /plain/ { limit_rate 0; }
            }
        }
        """
    )
    root = location(cfg)
    req = phase(root, limits.LimitReqPhase)
    assert [(r.spec.name, r.burst, r.delay) for r in req.limits] == [("one", 5000, 0)]
    assert req.limits[0].spec.rate == 500  # 30r/m: nginx's milli-requests a second
    assert (req.status, req.level, req.dry_run) == (429, "error", False)
    conn = phase(root, limits.LimitConnPhase)
    assert [(c.spec.name, c.conn) for c in conn.limits] == [("c", 3)]
    assert (conn.status, conn.level) == (503, "error")
    # limit_req before limit_conn, as nginx's preaccess handlers run
    assert root.phases.index(req) < root.phases.index(conn)
    own = phase(location(cfg, "/own/"), limits.LimitReqPhase)
    assert [(r.spec.name, r.burst, r.delay) for r in own.limits] == [
        ("two", 0, limits.NODELAY),
        ("one", 4000, 2000),
    ]
    dry = location(cfg, "/dry/")
    assert phase(dry, limits.LimitReqPhase).dry_run is True
    assert phase(dry, limits.LimitConnPhase).level == "info"
    assert root.limit_rate == (10 * 1024, 0)
    assert location(cfg, "/off/").limit_rate is None
    assert location(cfg, "/after/").limit_rate == (10 * 1024, 1024 * 1024)
    # zones are made once per load, and the same one serves every location
    assert own.limits[1].spec is req.limits[0].spec


def test_a_location_without_limits_has_no_phase(conf):
    cfg = conf.load(f"http {{ {ZONE} {CZONE} server {{ location / {{ }} }} }}")
    assert location(cfg).phases is None
    assert location(cfg).limit_rate is None


def test_a_reload_keeps_a_zone_unchanged_and_renews_a_changed_one(conf):
    text = "http {{ limit_req_zone $binary_remote_addr zone=one:{size} rate=1r/s; server {{ " \
        "location / {{ limit_req zone=one; }} }} }}"  # fmt: skip
    first = phase(location(conf.load(text.format(size="1m"))), limits.LimitReqPhase)
    again = phase(location(conf.load(text.format(size="1m"))), limits.LimitReqPhase)
    other = phase(location(conf.load(text.format(size="2m"))), limits.LimitReqPhase)
    assert again.limits[0].spec.zone is first.limits[0].spec.zone
    assert other.limits[0].spec.zone is not first.limits[0].spec.zone
    assert other.limits[0].spec.zone.size == 2 * 1024 * 1024


def test_sync_is_accepted_and_empty_keys_load(conf):
    cfg = conf.load(
        'http { limit_req_zone "" zone=one:1m rate=1r/s sync; server { location / { '
        "limit_req zone=one; } } }"
    )
    assert phase(location(cfg), limits.LimitReqPhase) is not None
