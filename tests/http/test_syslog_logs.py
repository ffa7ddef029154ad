"""error_log and access_log to syslog (nginx's `syslog:` targets) from the real server to a
real UDP receiver: the RFC 3164 header, facility and severity, the tag, nohostname, every
line of a level sent, `if=`, and a receiver that goes away and comes back while the server
serves on. Config errors come with file:line."""

from __future__ import annotations

import re
import socket

import pytest
from support import RawConn, RunningServer, free_port

HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} (?P<host>\S+ )?(?P<tag>\w+): (?P<msg>.*)",
    re.S,
)
CONF = """
error_log {tmp}/main.log info;
http {{
    log_format uri "$uri:$status";
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /a/ {{ access_log syslog:server=127.0.0.1:@RX@ uri; }}
        location /af/ {{ access_log syslog:server=127.0.0.1:@RX@,facility=user,tag=SEETHIS uri; }}
        location /as/ {{ access_log syslog:severity=alert,server=127.0.0.1:@RX@,nohostname uri; }}
        location /a2/ {{
            access_log syslog:server=127.0.0.1:@RX@ uri;
            access_log syslog:server=127.0.0.1:@RX@ uri;
        }}
        location /if/ {{ access_log syslog:server=127.0.0.1:@RX@ uri if=$arg_log; }}
        location /e/ {{ error_log syslog:server=127.0.0.1:@RX@; }}
        location /ef/ {{ error_log syslog:server=127.0.0.1:@RX@,facility=user,severity=alert; }}
        location /e2/ {{
            error_log syslog:server=127.0.0.1:@RX@;
            error_log syslog:server=127.0.0.1:@RX@ warn;
            error_log syslog:server=127.0.0.1:@RX@ emerg;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def rx_port():
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory, rx_port):
    srv = RunningServer(tmp_path_factory.mktemp("syslog"), CONF.replace("@RX@", str(rx_port)))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def rx(rx_port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", rx_port))
    sock.settimeout(5)
    yield sock
    sock.close()


def get(server, target: str) -> int:
    with RawConn(server.port) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return conn.response()[0]


def messages(rx, count: int) -> list[re.Match]:
    out = []
    for _ in range(count):
        m = HEADER.fullmatch(rx.recv(65536).decode())
        assert m is not None
        out.append(m)
    return out


def test_access_log_lines(server, rx):
    host = socket.gethostname().lower() + " "
    assert get(server, "/a/x") == 404
    (m,) = messages(rx, 1)
    assert (m["pri"], m["host"], m["tag"], m["msg"]) == ("190", host, "webserv", "/a/x:404")
    get(server, "/af/x")
    (m,) = messages(rx, 1)
    assert (m["pri"], m["tag"]) == ("14", "SEETHIS")  # user.info
    get(server, "/as/x")
    (m,) = messages(rx, 1)
    assert (m["pri"], m["host"]) == ("185", None)  # local7.alert, no host name
    get(server, "/a2/x")
    assert [m["msg"] for m in messages(rx, 2)] == ["/a2/x:404"] * 2


def test_access_log_if(server, rx):
    for target in ("/if/no", "/if/empty?log=", "/if/zero?log=0", "/if/yes?log=1"):
        get(server, target)
    (m,) = messages(rx, 1)
    assert m["msg"] == "/if/yes:404"


def test_error_log_lines_and_levels(server, rx):
    get(server, "/e/missing")
    (m,) = messages(rx, 1)
    assert m["pri"] == "187"  # local7.err: the level is the severity
    assert re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ open\(\) ", m["msg"])
    get(server, "/ef/missing")
    (m,) = messages(rx, 1)
    assert m["pri"] == "11"  # user.err: severity= does not apply to an error log
    get(server, "/e2/missing")  # error and warn lines take it, emerg does not
    get(server, "/a/marker")  # then a line that comes after them
    got = []
    while not got or got[-1] != "/a/marker:404":
        got.append(HEADER.fullmatch(rx.recv(65536).decode())["msg"])
    assert len(got) == 3 and all("[error]" in msg for msg in got[:2])


def test_a_receiver_that_goes_away_and_comes_back(server, rx_port):
    for _ in range(3):
        assert get(server, "/a/gone") == 404  # nobody listens: dropped, served all the same
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", rx_port))
    sock.settimeout(5)
    try:
        get(server, "/a/gone")  # (the refusal of the one before may still make one miss)
        get(server, "/a/back")
        got = []
        while "/a/back:404" not in got:
            got.append(HEADER.fullmatch(sock.recv(65536).decode())["msg"])
    finally:
        sock.close()
    assert server.alive()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "access_log syslog:server=127.0.0.1 combined buffer=4k;",
            "logs to syslog cannot be buffered",
        ),
        ("access_log syslog:server=127.0.0.1 combined gzip;", "logs to syslog cannot be buffered"),
        ("access_log syslog:facility=user;", "no syslog server specified"),
        ("error_log syslog:server=127.0.0.1,facility=nope;", 'unknown syslog facility "nope"'),
        (
            "error_log syslog:server=127.0.0.1,tag=a-b;",
            'syslog "tag" only allows alphanumeric characters and underscore',
        ),
        ("error_log memory:32m;", 'webserv does not log to memory: "memory:32m"'),
    ],
)
def test_config_errors(tmp_path, line, reason):
    from webserv.config import ConfigError, load

    conf = tmp_path / "webserv.conf"
    conf.write_text(
        "http {\n    server {\n        listen 127.0.0.1:8080;\n        " + line + "\n    }\n}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(str(conf))
    assert (info.value.line, info.value.message) == (4, reason)
