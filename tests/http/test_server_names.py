"""server_name as nginx has it, on the real server: lines that add up, PCRE regexes, and the
captures of the regex that chose the server as variables ($name, $1) in return, add_header,
rewrite and log formats.

Every answer is checked against what nginx 1.22 answers for the same config (nginx-tests'
http_server_name.t, and the cases below run against /usr/sbin/nginx by hand).
"""

from __future__ import annotations

import pytest
from support import RawConn, RunningServer, wait_until

from webserv.config.errors import ConfigError
from webserv.config.load import load

CONF = r"""
error_log {tmp}/error.log info;
http {{
    log_format names '$host $uri $server_name [$name] [$1]';
    access_log {tmp}/logs/access.log names;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        return 200 "default";
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name many3.example.com;
        server_name many4.example.com .dot.example.com;
        return 200 "$server_name";
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name exact.example.org ~^(?<name>[a-z]+)\Q.example.org\E$;
        add_header X-Match "$name";
        location / {{ return 200 "$server_name|$name|$1|$1x"; }}
        location ~ ^/page/(\d+)$ {{ return 200 "$1|$name"; }}
        location /go {{ rewrite ^ /to/$name last; }}
        location /to/ {{ return 200 "$uri"; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name "~^(?P<name>www\p{{N}}+)\.example\.com$" ~^EXAMPLE\.COM$;
        return 200 "$server_name|$name";
    }}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("names"), CONF).start()
    yield srv
    srv.stop()


def ask(port, host, target="/"):
    """(status, headers, body) of one GET; the connection is closed after it."""
    with RawConn(port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = conn.response()
        assert conn.closed_by_peer()
    return status, headers, body.decode()


def body(port, host, target="/"):
    status, _, text = ask(port, host, target)
    assert status == 200
    return text


def test_server_name_lines_add_up(server):
    assert body(server.port, "many3.example.com") == "many3.example.com"
    assert body(server.port, "many4.example.com") == "many3.example.com"
    assert body(server.port, "nothing.example.com") == "default"


def test_dot_name_is_both_and_server_name_drops_its_dot(webserv):
    srv = webserv("""
        http {{
            server {{ listen 127.0.0.1:{port}; return 200 default; }}
            server {{ listen 127.0.0.1:{port}; server_name .dot.example.com;
                     return 200 "$server_name"; }}
        }}
        """)
    assert body(srv.port, "dot.example.com") == "dot.example.com"
    assert body(srv.port, "www.dot.example.com") == "dot.example.com"
    assert body(srv.port, "xdot.example.com") == "default"


def test_named_capture_is_a_variable_in_return_and_add_header(server):
    status, headers, text = ask(server.port, "blah.example.org")
    assert status == 200
    assert text == "exact.example.org|blah|blah|blahx"
    assert headers["x-match"] == "blah"


def test_regex_names_are_caseless_and_capture_the_lower_cased_host(server):
    status, headers, text = ask(server.port, "BLAH.Example.ORG")
    assert text.split("|")[1:] == ["blah", "blah", "blahx"]
    assert body(server.port, "EXAMPLE.COM") == r"~^(?P<name>www\p{N}+)\.example\.com$|"
    assert body(server.port, "example.com") == r"~^(?P<name>www\p{N}+)\.example\.com$|"


def test_quoted_text_is_literal(server):
    # \Q.example.org\E: its dots match only dots
    assert body(server.port, "blahxexamplexorg") == "default"


def test_unicode_class_p_n(server):
    assert body(server.port, "www01.example.com").endswith("|www01")
    assert body(server.port, "WWW01.EXAMPLE.COM").endswith("|www01")
    assert body(server.port, "wwwx.example.com") == "default"


def test_an_exact_name_wins_and_has_no_captures(server):
    status, headers, text = ask(server.port, "exact.example.org")
    assert text == "exact.example.org|||x"
    assert "x-match" not in headers  # an empty value: no field (nginx)


def test_a_regex_location_takes_over_the_numbered_captures(server):
    # nginx: the last regex that matched with captures owns $1; $name stays the server's
    assert body(server.port, "blah.example.org", "/page/42") == "42|blah"


def test_rewrite_uses_the_server_names_capture(server):
    assert body(server.port, "blah.example.org", "/go") == "/to/blah"
    assert body(server.port, "other.example.org", "/go") == "/to/other"


def test_captures_in_a_log_format(server):
    ask(server.port, "abc.example.org", "/logged")
    ask(server.port, "exact.example.org", "/logged")
    ask(server.port, "localhost", "/logged")

    def logged():
        found = [line for line in server.access_lines() if " /logged " in line]
        return found if len(found) >= 3 else None

    lines = wait_until(logged)
    assert lines == [
        "abc.example.org /logged exact.example.org [abc] [abc]",
        "exact.example.org /logged exact.example.org [-] [-]",
        "localhost /logged localhost [-] [-]",
    ]


def test_one_connection_many_hosts_each_its_own_captures(server):
    with RawConn(server.port) as conn:
        for host in ("one.example.org", "two.example.org", "exact.example.org", "one.example.org"):
            conn.send(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status, headers, _ = conn.response()
            assert status == 200
            assert headers.get("x-match") == (None if host.startswith("exact") else host[:3])


def test_an_invalid_host_is_a_400_and_the_server_goes_on(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: bad host.example.org\r\n\r\n")
        status, _, _ = conn.response()
        assert status == 400
        assert conn.closed_by_peer()
    assert body(server.port, "blah.example.org", "/to/x") == "/to/x"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (r'"~^(\p{Greek}+)$"', r"unsupported Unicode property \p{Greek}"),
        (r'"~^[\P{N}]$"', r"\P inside a character class"),
        ('"~^(x$"', "missing ), unterminated subpattern"),
    ],
)
def test_bad_regex_names_are_refused_at_load_with_file_and_line(tmp_path, names, message):
    path = tmp_path / "webserv.conf"
    path.write_text(f"http {{\n  server {{\n    server_name a.test {names};\n  }}\n}}\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert (info.value.file, info.value.line) == (str(path), 3)
    assert message in info.value.message


def test_an_unknown_variable_is_still_refused(tmp_path):
    path = tmp_path / "webserv.conf"
    path.write_text(
        'http {\n  server {\n    server_name ~^(?<name>.+)$;\n    add_header X-A "$nam";\n  }\n}\n'
    )
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert info.value.line == 4
    assert info.value.message == 'unknown "nam" variable'


def test_a_capture_name_from_a_location_regex_is_known_anywhere(tmp_path):
    # nginx declares named captures for the whole configuration, whatever the order
    path = tmp_path / "webserv.conf"
    path.write_text(
        "http {\n  log_format f '$page';\n  server {\n"
        '    location ~ ^/(?<page>\\w+)$ { return 200 "$page"; }\n  }\n}\n'
    )
    load(str(path))
