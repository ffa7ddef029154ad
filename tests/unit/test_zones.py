"""zones.py: nginx's leaky-bucket arithmetic entry by entry, limit_conn counts, a full bucket,
and one table seen by forked processes (what the workers are)."""

from __future__ import annotations

import os

from webserv import zones
from webserv.zones import AGAIN, BUSY, FULL, OK, PASSED, REJECTED, Zone

KEY = b"\x7f\x00\x00\x02"
RATE = 2000  # 2r/s in milli-requests
NODELAY = 10**18


def test_the_bucket_fills_by_1000_and_drains_at_the_rate():
    z = Zone("limit_req", "t", 64 * 1024, "$k")
    # a new key: excess 0; then +1000 a request, less rate × ms / 1000 since the last
    assert z.req_lookup(KEY, 10_000, RATE, 2000, NODELAY, True, False) == (OK, 0)
    assert z.req_lookup(KEY, 10_000, RATE, 2000, NODELAY, True, False) == (OK, 1000)
    assert z.req_lookup(KEY, 10_100, RATE, 2000, NODELAY, True, False) == (OK, 1800)
    # over the burst: refused, and the state is left as it was
    assert z.req_lookup(KEY, 10_100, RATE, 2000, NODELAY, True, False) == (BUSY, 2800)
    assert z.req_state(KEY) == (1800, 10_100)
    # a second later it has drained by 2000, after a long idle to 0 (never below)
    assert z.req_lookup(KEY, 11_100, RATE, 2000, NODELAY, True, False) == (OK, 800)
    assert z.req_lookup(KEY, 99_000, RATE, 2000, NODELAY, True, False) == (OK, 0)
    # a clock far behind `last` counts as 1 ms (nginx's guard)
    assert z.req_lookup(KEY, 99_000 - 70_000, RATE, 5000, NODELAY, True, False) == (OK, 998)
    c = z.counters()
    assert (c["passed"], c["rejected"]) == (6, 1)


def test_lookup_without_account_checks_and_account_stores():
    z = Zone("limit_req", "t", 64 * 1024, "$k")
    assert z.req_lookup(KEY, 5_000, RATE, 0, 0, False, False) == (AGAIN, 0)
    assert z.req_account(KEY, 5_000, RATE, 0, False) == 1000  # nginx: a new node, then +1000
    assert z.req_lookup(KEY, 5_000, RATE, 5000, 0, False, False) == (AGAIN, 2000)
    assert z.req_state(KEY) == (1000, 5_000)
    assert z.counters()["delayed"] == 1


def test_a_full_bucket_evicts_for_limit_req_and_refuses_for_limit_conn():
    size = zones.HEADER + zones.BUCKET  # one bucket: every key lands in it
    req = Zone("limit_req", "r", size, "$k")
    for i in range(20):
        assert req.req_lookup(b"k%d" % i, 1_000 + i, 1, 0, 0, True, False)[0] == OK
    assert req.req_state(b"k19") is not None and req.req_state(b"k0") is None
    conn = Zone("limit_conn", "c", size, "$k")
    for i in range(zones.BUCKET_SLOTS):
        assert conn.conn_acquire(b"k%d" % i, 1, False) == PASSED
    assert conn.conn_acquire(b"new", 1, False) == FULL
    assert conn.conn_acquire(b"k0", 1, False) == REJECTED
    conn.conn_release(b"k0")
    assert conn.conn_acquire(b"new", 1, False) == PASSED
    assert conn.counters()["full"] == 1


def test_long_keys_are_told_apart_by_their_digest():
    z = Zone("limit_conn", "c", 64 * 1024, "$k")
    a, b = b"x" * 100 + b"a", b"x" * 100 + b"b"
    assert z.conn_acquire(a, 1, False) == PASSED
    assert z.conn_acquire(b, 1, False) == PASSED
    assert z.conn_acquire(a, 1, False) == REJECTED
    assert (z.conn_count(a), z.conn_count(b)) == (1, 1)


def test_forked_processes_share_one_table():
    z = Zone("limit_conn", "c", 64 * 1024, "$k")
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for _ in range(250):
                    if z.conn_acquire(KEY, 10**6, False) != PASSED:
                        code = 1
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert z.conn_count(KEY) == 1000  # no increment lost under the lock
    assert z.counters()["passed"] == 1000


def test_the_registry_gives_the_same_zone_while_it_lives():
    a = zones.zone("limit_req", "reg", 64 * 1024, "$k")
    assert zones.zone("limit_req", "reg", 64 * 1024, "$k") is a
    assert zones.zone("limit_req", "reg", 64 * 1024, "$other") is not a
