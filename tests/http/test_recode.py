"""`source_charset` + `charset` + `charset_map`: static files recoded on a real server, with
what nginx 1.22 answers for the same requests written down (its maps sit at the http level,
where conformance.nginx's one server block cannot put them), and the config errors."""

from __future__ import annotations

import random

import pytest
from support import RawConn, RunningServer, read_until_close, request

CONF = """
http {{
    access_log off;
    types {{ text/html html; text/plain txt; image/png png; }}
    charset_map B A {{ 58 59; E0 E1; }}
    charset_map koi8-r utf-8 {{ C1 D0B0; C2 D0B1; FF E282AC; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /sb/ {{ charset A; source_charset B; }}
        location /rev/ {{ charset b; source_charset a; }}
        location /to8/ {{ charset utf-8; source_charset koi8-r; }}
        location /from8/ {{ charset koi8-r; source_charset UTF-8; }}
        location /nocache/ {{ charset A; source_charset B; open_file_cache off; }}
        location /to8nc/ {{ charset utf-8; source_charset koi8-r; open_file_cache off; }}
        location /paced/ {{ charset A; source_charset B; limit_rate 100m; }}
        location /same/ {{ charset A; source_charset a; }}
        location /types/ {{ charset A; source_charset B; charset_types text/plain; }}
    }}
}}
"""
DATA = b"".join(b"X%03dXXXXXX" % i for i in range(100))  # nginx's range.t file
RECODED = DATA.replace(b"X", b"Y")
KOI8 = b"ab\xc1\xc2\xff\x80-X"
KOI8_AS_UTF8 = "abаб€?-X".encode()
UTF8 = "abаб€😀é".encode() + b"\xff."
rng = random.Random(1)
BIG = bytes(rng.randrange(256) for _ in range(700_000))  # streamed, not read whole


def single_byte(data: bytes) -> bytes:  # B -> A as the map says
    table = bytearray(i if i < 128 else 0x3F for i in range(256))
    table[0x58], table[0xE0] = 0x59, 0xE1
    return data.translate(bytes(table))


def to_utf8(data: bytes) -> bytes:
    chars = {0xC1: "а", 0xC2: "б", 0xFF: "€"}
    return "".join(chr(b) if b < 128 else chars.get(b, "?") for b in data).encode()


FILES = {
    "sb/t.html": DATA,
    "sb/big.html": BIG,
    "sb/a.png": DATA,
    "sb/a.txt": DATA,
    "rev/t.html": b"XY\xe1\xe0",
    "to8/t.html": KOI8,
    "to8/big.html": BIG,
    "to8nc/t.html": KOI8,
    "from8/t.html": UTF8,
    "nocache/t.html": DATA,
    "paced/big.html": BIG,
    "same/t.html": DATA,
    "types/a.txt": DATA,
    "types/a.html": DATA,  # text/html always is in charset_types
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("recode"), CONF, FILES)
    yield srv.start()
    srv.stop()


def get(server, path, headers=None, method="GET"):
    return request(server.port, path, method=method, headers=headers or {})


def test_single_byte_keeps_length_validators_and_ranges(server):
    status, headers, body = get(server, "/sb/t.html")
    assert (status, body) == (200, RECODED)
    assert headers["content-type"] == "text/html; charset=A"
    assert (headers["content-length"], headers["accept-ranges"]) == ("1000", "bytes")
    # nginx's range.t: "recoded - 206 partial reply"
    status, headers, body = get(server, "/sb/t.html", {"Range": "bytes=990-1990"})
    assert (status, body, headers["content-length"]) == (206, b"Y099YYYYYY", "10")
    assert headers["content-range"] == "bytes 990-999/1000"
    etag = get(server, "/sb/t.html")[1]["etag"]
    assert get(server, "/sb/t.html", {"If-None-Match": etag})[0] == 304


def test_single_byte_multipart(server):
    status, headers, body = get(server, "/sb/t.html", {"Range": "bytes=0-1,5-6"})
    assert status == 206
    assert headers["content-length"] == str(len(body))
    assert body.count(b"Content-Type: text/html; charset=A\r\n") == 2
    assert b"\r\n\r\nY0\r\n" in body and b"\r\n\r\nYY\r\n" in body and b"X" not in body


def test_single_byte_the_other_way_through_the_same_map(server):
    # A -> B: Y -> X, \xe1 -> \xe0; an A byte the map does not name is "?" (nginx's dst2src)
    assert get(server, "/rev/t.html")[2] == b"XX\xe0?"


@pytest.mark.parametrize("path", ["/sb/big.html", "/paced/big.html"])
def test_large_file_streamed_with_its_length(server, path):
    status, headers, body = get(server, path)
    assert (status, headers["content-length"]) == (200, str(len(BIG)))
    assert body == single_byte(BIG)
    status, headers, body = get(server, path, {"Range": "bytes=100-300000,-5"})
    assert status == 206 and headers["content-length"] == str(len(body))
    assert single_byte(BIG[100:300001]) in body and body.count(single_byte(BIG[-5:])) >= 1


def test_to_utf8_changes_the_length_so_no_ranges(server):
    status, headers, body = get(server, "/to8/t.html", {"Range": "bytes=0-3"})
    assert (status, body) == (200, KOI8_AS_UTF8)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "accept-ranges" not in headers and "content-range" not in headers
    # read at once: webserv knows the length (nginx: chunked)
    assert headers["content-length"] == str(len(KOI8_AS_UTF8))


def test_to_utf8_large_file_is_chunked(server):
    status, headers, body = get(server, "/to8/big.html")
    assert (status, headers["transfer-encoding"], body) == (200, "chunked", to_utf8(BIG))
    assert "content-length" not in headers and "accept-ranges" not in headers


def test_to_utf8_large_file_http10_ends_with_the_connection(server):
    with RawConn(server.port) as conn:
        conn.send(b"GET /to8/big.html HTTP/1.0\r\n\r\n")
        raw = read_until_close(conn.sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"200" and b"Content-Length" not in head
    assert b"Transfer-Encoding" not in head
    assert body == to_utf8(BIG)


def test_head_of_a_length_changing_recoding(server):
    with RawConn(server.port) as conn:
        # recoded whole: the GET's Content-Length (nginx: none)
        for target in (b"/to8/t.html", b"/to8nc/t.html"):  # cached bytes, the descriptor
            conn.send(b"HEAD " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = conn.response(head=True)
            assert (status, headers["content-length"]) == (200, str(len(KOI8_AS_UTF8)))
        # streamed: no length, as nginx
        conn.send(b"HEAD /to8/big.html HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = conn.response(head=True)
        assert (status, body) == (200, b"")
        assert "content-length" not in headers and "transfer-encoding" not in headers
        conn.send(b"GET /to8/big.html HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection goes on
        assert conn.response()[::2] == (200, to_utf8(BIG))
        conn.send(b"GET /sb/t.html HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response()[::2] == (200, RECODED)


def test_from_utf8(server):
    status, headers, body = get(server, "/from8/t.html")
    # what nginx sends, but for the invalid byte at the end (nginx drops it: "?" here)
    assert (status, body) == (200, b"ab\xc1\xc2\xff&#128512;&#233;?.")
    assert headers["content-type"] == "text/html; charset=koi8-r"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/sb/a.png", DATA),  # not one of charset_types: as it is, with sendfile
        ("/sb/a.txt", RECODED),
        ("/same/t.html", DATA),  # the same charset (names are case-insensitive)
        ("/types/a.txt", RECODED),
        ("/types/a.html", RECODED),
        ("/nocache/t.html", RECODED),  # read from the descriptor, not the cache's bytes
        ("/to8nc/t.html", KOI8_AS_UTF8),
    ],
)
def test_which_answers_are_recoded(server, path, body):
    status, headers, got = get(server, path)
    assert (status, got) == (200, body)
    assert headers["content-length"] == str(len(body))


def test_missing_file_in_a_recoding_location(server):
    status, headers, _ = get(server, "/sb/missing.html")
    assert status == 404
    assert server.alive()


HTTP = "http {{\n    {maps}\n    server {{\n        listen 8080;\n        {inner}\n    }}\n}}\n"


@pytest.mark.parametrize(
    ("maps", "inner", "line", "reason"),
    [
        (
            "charset_map A A { 58 59; }",
            "",
            2,
            '"charset_map" between the same charsets "A" and "A"',
        ),
        (
            "charset_map A B { 58 59; } charset_map b a { 1 2; }",
            "",
            2,
            'duplicate "charset_map" between "b" and "a"',
        ),
        ("charset_map A B { 5G 59; }", "", 2, 'invalid value "5G"'),
        ("charset_map A B { 100 59; }", "", 2, 'invalid value "100"'),
        ("charset_map A B { 58 5x; }", "", 2, 'invalid value "5x"'),
        ("charset_map A B { 58 59 60; }", "", 2, "invalid parameters number"),
        ("charset_map A B { 58 { } }", "", 2, 'unexpected "{"'),
        ("charset_map A utf-8 { 58 ZZ; }", "", 2, 'invalid value "ZZ"'),
        ("charset_map A utf-8 { 58 F09F9880; }", "", 2, 'invalid value "F09F9880"'),
        ("charset_map A utf-8 { 58 D0; }", "", 2, 'invalid value "D0"'),
        ("charset_map A utf-8 { 58 D0B; }", "", 2, 'invalid value "D0B"'),
        ("charset_map A { 1 1; }", "", 2, 'invalid number of arguments in "charset_map" directive'),
        ("charset_map A B;", "", 2, 'directive "charset_map" has no opening "{"'),
        (
            "charset_map utf-8 A { 58 59; }",
            "",
            2,
            '"charset_map" from "utf-8" is not supported: write it to "utf-8"',
        ),
        ("", "charset_map A B { }", 5, '"charset_map" directive is not allowed here'),
        ("", "source_charset x y;", 5, 'invalid number of arguments in "source_charset" directive'),
        (
            "",
            "override_charset maybe;",
            5,
            'invalid value "maybe" in "override_charset" directive, it must be "on" or "off"',
        ),
        (
            "charset_map a b { }",
            "location / { charset A; source_charset C; }",
            5,
            'no "charset_map" between the charsets "C" and "A"',
        ),
    ],
)
def test_config_errors(tmp_path, maps, inner, line, reason):
    from webserv.config.errors import ConfigError
    from webserv.config.load import load

    conf = tmp_path / "webserv.conf"
    conf.write_text(HTTP.format(maps=maps, inner=inner))
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (line, reason)


def test_maps_load_that_nginx_loads(tmp_path):
    from webserv.config.load import load

    conf = tmp_path / "webserv.conf"
    maps = "charset_map a b { } charset_map koi8-r UTF-8 { 58 D0B0; 0c1 e282ac; }"
    inner = (
        "override_charset on; location /x/ { charset A; source_charset B; } "
        "location /y/ { charset utf-8; source_charset koi8-r; }"
    )
    conf.write_text(HTTP.format(maps=maps, inner=inner))
    server = load(str(conf)).servers[0]
    assert server.fallback.recode is None
    assert {loc.pattern: loc.recode is not None for loc in server.prefixes} == {
        "/x/": True,
        "/y/": True,
    }
