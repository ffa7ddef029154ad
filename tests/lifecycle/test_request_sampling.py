"""A long keep-alive connection's timeline is sampled; its counts and byte totals are not.

Every request up to SAMPLE_AFTER is kept, then every SAMPLE_EVERY-th, and always the last.
Each kept request carries its own number `n`, the record says `requests_sampled`, and what
the record counts (requests, bytes out, the sequence numbers) still covers every request:
live on the status page, after the close, and in the lifecycle log.
"""

from __future__ import annotations

from lifecycle_support import (
    closed_record,
    connect,
    get,
    log_record,
    read_response,
    status_json,
    status_of,
)

from webserv.lifecycle import MAX_REQUESTS_KEPT, SAMPLE_AFTER, SAMPLE_EVERY

CONF = """
http {{
    access_log off;
    lifecycle_log {tmp}/logs/lifecycle.log;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /status {{ status on; }}
    }}
}}
"""


def expected_numbers(count: int, closed: bool) -> list[int]:
    """The request numbers the record shows after `count` requests: the ring keeps the last
    MAX_REQUESTS_KEPT it took; the last request, if sampled out, is shown after them while
    the connection is open and goes into the ring when it has closed."""
    taken = [n for n in range(1, count + 1) if n <= SAMPLE_AFTER or n % SAMPLE_EVERY == 0]
    if taken[-1] == count:
        return taken[-MAX_REQUESTS_KEPT:]
    if closed:
        return (taken + [count])[-MAX_REQUESTS_KEPT:]
    return taken[-MAX_REQUESTS_KEPT:] + [count]


def run_requests(sock, count: int) -> int:
    """`count` GETs on one connection, alternating two sizes; the response bytes read."""
    total = 0
    for i in range(count):
        sock.sendall(get("/a.txt" if i % 2 else "/b.txt"))
        response = read_response(sock)
        assert status_of(response) == 200
        total += len(response)
    return total


def test_a_short_connection_keeps_every_request(webserv):
    server = webserv(CONF, files={"a.txt": "a" * 10, "b.txt": "b" * 300})
    with connect(server.port) as sock:
        run_requests(sock, 5)
        port = sock.getsockname()[1]
    record = closed_record(server.port, port)
    assert record["request_count"] == 5
    assert record["requests_sampled"] is None
    assert [r["n"] for r in record["requests"]] == [1, 2, 3, 4, 5]


def test_a_long_connection_is_sampled_and_still_counts_everything(webserv):
    server = webserv(CONF, files={"a.txt": "a" * 10, "b.txt": "b" * 300})
    count = SAMPLE_AFTER + 3 * SAMPLE_EVERY + 5  # ends between two samples
    with connect(server.port) as sock:
        out = run_requests(sock, count)
        port = sock.getsockname()[1]
        # live: the last request shows although it was not sampled
        live = next(c for c in status_json(server.port)["open"] if c["client"]["port"] == port)
        assert live["request_count"] == count
        assert [r["n"] for r in live["requests"]] == expected_numbers(count, closed=False)
        assert live["requests_sampled"] == {
            "after": SAMPLE_AFTER,
            "every": SAMPLE_EVERY,
            "last": True,
        }
    record = closed_record(server.port, port)
    numbers = [r["n"] for r in record["requests"]]
    assert numbers == expected_numbers(count, closed=True)
    assert numbers[-1] == count  # the last request, sampled out, was kept at the close
    assert len(numbers) == MAX_REQUESTS_KEPT
    assert record["request_count"] == count
    assert record["requests_sampled"]["every"] == SAMPLE_EVERY
    # each kept entry is its own request's: odd numbers fetched b.txt, even a.txt
    for r in record["requests"]:
        assert r["target"] == ("/b.txt" if r["n"] % 2 else "/a.txt")
    # what the record counts covers every request, sampled out or not
    assert record["sequence"]["server_data_bytes_sent"] == out
    logged = log_record(server.tmp / "logs" / "lifecycle.log", port)
    assert [r["n"] for r in logged["requests"]] == numbers
    assert logged["request_count"] == count
