"""phases.run / phases.check: the loop over a location's phases (pure: no server needed;
the features that register phases test them over real sockets)."""

import asyncio
from types import SimpleNamespace

import pytest

from webserv import phases
from webserv.http.errors import HttpError
from webserv.http.response import Response


class Phase:
    def __init__(self, name, log, result=None, refuse=None):
        self.name, self.log, self.result, self.refuse = name, log, result, refuse

    def check(self, ex):
        self.log.append(f"check {self.name}")
        return self.refuse

    def run(self, ex):
        self.log.append(f"run {self.name}")
        result = self.result
        return result(ex) if callable(result) else result


def exchange(*chain):
    return SimpleNamespace(location=SimpleNamespace(phases=tuple(chain) or None), redirects=0)


def content(ex):
    return Response(200, b"", b"content")


def reroute(ex):
    ex.redirects += 1
    ex.location = ex.next_location


def test_no_phases_answers_with_the_content_at_once():
    assert phases.run(exchange(), content, reroute).body == b"content"


def test_every_phase_runs_in_order_then_the_content():
    log = []
    ex = exchange(Phase("a", log), Phase("b", log))
    assert phases.run(ex, content, reroute).body == b"content"
    assert log == ["check a", "run a", "check b", "run b"]


def test_a_response_stops_the_chain():
    log = []
    ex = exchange(Phase("a", log, Response(302)), Phase("b", log))
    assert phases.run(ex, content, reroute).status == 302
    assert log == ["check a", "run a"]


def test_a_refusal_in_check_is_raised_before_run():
    log = []
    ex = exchange(Phase("a", log, refuse=HttpError(403)), Phase("b", log))
    with pytest.raises(HttpError) as info:
        phases.run(ex, content, reroute)
    assert info.value.status == 403 and log == ["check a"]
    assert phases.check(ex).status == 403


def test_check_is_none_when_no_phase_refuses():
    assert phases.check(exchange(Phase("a", []), Phase("b", []))) is None


def test_reroute_starts_over_with_the_new_locations_phases():
    log = []
    ex = exchange(Phase("a", log, phases.REROUTE), Phase("never", log))
    ex.next_location = SimpleNamespace(phases=(Phase("c", log),))
    assert phases.run(ex, content, reroute).body == b"content"
    assert log == ["check a", "run a", "check c", "run c"] and ex.redirects == 1


def test_a_phase_that_waits_continues_the_chain_after_it():
    log = []

    async def later(result):
        await asyncio.sleep(0)
        return result

    ex = exchange(
        Phase("a", log, lambda ex: later(None)),
        Phase("b", log, lambda ex: later(None)),
        Phase("c", log),
    )
    answer = phases.run(ex, content, reroute)
    assert not isinstance(answer, Response)
    assert asyncio.run(answer).body == b"content"
    assert log == ["check a", "run a", "check b", "run b", "check c", "run c"]


def test_a_phase_that_waits_can_answer_or_reroute():
    log = []

    async def later(result):
        return result

    ex = exchange(Phase("a", log, lambda ex: later(Response(429))), Phase("b", log))
    assert asyncio.run(phases.run(ex, content, reroute)).status == 429
    ex = exchange(Phase("a", log, lambda ex: later(phases.REROUTE)))
    ex.next_location = SimpleNamespace(phases=None)
    assert asyncio.run(phases.run(ex, content, reroute)).body == b"content"


def test_an_unknown_answer_is_a_bug_not_a_silent_pass():
    with pytest.raises(TypeError):
        phases.run(exchange(Phase("a", [], "yes")), content, reroute)
