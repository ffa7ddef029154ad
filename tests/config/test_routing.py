"""Routing tables built at load: nginx's location order, server names, listen groups."""

from __future__ import annotations

import pytest

from webserv import router


def only_server(config):
    (server,) = config.servers
    return server


def location(server, pattern):
    for loc in (*server.exact.values(), *server.prefixes, *server.regexes):
        if loc.pattern == pattern:
            return loc
    raise KeyError(pattern)


def group(config, port, host=""):
    (found,) = [lst.groups[(host, port)] for lst in config.listeners if (host, port) in lst.groups]
    return found


# --- location order ------------------------------------------------------------------------

LOCATIONS = """
    http {
        server {
            location / { }
            location /docs/ { }
            location /docs/api/ { }
            location = /docs/ { }
            location ^~ /static/ { }
            location ~ \\.png$ { }
            location ~* \\.(jpg|gif)$ { }
            location ~ ^/docs/.+\\.txt$ { }
            location ~ \\.txt$ { }
            location =/exact { }
        }
    }
    """


@pytest.mark.parametrize(
    ("path", "chosen"),
    [
        ("/docs/", ("=", "/docs/")),  # exact beats the prefix of the same text
        ("/docs/x", ("", "/docs/")),
        ("/docs/api/v1", ("", "/docs/api/")),  # longest prefix
        ("/docs/api/a.png", ("~", "\\.png$")),  # a regex beats the longest prefix
        ("/static/a.png", ("^~", "/static/")),  # ^~ stops before the regexes
        ("/static", ("", "/")),
        ("/a.JPG", ("~*", "\\.(jpg|gif)$")),  # ~* ignores case
        ("/a.PNG", ("", "/")),  # ~ does not
        ("/docs/a.txt", ("~", "^/docs/.+\\.txt$")),  # regexes in config order: first wins
        ("/a.txt", ("~", "\\.txt$")),
        ("/exact", ("=", "/exact")),  # "=/exact" written together
        ("/exactly", ("", "/")),
    ],
)
def test_location_selection_order(conf, path, chosen):
    server = only_server(conf.load(LOCATIONS))
    loc = router.find_location(server, path)
    assert (loc.modifier, loc.pattern) == chosen


def test_no_matching_location_uses_the_server_settings(conf):
    server = only_server(conf.load("http { server { root /s; location /a { root /a; } } }"))
    assert router.find_location(server, "/b") is server.fallback
    assert router.find_location(server, "/b").root == "/s"
    assert router.find_location(server, "/a/b").root == "/a"


# --- server names and listen groups --------------------------------------------------------

NAMES = """
    http {
        server { listen 8001; server_name default.test; }
        server { listen 8001; server_name www.example.com Mixed.Example.COM; }
        server { listen 8001; server_name *.example.com; }
        server { listen 8001; server_name *.a.example.com; }
        server { listen 8001; server_name www.example.*; }
        server { listen 8001; server_name ~^api\\d+\\.example\\.org$ ~^\\D+\\.example\\.net$; }
        server { listen 8001; server_name ~^[a-z]+\\.example\\.org$; }
        server { listen 8001; server_name .dot.test; }
    }
    """


@pytest.mark.parametrize(
    ("host", "index"),
    [
        ("www.example.com", 1),  # exact beats both wildcards
        ("mixed.example.com", 1),  # names are compared lower-cased
        ("x.example.com", 2),
        ("x.y.example.com", 2),
        ("b.a.example.com", 3),  # the longest leading wildcard
        ("example.com", 0),  # "*.example.com" needs a label before it
        ("www.example.org", 4),  # trailing wildcard
        ("www.example.co.uk", 4),
        ("api7.example.org", 5),  # regex, first in config order
        ("abc.example.org", 6),
        ("abc.example.net", 5),  # "\D" keeps its meaning ("\d" would not match)
        ("a1c.example.net", 0),
        ("dot.test", 7),  # ".dot.test" is both the name and its subdomains
        ("x.dot.test", 7),
        ("unknown.test", 0),
        ("", 0),
    ],
)
def test_server_name_selection(conf, host, index):
    config = conf.load(NAMES)
    assert router.find_server(group(config, 8001), host) is config.servers[index]


def test_default_server_is_the_first_or_the_marked_one(conf):
    config = conf.load("""
        http {
            server { listen 8001; server_name a; }
            server { listen 8001; server_name b; listen 8002 default_server; }
            server { listen 8002; server_name c; }
        }
        """)
    a, b, c = config.servers
    assert group(config, 8001).default is a
    assert group(config, 8002).default is b
    assert router.find_server(group(config, 8002), "c") is c
    assert router.find_server(group(config, 8002), "a") is b  # not on this port


def test_conflicting_name_keeps_the_first_server(conf):
    config = conf.load("""
        http {
            server { listen 8001; server_name dup.test; return 200 one; }
            server { listen 8001; server_name dup.test; return 200 two; }
        }
        """)
    assert router.find_server(group(config, 8001), "dup.test") is config.servers[0]
    assert config.warnings == ('conflicting server name "dup.test" on *:8001, ignored',)


def test_servers_on_one_port_share_a_group_a_specific_address_is_covered(conf):
    config = conf.load("""
        http {
            server { listen 8001; listen 127.0.0.1:8002; server_name a; }
            server { listen 0.0.0.0:8001; server_name b; }
            server { listen 8002; server_name c; }
            server { listen [::1]:8001; server_name d; }
        }
        """)
    a, b, c, d = config.servers
    by_address = {lst.address.display(): lst for lst in config.listeners}
    assert sorted(by_address) == ["*:8001", "*:8002", "[::1]:8001"]
    assert set(by_address["*:8001"].groups) == {("", 8001)}
    assert group(config, 8001).servers == (a, b)  # "0.0.0.0:8001" is "*:8001"
    wildcard = by_address["*:8002"]
    assert wildcard.needs_local_address is True
    assert wildcard.groups[("127.0.0.1", 8002)].servers == (a,)
    assert wildcard.groups[("", 8002)].servers == (c,)
    assert by_address["[::1]:8001"].groups[("::1", 8001)].servers == (d,)


def test_pcre_named_groups_are_accepted(conf):
    # nginx's docs write captures as "(?<name>...)"; Python's re spells it "(?P<name>...)"
    config = conf.load("""
        http {
            server { listen 8001; server_name default.test; }
            server {
                listen 8001;
                server_name ~^(?<user>[a-z]+)\\.example\\.net$;
                location ~ ^/item/(?<id>\\d+)$ { }
                location ~ ^/(?<=x)y { }
            }
        }
        """)
    server = config.servers[1]
    assert router.find_server(group(config, 8001), "bob.example.net") is server
    assert router.find_server(group(config, 8001), "b0b.example.net") is config.servers[0]
    assert router.find_location(server, "/item/42").pattern == "^/item/(?<id>\\d+)$"
    assert router.find_location(server, "/item/4x") is server.fallback
