"""Compiled log formats: which may be rendered late (batched at flush), and that a late
line still tells the request's own time."""

import time
from types import SimpleNamespace

from webserv import variables
from webserv.logs import COMBINED


def exchange(**over):
    conn = SimpleNamespace(remote_addr="192.0.2.7", remote_port=5000, id=3, requests=2, record=None)
    x = SimpleNamespace(
        conn=conn, method="GET", raw_target=b"/a?b=1", version="HTTP/1.1", status=200,
        body_bytes_sent=10, bytes_sent=200, headers={b"user-agent": b"t"}, start=0.0,
        t_done=0.0, query="b=1", path="/a", host="h", header_bytes=0, body_received=0,
    )  # fmt: skip
    for key, value in over.items():
        setattr(x, key, value)
    return x


def test_formats_of_values_fixed_at_the_end_render_late():
    assert variables.compile_template(COMBINED).late_safe
    assert variables.compile_template("$request_time $msec $http_x_y $arg_b").late_safe


def test_formats_of_values_that_move_render_at_once():
    for template in ("$connection_requests", "$tcpinfo_rtt", "$closed_by", "$server_addr"):
        assert not variables.compile_template(template).late_safe, template


def test_a_late_line_tells_the_time_the_request_ended():
    ended = time.time() - 3600.5  # an hour ago: not the second the line is rendered in
    render = variables.compile_template("[$time_local] $msec $request_time")
    line = render(exchange(start=ended - 0.25, t_done=ended))
    expected = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(int(ended)))
    assert line == f"[{expected}] {ended:.3f} 0.250"
