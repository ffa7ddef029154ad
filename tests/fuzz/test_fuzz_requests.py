"""Hypothesis fuzz of the running server: mutated requests, pipelines and chunked framing.

For every input, sent on a fresh connection that we then half-close:
- everything the server sends parses as a sequence of HTTP/1.x responses,
- the server closes within HANG_LIMIT (its own timeouts are 2-3 s): no hang,
- no traceback (except known bugs, conformance/logcheck.py) and no internal-error marker
  appears in its error log or on its stderr,
- it still answers a plain request on a new connection.
Well-formed keep-alive pipelines must also get one answer per request, in order, none 5xx,
until an answer that announces `Connection: close` (a body the server chose not to read).

The default run is bounded and derandomized (the same examples every run, a few hundred in
total); `pytest -m long tests/fuzz` runs the `_long` variants with many more random
examples.
"""

from __future__ import annotations

import pytest
from conformance.wire import alive
from fuzz_support import (
    HANG_LIMIT,
    SERVER_TIMEOUTS,
    mutated_chunked,
    mutated_pipelines,
    mutated_requests,
    request,
    send,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COMMON = dict(
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
BOUNDED = settings(max_examples=400, derandomize=True, **COMMON)
LONG = settings(max_examples=10000, **COMMON)
STRATEGIES = {
    "request": mutated_requests,
    "pipeline": mutated_pipelines,
    "chunked": mutated_chunked,
}
keep_alive_pipelines = st.lists(request(keep_alive=True), min_size=1, max_size=5)


def judge(fuzz_server, raw: bytes):
    reply = send(fuzz_server.port, raw)
    assert reply.closed, (
        f"not closed within {HANG_LIMIT}s (server timeouts {SERVER_TIMEOUTS}s) after {raw!r}; "
        f"got {reply.data[:300]!r}"
    )
    assert reply.responses is not None, f"a malformed answer {reply.data[:400]!r} to {raw!r}"
    errors = fuzz_server.new_internal_errors()
    assert not errors, f"internal errors after {raw!r}:\n" + "\n".join(errors[:10])
    assert alive(fuzz_server.port), f"the server no longer answers after {raw!r}"
    return reply


@pytest.mark.parametrize("kind", STRATEGIES)
@BOUNDED
@given(data=st.data())
def test_fuzz(fuzz_server, kind, data):
    judge(fuzz_server, data.draw(STRATEGIES[kind], label=kind))


@pytest.mark.long
@pytest.mark.parametrize("kind", STRATEGIES)
@LONG
@given(data=st.data())
def test_fuzz_long(fuzz_server, kind, data):
    judge(fuzz_server, data.draw(STRATEGIES[kind], label=kind))


def _pipeline(fuzz_server, requests: list[bytes]):
    """One answer per request, in order, until one that says `Connection: close` (the last)."""
    reply = judge(fuzz_server, b"".join(requests))
    answers = reply.responses
    said = f"{[r.status for r in answers]} for {requests}"
    closing = [n for n, r in enumerate(answers) if r.header("connection") == "close"]
    if closing:
        assert closing == [len(answers) - 1], f"answers after a `Connection: close`: {said}"
        assert len(answers) <= len(requests), said
    else:
        assert len(answers) == len(requests), said
    assert all(r.status < 500 for r in answers), said


@BOUNDED
@given(requests=keep_alive_pipelines)
def test_well_formed_pipeline_gets_one_answer_each(fuzz_server, requests):
    _pipeline(fuzz_server, requests)


@pytest.mark.long
@LONG
@given(requests=keep_alive_pipelines)
def test_well_formed_pipeline_gets_one_answer_each_long(fuzz_server, requests):
    _pipeline(fuzz_server, requests)
