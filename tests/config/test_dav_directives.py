"""Config errors and values of the WebDAV directives (directives_dav.py): dav_methods,
dav_access, create_full_put_path, min_delete_depth. Each error names its file:line in
nginx's words; where nginx is installed, `nginx -t` refuses the same line the same way."""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX
from test_compat_directives import nginx_verdict

from webserv import router

ERRORS = {
    "unknown method": ("dav_methods PUT GET;", 'invalid value "GET"'),
    "no method": ("dav_methods;", 'invalid number of arguments in "dav_methods" directive'),
    "bad access": ("dav_access user:rx;", 'invalid value "user:rx"'),
    "bad access class": ("dav_access owner:rw;", 'invalid value "owner:rw"'),
    "no access": ("dav_access;", 'invalid number of arguments in "dav_access" directive'),
    "four access": (
        "dav_access user:rw group:r all:r all:r;",
        'invalid number of arguments in "dav_access" directive',
    ),
    "bad depth": ("min_delete_depth x;", '"min_delete_depth" directive invalid number'),
    "negative depth": ("min_delete_depth -1;", '"min_delete_depth" directive invalid number'),
    "bad flag": (
        "create_full_put_path yes;",
        'invalid value "yes" in "create_full_put_path" directive, it must be "on" or "off"',
    ),
    "duplicate": (
        "min_delete_depth 1; min_delete_depth 2;",
        '"min_delete_depth" directive is duplicate',
    ),
}


@pytest.mark.parametrize(("line", "reason"), ERRORS.values(), ids=list(ERRORS))
def test_dav_errors(conf, line, reason):
    conf.check_error(f"http {{\n server {{\n  location / {{\n   {line}\n  }}\n }}\n}}\n", 4, reason)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize(("line", "reason"), ERRORS.values(), ids=list(ERRORS))
def test_dav_errors_are_nginx_s(tmp_path, line, reason):
    accepted, message = nginx_verdict(tmp_path, f"server {{ location / {{ {line} }} }}")
    assert not accepted
    assert message == reason


def location(config, path: str):
    (server,) = config.servers
    return router.find_location(server, path)


def test_values_and_inheritance(conf):
    config = conf.load(
        """
        http {
            dav_methods put Delete;
            dav_access group:rw all:r;
            server {
                listen 127.0.0.1:8080;
                location / { }
                location /off/ { dav_methods off; }
                location /all/ {
                    dav_methods off PUT DELETE MKCOL COPY MOVE PUT;
                    create_full_put_path on;
                    min_delete_depth 2;
                    dav_access user:r;
                }
            }
        }
        """
    )
    root = location(config, "/x").dav
    assert root.methods == {"PUT", "DELETE"}
    assert (root.file_mode, root.dir_mode) == (0o664, 0o775)  # user:rw is implied
    assert (root.create_full_put_path, root.min_delete_depth) == (False, 0)
    assert location(config, "/x").allow_methods >= {"GET", "HEAD", "PUT", "DELETE"}
    assert location(config, "/off/x").dav is None
    assert "PUT" not in location(config, "/off/x").allow_methods
    every = location(config, "/all/x")
    assert every.dav.methods == {"PUT", "DELETE", "MKCOL", "COPY", "MOVE"}
    assert (every.dav.file_mode, every.dav.dir_mode) == (0o400, 0o500)
    assert (every.dav.create_full_put_path, every.dav.min_delete_depth) == (True, 2)
    assert every.allow_header == "GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE"


def test_no_dav_costs_nothing(conf):
    config = conf.load("http { server { listen 127.0.0.1:8080; location / { } } }")
    assert location(config, "/").dav is None


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize(
    "line",
    ["dav_methods off;", "dav_methods off put;", "dav_access user:r;", "min_delete_depth 0;"],
)
def test_nginx_accepts_what_webserv_accepts(conf, tmp_path, line):
    assert nginx_verdict(tmp_path, f"server {{ location / {{ {line} }} }}")[0]
    conf.load(f"http {{ server {{ listen 127.0.0.1:8080; location / {{ {line} }} }} }}")
