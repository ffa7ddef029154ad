"""Reading the TAP of one nginx-tests file: the counts, and why each failed test failed.

"Passed" is strict: an `ok` that is not a skip (a `not ok # TODO` is not a pass, an
`ok # TODO` is). With TEST_NGINX_VERBOSE the suite logs each request (`# >> `) and answer
(`# << `) before the test's line, which is what `failures` sorts by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --- TAP ---------------------------------------------------------------------------------

_PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#\s*(?i:skip)\S*\s*(.*))?\s*$")
_TEST = re.compile(r"^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(\w+)\s*(.*))?$")


@dataclass
class Tap:
    planned: int | None = None
    skip_all: str | None = None  # the reason, when the whole file skipped
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0  # `ok N # skip`
    todo_failed: int = 0  # `not ok N # TODO` (also in failed)
    ran: int = 0
    bail_out: str | None = None


def parse_tap(text: str) -> Tap:
    tap = Tap()
    for line in text.splitlines():
        if m := _PLAN.match(line):
            tap.planned = int(m.group(1))
            if tap.planned == 0:
                tap.skip_all = (m.group(2) or "").strip() or "skipped"
            continue
        if line.startswith("Bail out!"):
            tap.bail_out = line[len("Bail out!") :].strip()
            continue
        m = _TEST.match(line)
        if not m:
            continue
        not_ok, _, name, directive, reason = m.groups()
        directive = (directive or "").lower()
        if directive == "todo" and (reason or "").startswith("& SKIP"):
            directive = "skip"  # Test::More's todo_skip
        tap.ran += 1
        if directive == "skip":
            tap.skipped += 1
        elif not_ok:
            tap.failed.append(name)
            if directive == "todo":
                tap.todo_failed += 1
        else:
            tap.passed += 1
    return tap


def planned_in_source(source: str) -> int | None:
    """The `plan(N)` a file makes, plus the 2 tests Test::Nginx adds (no alerts, sanitizer)."""
    m = re.search(r"->plan\((\d+)\)", source) or re.search(r"\bplan\((\d+)\)", source)
    return int(m.group(1)) + 2 if m else None


# --- why a test failed, from its log -----------------------------------------------------------


def failures(tap_text: str) -> list[tuple[str, str]]:
    """(test, cause) for each failed test, from the requests and answers logged before its
    line; and a pass whose answer was a 400 to a bare-LF request (it expected an error)."""
    out: list[tuple[str, str]] = []
    sent: list[str] = []
    got: list[str] = []
    for line in tap_text.splitlines():
        if line.startswith("# >> "):
            sent.append(line[5:])
        elif line.startswith("# << "):
            got.append(line[5:])
        elif m := _TEST.match(line):
            not_ok, _, name, directive, _ = m.groups()
            why = cause(sent, got)
            if not_ok and (directive or "").lower() != "todo":
                out.append((name, why))
            elif not not_ok and why == BARE_LF:
                out.append((name, "passed on " + BARE_LF))
            sent, got = [], []
    return out


BARE_LF = "400 to a bare-LF request"


def cause(sent: list[str], got: list[str]) -> str:
    bare_lf = any(line.endswith("\\x0a") and not line.endswith("\\x0d\\x0a") for line in sent)
    statuses = [g for g in got if re.match(r"HTTP/\d\.\d \d{3}", g)]
    if not sent:
        return "no request logged"
    if not got:
        return "no answer"
    if bare_lf and any(" 400 " in s for s in statuses):
        return BARE_LF
    return "other answer"
