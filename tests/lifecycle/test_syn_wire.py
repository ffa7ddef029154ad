"""The SYN webserv recorded (TCP_SAVED_SYN) is the SYN on the wire, as tcpdump saw it.

tcpdump captures the test's own handshake on the loopback interface with absolute sequence
numbers (-S) and the IP header (-v); the ISN, window, TCP options (tcpdump's own rendering,
which savedsyn.options_text reproduces), TTL / hop limit and source port must all match what
the server reports in the status JSON, the lifecycle_log and the `$syn_*` log variables.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from lifecycle_support import (
    closed_record,
    connect,
    get,
    log_record,
    read_response,
    start_tcpdump,
    status_of,
)
from support import RunningServer, ipv6_loopback, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format syn '$remote_port $syn_isn $syn_ttl $syn_options';
    access_log {tmp}/logs/access.log syn;
    lifecycle_log {tmp}/logs/lifecycle.log;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
        location /status {{ status on; access_log off; }}
    }}
}}
"""
CONF_V4 = CONF.replace("        listen [::1]:{port};\n", "")

# the SYN only (not the SYN-ACK), to the server's port. libpcap cannot index the TCP header
# of IPv6 packets with tcp[...], so for IPv6 the flags byte is addressed from the IPv6 header
# (40 bytes, no extension headers on loopback).
FILTERS = {
    4: "ip and tcp dst port {port} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    6: "ip6 and tcp dst port {port} and ip6[40+13] & 0x12 == 0x02",
}
LINE = re.compile(
    r"(?:IP \(.*?ttl (?P<ttl>\d+),.*?\)|IP6 \(.*?hlim (?P<hlim>\d+),.*?\))\s+"
    r"(?P<src>\S+)\.(?P<sport>\d+) > (?P<dst>\S+)\.(?P<dport>\d+): Flags \[(?P<flags>\w+)\],"
    r".*? seq (?P<seq>\d+), win (?P<win>\d+), options \[(?P<options>[^\]]*)\], length 0",
    re.S,
)
FLAG_LETTERS = {"S": "SYN", "E": "ECE", "W": "CWR", "e": "AE"}


@contextlib.contextmanager
def capture_syn(port: int, version: int, timeout: float = 10.0) -> Iterator[dict]:
    """tcpdump for one SYN to `port`; the dict is filled with what it printed on exit."""
    argv = ["tcpdump", "-i", "lo", "-n", "-S", "-v", "-l", "-c", "1"]
    argv.append(FILTERS[version].format(port=port))
    proc = start_tcpdump(argv, timeout)
    result: dict = {}
    try:
        yield result
        out, rest = proc.communicate(timeout=timeout)
        m = LINE.search(out)
        assert m, f"unexpected tcpdump output: {out!r} {rest!r}"
        result.update(m.groupdict())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("version", [4, 6])
def test_saved_syn_matches_the_wire(webserv, version):
    if version == 6 and not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    server: RunningServer = webserv(CONF if version == 6 else CONF_V4)
    host = "::1" if version == 6 else "127.0.0.1"
    with capture_syn(server.port, version) as wire:
        sock = connect(server.port, host)
    client_port = sock.getsockname()[1]
    sock.sendall(get("/missing", "Connection: close\r\n"))
    assert status_of(read_response(sock)) == 404
    sock.close()

    assert int(wire["sport"]) == client_port
    record = closed_record(server.port, client_port, host)
    syn = record["syn"]
    isn = int(wire["seq"])
    print(f"IPv{version} SYN on the wire: seq {isn}, win {wire['win']}, options [{wire['options']}], "
          f"ttl {wire['ttl'] or wire['hlim']}; recorded: isn {syn['isn']}, win {syn['window']}, "
          f"options [{syn['options_text']}], ttl {syn['ttl']}")  # fmt: skip
    assert syn["isn"] == isn
    assert syn["ip_version"] == version
    assert syn["src_port"] == client_port and syn["dst_port"] == server.port
    assert syn["src"] == wire["src"] and syn["dst"] == wire["dst"]
    assert syn["window"] == int(wire["win"])
    assert syn["ttl"] == int(wire["ttl"] or wire["hlim"])
    assert syn["flags"] == [FLAG_LETTERS[c] for c in wire["flags"]]
    # tcpdump's option list, e.g. "mss 65495,sackOK,TS val 123 ecr 0,nop,wscale 7"
    assert syn["options_text"] == wire["options"]
    wire_options = dict(
        o.split(" ", 1) for o in wire["options"].split(",") if o.startswith(("mss ", "wscale "))
    )
    assert syn["options"]["mss"] == int(wire_options["mss"])
    assert syn["options"]["wscale"] == int(wire_options["wscale"])
    # the kernel's view of the same handshake: our window scale is the one it accepted
    assert record["handshake"]["snd_wscale"] == syn["options"]["wscale"]
    assert record["sequence"]["client_isn"] == isn
    assert record["sequence"]["client_first_seq"] == (isn + 1) % 2**32

    # the same SYN in the lifecycle_log line and in the access log's $syn_* variables
    logged = log_record(server.tmp / "logs" / "lifecycle.log", client_port)
    assert logged["syn"] == syn
    line = wait_until(
        lambda: [ln.split() for ln in server.access_lines() if ln.startswith(f"{client_port} ")]
    )[0]
    assert line == [str(client_port), str(isn), wire["ttl"] or wire["hlim"],
                    wire["options"].replace(" ", "_")]  # fmt: skip
