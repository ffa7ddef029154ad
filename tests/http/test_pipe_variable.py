"""$pipe: "p" for a request that came in the same read as the end of the request before it
(nginx's r->pipeline: pipelined), "." otherwise; on the real server, in its access log.
"""

from __future__ import annotations

from support import RawConn, wait_until

CONF = """
http {{
    log_format pipe '$uri $pipe';
    access_log {tmp}/logs/access.log pipe;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def get(path, close=False):
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def logged(srv, count):
    return wait_until(lambda: len(srv.access_lines()) >= count and srv.access_lines())


def test_pipelined_requests_are_p_the_first_is_dot(webserv):
    srv = webserv(CONF)
    with RawConn(srv.port) as conn:
        conn.send(get("/a") + get("/b") + get("/c", close=True))
        assert [conn.response()[0] for _ in range(3)] == [200, 200, 200]
        assert conn.closed_by_peer()
    assert logged(srv, 3) == ["/a .", "/b p", "/c p"]


def test_keep_alive_requests_one_after_the_other_are_dots(webserv):
    srv = webserv(CONF)
    with RawConn(srv.port) as conn:
        for path in ("/a", "/b"):
            conn.send(get(path))
            assert conn.response()[0] == 200
        conn.send(get("/c") + get("/d", close=True))  # a pair again: the second pipelined
        assert [conn.response()[0] for _ in range(2)] == [200, 200]
    assert logged(srv, 4) == ["/a .", "/b .", "/c .", "/d p"]


def test_a_request_that_came_with_the_end_of_the_one_before_is_p(webserv):
    srv = webserv(CONF)
    with RawConn(srv.port) as conn:
        first, second = get("/a"), get("/b", close=True)
        conn.send(first[:10])  # however the reads are cut, /b came with /a's end
        conn.send(first[10:] + second)
        assert [conn.response()[0] for _ in range(2)] == [200, 200]
    assert logged(srv, 2) == ["/a .", "/b p"]


def test_a_bad_pipelined_request_is_a_400_and_the_server_goes_on(webserv):
    srv = webserv(CONF)
    with RawConn(srv.port) as conn:
        conn.send(get("/a") + b"GET /bad\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[0] == 200
        assert conn.response()[0] == 400
        assert conn.closed_by_peer()
    with RawConn(srv.port) as conn:
        conn.send(get("/after", close=True))
        assert conn.response()[0] == 200
    lines = logged(srv, 3)
    assert (lines[0], lines[-1]) == ("/a .", "/after .")
    assert lines[1].endswith(" p")  # the 400 came with /a's end too
