"""The TCP access-log variables give plausible numbers, and the same ones the record holds.

`$tcpinfo_*` are read from the kernel when the line is written (nginx's meaning: µs for
rtt/rttvar, segments for snd_cwnd, bytes for rcv_space); `$handshake_rtt`, `$accept_queue_ms`
and `$syn_*` come from the connection's record, taken once at accept.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle_support import closed_record, connect, get, read_response, status_of

FORMAT = (
    "$remote_port $connection_requests $tcpinfo_rtt $tcpinfo_rttvar $tcpinfo_snd_cwnd "
    "$tcpinfo_rcv_space $tcpinfo_segs_in $tcpinfo_bytes_received $tcpinfo_state "
    "$handshake_rtt $accept_queue_ms $syn_isn $syn_options $syn_ttl"
)
FIELDS = FORMAT.replace("$", "").split()
CONF = f"""
error_log {{tmp}}/error.log info;
http {{{{
    log_format tcp '{FORMAT}';
    access_log {{tmp}}/logs/access.log tcp;
    server {{{{
        listen 127.0.0.1:{{port}};
        root {{root}};
        location /status {{{{ status on; access_log off; }}}}
    }}}}
}}}}
"""
FILES = {"a.txt": "hello\n", "b.txt": "world\n"}


def test_tcp_variables_in_access_log(webserv):
    server = webserv(CONF, files=FILES)
    requests = [get("/a.txt"), get("/b.txt", "User-Agent: vars\r\n")]
    with connect(server.port) as sock:
        port = sock.getsockname()[1]
        for request in requests:
            sock.sendall(request)
            assert status_of(read_response(sock)) == 200
        # open until both lines are written, so that no FIN can be in the last one's numbers
        lines = [
            dict(zip(FIELDS, line.split(), strict=True))
            for line in server.wait_access_lines(2)
            if line.startswith(f"{port} ")
        ]
    assert [v["connection_requests"] for v in lines] == ["1", "2"]
    record = closed_record(server.port, port)
    default_ttl = int(Path("/proc/sys/net/ipv4/ip_default_ttl").read_text())

    for i, v in enumerate(lines):
        # nginx's four, in nginx's units: rtt and rttvar in µs (a loopback RTT is well
        # under a second: this checks the unit, not the speed), cwnd in segments (Linux
        # starts at 10 and nothing was lost), rcv_space in bytes
        rtt, rttvar = int(v["tcpinfo_rtt"]), int(v["tcpinfo_rttvar"])
        assert 0 < rtt < 1_000_000 and 0 < rttvar < 1_000_000
        assert int(v["tcpinfo_snd_cwnd"]) >= 10
        assert int(v["tcpinfo_rcv_space"]) > 0
        # any other field by name, read when the line is written, which is just after the
        # response went to the kernel: at least this request's bytes, and maybe already the
        # next request's, which the client may send that fast over loopback
        received = int(v["tcpinfo_bytes_received"])
        assert sum(len(r) for r in requests[: i + 1]) <= received <= sum(map(len, requests))
        assert v["tcpinfo_state"] == "1"  # TCP_ESTABLISHED
        # from the record: the same on both lines, and the same as the status JSON's
        assert int(v["handshake_rtt"]) == record["handshake"]["rtt_us"] > 0
        assert int(v["accept_queue_ms"]) == record["handshake"]["accept_queue_ms"] >= 0
        assert int(v["syn_isn"]) == record["syn"]["isn"]
        assert v["syn_options"] == record["syn"]["options_text"].replace(" ", "_")
        assert v["syn_options"].startswith("mss_") and "wscale_" in v["syn_options"]
        assert int(v["syn_ttl"]) == record["syn"]["ttl"] == default_ttl
    # the last line's read came after every request byte: exact
    assert int(lines[1]["tcpinfo_bytes_received"]) == sum(map(len, requests))
    # segments in: at least the handshake's ACK and the data; never fewer later
    assert int(lines[0]["tcpinfo_segs_in"]) >= 2
    assert int(lines[1]["tcpinfo_segs_in"]) >= int(lines[0]["tcpinfo_segs_in"])
    assert lines[0]["handshake_rtt"] == lines[1]["handshake_rtt"]
