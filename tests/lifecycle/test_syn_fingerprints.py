"""$ja4t, $syn_signature and $syn_os for a real connection, the same values as the status
JSON's "syn" object, and /metrics counting the connection under its OS family (Linux: this
machine's own stack, over loopback)."""

from __future__ import annotations

import socket

from lifecycle_support import closed_record, connect, get, read_response, status_of
from prometheus_client.parser import text_string_to_metric_families
from support import wait_until

from webserv import synprint

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format prints '$remote_port $ja4t $syn_signature $syn_os';
    access_log {tmp}/logs/access.log prints;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; access_log off; }}
        location = /metrics {{ metrics on; access_log off; }}
    }}
}}
"""


def by_os(port: int) -> dict[str, float]:
    """Connections by OS family, and under "closed" all the connections closed."""
    with connect(port) as sock:
        sock.sendall(get("/metrics", "Connection: close\r\n"))
        response = read_response(sock)
    assert status_of(response) == 200
    body = response.partition(b"\r\n\r\n")[2].decode()
    out: dict[str, float] = {"closed": 0}
    for family in text_string_to_metric_families(body):
        if family.name == "webserv_connections_by_os":
            assert family.type == "counter"
            for s in family.samples:
                if s.name == "webserv_connections_by_os_total":
                    out[s.labels["os_family"]] = s.value
        if family.name == "webserv_connections_closed":
            out["closed"] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return out


def test_fingerprint_variables_json_and_metrics(webserv):
    server = webserv(CONF, files={"a.txt": "hello\n"})
    before = by_os(server.port)
    assert set(before) == {*synprint.FAMILIES, "closed"}
    with connect(server.port) as sock:
        port = sock.getsockname()[1]
        sock.sendall(get("/a.txt"))
        assert status_of(read_response(sock)) == 200
        line = next(line for line in server.wait_access_lines(1) if line.startswith(f"{port} "))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""
    _, ja4t, sig, os_family = line.split()
    record = closed_record(server.port, port)
    syn = record["syn"]
    assert (ja4t, sig, os_family) == (syn["ja4t"], syn["signature"], syn["os_family"])
    mss, wscale = syn["options"]["mss"], syn["options"]["wscale"]
    assert ja4t == f"{syn['window']}_2-4-8-1-3_{mss}_{wscale}"  # 65495_2-4-8-1-3_65495_N
    assert sig.startswith(f"4:64:0:{mss}:") and ":mss,sok,ts,nop,ws:" in sig
    assert os_family == "Linux"
    # every connection closed since (this one, the scrapes', the status page's) is counted,
    # and all under Linux: each one's SYN came from this machine
    after = wait_until(lambda: (m := by_os(server.port))["closed"] >= before["closed"] + 2 and m)
    assert after["Linux"] - before["Linux"] == after["closed"] - before["closed"]
    assert all(after[f] == before[f] for f in synprint.FAMILIES if f != "Linux")
