"""Virtual hosts on the real server: a request picks its server by address, then by Host.

Each server answers `return 200 NAME` (or serves its own root), so the body says which
server answered. Requests go over raw sockets so Host, absolute-form targets and HTTP/1.0
without Host are sent exactly as written.
"""

from __future__ import annotations

import pytest
from support import RawConn, ipv6_loopback


def ask(port, host=None, target="/", version="HTTP/1.1", addr="127.0.0.1"):
    """(status, body) of one GET on a fresh connection; `host=None` sends no Host header."""
    lines = [f"GET {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.append("Connection: close")
    with RawConn(port, host=addr) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, _, body = conn.response()
    return status, body.decode()


def answers(port, hosts, **kw):
    return {host: ask(port, host, **kw) for host in hosts}


def test_two_servers_on_one_port_by_host(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name alpha.test; return 200 alpha; }}
            server {{ listen {port}; server_name beta.test; return 200 beta; }}
        }}
        """)
    assert answers(srv.port, ["alpha.test", "beta.test"]) == {
        "alpha.test": (200, "alpha"),
        "beta.test": (200, "beta"),
    }


def test_three_servers_unknown_host_goes_to_the_first(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; return 200 one; }}
            server {{ listen {port}; server_name two.test 2.test; return 200 two; }}
            server {{ listen {port}; server_name three.test; return 200 three; }}
        }}
        """)
    assert answers(
        srv.port, ["one.test", "two.test", "2.test", "three.test", "other.test", "127.0.0.1"]
    ) == {
        "one.test": (200, "one"),
        "two.test": (200, "two"),
        "2.test": (200, "two"),
        "three.test": (200, "three"),
        "other.test": (200, "one"),
        "127.0.0.1": (200, "one"),
    }


def test_default_server_marked_on_a_later_server(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; return 200 one; }}
            server {{ listen {port} default_server; server_name two.test; return 200 two; }}
            server {{ listen {port}; server_name three.test; return 200 three; }}
        }}
        """)
    assert answers(srv.port, ["one.test", "unknown.test", "three.test"]) == {
        "one.test": (200, "one"),
        "unknown.test": (200, "two"),
        "three.test": (200, "three"),
    }


def test_host_with_port_upper_case_and_trailing_dot(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; return 200 one; }}
            server {{ listen {port}; server_name Two.Test; return 200 two; }}
        }}
        """)
    hosts = [f"two.test:{srv.port}", "TWO.TEST", f"Two.TEST:{srv.port}", "two.test.", "two.test:1"]
    assert answers(srv.port, hosts) == dict.fromkeys(hosts, (200, "two"))


def test_http10_without_host_goes_to_the_default_server(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; return 200 one; }}
            server {{ listen {port} default_server; server_name two.test; return 200 two; }}
        }}
        """)
    assert ask(srv.port, None, version="HTTP/1.0") == (200, "two")


def test_http10_without_host_prefers_a_server_with_the_empty_name(webserv):
    # nginx: a server without server_name has the name "", which a request without Host
    # matches exactly, before the default server is considered
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; return 200 one; }}
            server {{ listen {port}; return 200 unnamed; }}
            server {{ listen {port}; server_name three.test ""; return 200 three; }}
        }}
        """)
    assert ask(srv.port, None, version="HTTP/1.0") == (200, "unnamed")
    assert ask(srv.port, "nobody.test") == (200, "one")


def test_http11_without_host_is_400(webserv):
    srv = webserv("http {{ server {{ listen {port}; return 200 one; }} }}")
    assert ask(srv.port, None)[0] == 400


def test_server_listening_on_two_ports(webserv):
    srv = webserv(
        """
        http {{
            server {{ listen {port}; listen {port2}; server_name both.test; return 200 both; }}
            server {{ listen {port2}; server_name second.test; return 200 second; }}
        }}
        """,
        ports=2,
    )
    first = answers(srv.port, ["both.test", "second.test"])
    assert first == {"both.test": (200, "both"), "second.test": (200, "both")}
    second = answers(srv.ports[1], ["both.test", "second.test", "other.test"])
    assert second == {
        "both.test": (200, "both"),
        "second.test": (200, "second"),
        "other.test": (200, "both"),
    }


def test_wildcard_and_regex_names(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name default.test; return 200 default; }}
            server {{ listen {port}; server_name *.example.com; return 200 front; }}
            server {{ listen {port}; server_name www.example.*; return 200 back; }}
            server {{ listen {port}; server_name ~^(?<user>[a-z]+)\\.users\\.test$; return 200 regex; }}
            server {{ listen {port}; server_name www.example.com; return 200 exact; }}
        }}
        """)
    assert answers(
        srv.port,
        [
            "a.example.com",
            "a.b.example.com",
            "example.com",
            "www.example.org",
            "www.example.co.uk",
            "www.example.com",
            "bob.users.test",
            "BOB.Users.Test",
            "b0b.users.test",
        ],
    ) == {
        "a.example.com": (200, "front"),
        "a.b.example.com": (200, "front"),
        "example.com": (200, "default"),  # "*.example.com" needs a label in front
        "www.example.org": (200, "back"),
        "www.example.co.uk": (200, "back"),
        "www.example.com": (200, "exact"),  # exact beats both wildcards
        "bob.users.test": (200, "regex"),
        "BOB.Users.Test": (200, "regex"),
        "b0b.users.test": (200, "default"),
    }


def test_absolute_form_target_selects_by_its_authority(webserv):
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name one.test; location / {{ return 200 "one $uri"; }} }}
            server {{ listen {port}; server_name two.test; location / {{ return 200 "two $uri"; }} }}
        }}
        """)
    assert ask(srv.port, "one.test", target="http://two.test/x") == (200, "two /x")
    assert ask(srv.port, "two.test", target=f"http://ONE.TEST:{srv.port}/y?q=1") == (200, "one /y")
    assert ask(srv.port, "two.test", target="http://unknown.test/z") == (200, "one /z")


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_ipv6_listen(webserv):
    srv = webserv("""
        http {{
            server {{ listen 127.0.0.1:{port}; listen [::1]:{port}; server_name v4.test;
                     return 200 v4; }}
            server {{ listen [::1]:{port}; server_name v6.test; return 200 v6; }}
        }}
        """)
    assert answers(srv.port, ["v4.test", "v6.test", f"[::1]:{srv.port}"], addr="::1") == {
        "v4.test": (200, "v4"),
        "v6.test": (200, "v6"),
        f"[::1]:{srv.port}": (200, "v4"),
    }
    assert ask(srv.port, "v6.test") == (200, "v4")  # over IPv4, v6.test is not a candidate


def test_each_server_has_its_own_root_and_error_pages(webserv):
    files = {
        "a/index.html": "site a\n",
        "a/404.html": "a has no such page\n",
        "b/index.html": "site b\n",
        "b/only-b.txt": "only in b\n",
        "b/errors/missing.html": "b has no such page\n",
    }
    srv = webserv(
        """
        http {{
            server {{
                listen {port};
                server_name a.test;
                root {root}/a;
                error_page 404 /404.html;
            }}
            server {{
                listen {port};
                server_name b.test;
                root {root}/b;
                error_page 404 /errors/missing.html;
            }}
        }}
        """,
        files=files,
    )
    assert ask(srv.port, "a.test") == (200, "site a\n")
    assert ask(srv.port, "b.test") == (200, "site b\n")
    assert ask(srv.port, "b.test", target="/only-b.txt") == (200, "only in b\n")
    assert ask(srv.port, "a.test", target="/only-b.txt") == (404, "a has no such page\n")
    assert ask(srv.port, "b.test", target="/nope") == (404, "b has no such page\n")
    assert ask(srv.port, "a.test", target="/errors/missing.html") == (404, "a has no such page\n")


def test_specific_address_and_all_addresses_on_another_port(webserv):
    srv = webserv(
        """
        http {{
            server {{ listen 127.0.0.1:{port}; server_name a.test; return 200 a; }}
            server {{ listen {port2}; server_name b.test; return 200 b; }}
        }}
        """,
        ports=2,
    )
    port, port2 = srv.ports
    assert ask(port, "b.test") == (200, "a")  # b is not on this port
    assert ask(port2, "a.test") == (200, "b")
    assert ask(port2, "b.test", addr="127.0.0.2") == (200, "b")  # every address
    with pytest.raises(ConnectionRefusedError):
        ask(port, "a.test", addr="127.0.0.2")  # only 127.0.0.1


def test_specific_address_and_all_addresses_on_one_port(webserv):
    # as nginx: the connection's local address picks the candidates, then Host picks one
    srv = webserv("""
        http {{
            server {{ listen {port}; server_name b.test; return 200 b; }}
            server {{ listen 127.0.0.1:{port}; server_name a.test; return 200 a; }}
        }}
        """)
    assert answers(srv.port, ["a.test", "b.test"]) == {"a.test": (200, "a"), "b.test": (200, "a")}
    assert answers(srv.port, ["a.test", "b.test"], addr="127.0.0.2") == {
        "a.test": (200, "b"),
        "b.test": (200, "b"),
    }
