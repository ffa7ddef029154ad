"""Loading: defaults, typed values, inheritance http → server → location resolved at load."""

from __future__ import annotations

import pytest

from webserv.config import load
from webserv.config.values import parse_size, parse_time


def only_server(config):
    (server,) = config.servers
    return server


def location(server, pattern):
    for loc in (*server.exact.values(), *server.prefixes, *server.regexes):
        if loc.pattern == pattern:
            return loc
    raise KeyError(pattern)


# --- defaults and values -------------------------------------------------------------------


def test_defaults_of_a_bare_server(conf):
    config = conf.load("http {\n    server {\n    }\n}\n")
    server = only_server(config)
    loc = server.fallback
    assert [a.display() for a in server.listens] == ["*:80"]
    assert server.names == ("",)
    assert loc.root == str(conf.path / "html")
    assert loc.index == ("index.html",)
    assert loc.autoindex is False
    assert loc.client_max_body_size == 1024 * 1024
    assert loc.allow_methods == {"GET", "HEAD"}
    assert loc.allow_header == "GET, HEAD"
    assert (loc.keepalive_timeout, loc.client_body_timeout, loc.send_timeout) == (75.0, 60.0, 60.0)
    assert server.client_header_timeout == 60.0
    assert loc.error_pages == {}
    assert loc.default_type == "application/octet-stream"
    assert [(log.file.path, log.format_name) for log in loc.access_logs] == [
        (str(conf.path / "logs" / "access.log"), "combined")
    ]
    assert (config.worker_processes, config.worker_connections) == (1, 1024)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("512", 512),
        ("10k", 10240),
        ("10K", 10240),
        ("2m", 2 * 1024**2),
        ("3M", 3 * 1024**2),
        ("1g", 1024**3),
        ("1G", 1024**3),
    ],
)
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "k", "1.5m", "-1", "1t", "1kb", " 1k", "1 k"])
def test_bad_sizes(text):
    assert parse_size(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("30", 30.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
        ("1h30m15s500ms", 5415.5),
        ("0", 0.0),
    ],
)
def test_times(text, value):
    assert parse_time(text) == value


@pytest.mark.parametrize("text", ["", "ms", "1x", "1.5s", "-1s", "1s1h", "1m1m", "1 30"])
def test_bad_times(text):
    assert parse_time(text) is None


def test_size_and_time_directives_are_typed(conf):
    loc = only_server(
        conf.load("""
        http {
            client_max_body_size 10k;
            keepalive_timeout 1m30s 45;
            client_body_timeout 500ms;
            send_timeout 2h;
            server {
                client_header_timeout 15s;
            }
        }
        """)
    ).fallback
    assert loc.client_max_body_size == 10240
    assert (loc.keepalive_timeout, loc.keepalive_header) == (90.0, 45.0)
    assert (loc.client_body_timeout, loc.send_timeout) == (0.5, 7200.0)


def test_allow_methods_get_implies_head_and_orders_allow(conf):
    loc = only_server(conf.load("http { server { allow_methods delete POST get; } }")).fallback
    assert loc.allow_methods == {"GET", "HEAD", "POST", "DELETE"}
    assert loc.allow_header == "GET, HEAD, POST, DELETE"


# --- inheritance ---------------------------------------------------------------------------

INHERIT = """
    http {
        root /srv/http;
        index a.html;
        autoindex on;
        client_max_body_size 5m;
        keepalive_timeout 10s;
        default_type text/plain;
        server {
            root /srv/server;
            location /loc {
                index b.html c.html;
                client_max_body_size 0;
            }
            location /plain {
            }
        }
        server {
            autoindex off;
        }
    }
    """


def test_http_values_reach_servers_and_locations(conf):
    config = conf.load(INHERIT)
    first, second = config.servers
    loc, plain = location(first, "/loc"), location(first, "/plain")
    assert [first.fallback.root, loc.root, plain.root, second.fallback.root] == [
        "/srv/server",
        "/srv/server",
        "/srv/server",
        "/srv/http",
    ]
    assert [first.fallback.index, loc.index, plain.index] == [
        ("a.html",),
        ("b.html", "c.html"),
        ("a.html",),
    ]
    assert [first.fallback.client_max_body_size, loc.client_max_body_size] == [5 * 1024**2, 0]
    assert [first.fallback.autoindex, plain.autoindex, second.fallback.autoindex] == [
        True,
        True,
        False,
    ]
    assert {loc.keepalive_timeout, plain.keepalive_timeout, second.fallback.keepalive_timeout} == {
        10.0
    }
    assert {loc.default_type, second.fallback.default_type} == {"text/plain"}


def test_relative_root_and_alias_are_relative_to_the_config_folder(conf):
    server = only_server(
        conf.load(
            """
        http {
            root site;
            server {
                location /img/ { alias pictures; }
                location /up { root ../up; }
            }
        }
        """,
            name="etc/w.conf",
        )
    )
    etc = conf.path / "etc"
    assert server.fallback.root == str(etc / "site")
    assert location(server, "/img/").alias == str(etc / "pictures") + "/"
    assert location(server, "/up").root == str(conf.path / "up")


ERROR_PAGES = """
    http {
        error_page 404 /http404.html;
        error_page 500 502 /http50x.html;
        server {
            error_page 403 /s403.html;
            location /a {
            }
            location /b {
                error_page 404 =200 /b404.html;
                error_page 410 = /gone;
            }
        }
        server {
        }
    }
    """


def test_error_page_list_of_an_inner_level_replaces_the_outer_one(conf):
    first, second = conf.load(ERROR_PAGES).servers

    def pages(loc):
        return {code: (p.uri, p.override) for code, p in loc.error_pages.items()}

    http_pages = {
        404: ("/http404.html", None),
        500: ("/http50x.html", None),
        502: ("/http50x.html", None),
    }
    assert pages(second.fallback) == http_pages
    # nginx: a level with its own error_page keeps none of the outer ones
    assert pages(first.fallback) == {403: ("/s403.html", None)}
    assert pages(location(first, "/a")) == {403: ("/s403.html", None)}
    assert pages(location(first, "/b")) == {404: ("/b404.html", 200), 410: ("/gone", 0)}


def test_access_log_list_of_an_inner_level_replaces_the_outer_one(conf):
    config = conf.load("""
        http {
            log_format short '$status $uri';
            access_log logs/http.log;
            server {
                access_log logs/server.log short;
                access_log logs/both.log;
                location /quiet { access_log off; }
                location /inherit { }
                location /own { access_log /var/log/own.log short; }
            }
            server {
            }
        }
        """)
    first, second = config.servers
    logs = conf.path / "logs"

    def where(loc):
        return [(log.file.path, log.format_name) for log in loc.access_logs]

    assert where(second.fallback) == [(str(logs / "http.log"), "combined")]
    server_logs = [(str(logs / "server.log"), "short"), (str(logs / "both.log"), "combined")]
    assert where(first.fallback) == server_logs
    assert where(location(first, "/inherit")) == server_logs
    assert where(location(first, "/quiet")) == []
    assert where(location(first, "/own")) == [("/var/log/own.log", "short")]
    # a file named twice is one shared writer
    assert location(first, "/inherit").access_logs[0] is first.fallback.access_logs[0]


def test_types_block_replaces_the_outer_map(conf):
    server = only_server(
        conf.load("""
        http {
            types { text/html html htm; image/png png; }
            server {
                location /raw { types { text/plain html; } }
            }
        }
        """)
    )
    assert dict(server.fallback.types) == {
        "html": "text/html",
        "htm": "text/html",
        "png": "image/png",
    }
    assert dict(location(server, "/raw").types) == {"html": "text/plain"}


def test_server_return_wins_over_a_location_return(conf):
    # nginx runs the server's return before a location is chosen
    server = only_server(
        conf.load("""
        http {
            server {
                return 301 https://example.com$request_uri;
                location /a { return 200 "location"; }
            }
        }
        """)
    )
    for loc in (server.fallback, location(server, "/a")):
        assert (loc.return_.code, loc.return_.text) == (301, "https://example.com$request_uri")


def test_main_and_events_values(conf):
    config = conf.load(
        """
        worker_processes auto;
        error_log logs/error.log warn;
        pid run/webserv.pid;
        events {
            worker_connections 64;
        }
        http {
            server {
            }
        }
        """
    )
    assert (config.worker_processes, config.worker_connections) == ("auto", 64)
    assert config.error_log == (str(conf.path / "logs" / "error.log"), "warn")
    assert config.pid == str(conf.path / "run" / "webserv.pid")


def test_prefix_replaces_the_config_folder_for_relative_paths(conf, tmp_path):
    path = conf.write("etc/w.conf", "http {\n    server {\n        root site;\n    }\n}\n")
    config = load(str(path), prefix=str(tmp_path / "srv"))
    assert config.servers[0].fallback.root == str(tmp_path / "srv" / "site")


def test_return_forms(conf):
    server = only_server(
        conf.load(
            """
            http {
                server {
                    location /moved { return 301 /new; }
                    location /url { return https://example.com/; }
                    location /text { return 403 "no $uri"; }
                    location /bare { return 204; }
                }
            }
            """
        )
    )

    def ret(pattern):
        r = location(server, pattern).return_
        return (r.code, r.text)

    assert ret("/moved") == (301, "/new")
    assert ret("/url") == (302, "https://example.com/")  # a URL alone is a 302, as in nginx
    assert ret("/text") == (403, "no $uri")
    assert ret("/bare") == (204, None)
    assert server.fallback.return_ is None


def test_access_log_buffer_and_flush(conf):
    loc = only_server(
        conf.load(
            "http {\n    server {\n        access_log logs/a.log combined buffer=32k flush=5s;\n"
            "    }\n}\n"
        )
    ).fallback
    (log,) = loc.access_logs
    assert (log.file.limit, log.file.flush_after) == (32 * 1024, 5.0)
