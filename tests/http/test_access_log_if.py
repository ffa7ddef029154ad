"""`access_log ... if=CONDITION`: a request is logged unless CONDITION is empty or "0"
(nginx's rule), per log; the config errors."""

from __future__ import annotations

import pytest
from support import RawConn, RunningServer, wait_until

CONF = """
http {{
    log_format plain '$request_uri $status';
    server {{
        listen 127.0.0.1:{port};
        root {root};
        access_log {tmp}/all.log plain;
        access_log {tmp}/cond.log plain if=$arg_log;
        access_log {tmp}/header.log plain if=$http_x_log$arg_more;
    }}
}}
"""

# (target, extra header, in cond.log, in header.log)
CASES = [
    ("/a.txt?n=1", "", False, False),  # no such argument: empty
    ("/a.txt?n=2&log=1", "", True, False),
    ("/a.txt?n=3&log=0", "", False, False),  # "0"
    ("/a.txt?n=4&log=00", "", True, False),  # only "0" itself is false
    ("/a.txt?n=5&log=", "", False, False),
    ("/a.txt?n=6", "X-Log: yes\r\n", False, True),
    ("/a.txt?n=7", "X-Log: 0\r\n", False, False),
    ("/a.txt?n=8&more=0", "X-Log: 0\r\n", False, True),  # "00": two values joined
    ("/missing?n=9&log=yes", "", True, False),  # errors too
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RunningServer(tmp_path_factory.mktemp("logif"), CONF, {"a.txt": "a\n"}).start()
    yield srv
    srv.stop()


def lines(server, name: str) -> list[str]:
    path = server.tmp / name
    return path.read_text().splitlines() if path.exists() else []


def test_lines_follow_the_condition(server):
    with RawConn(server.port) as conn:
        for target, extra, _, _ in CASES:
            conn.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            assert conn.response()[0] in (200, 404)
        assert not conn.closed_by_peer()
    # every request is in the unconditional log once it is written (1 s flush)
    wait_until(lambda: len(lines(server, "all.log")) == len(CASES))
    status = {t: ("404" if "missing" in t else "200") for t, *_ in CASES}
    assert lines(server, "cond.log") == [f"{t} {status[t]}" for t, _, c, _ in CASES if c]
    assert lines(server, "header.log") == [f"{t} {status[t]}" for t, _, _, h in CASES if h]


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ("if=$nope", 'unknown "nope" variable'),
        ("iff=1", 'invalid parameter "iff=1"'),
    ],
)
def test_config_errors(tmp_path, option, reason):
    from webserv.config.errors import ConfigError
    from webserv.config.load import load

    conf = tmp_path / "webserv.conf"
    conf.write_text(
        "http {\n    server {\n        listen 8080;\n"
        f"        access_log {tmp_path}/x.log combined {option};\n    }}\n}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (4, reason)
