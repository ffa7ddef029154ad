"""Internal errors in a server's logs: traceback chains and the markers asyncio prints.

A traceback is reported by its chain's last line (the exception that was not handled), so a
known bug can be set aside by that line while every other traceback still fails a test.
"""

from __future__ import annotations

import re

# Known webserv bugs, by the chain's last line → what causes it; each one with its own
# strict-xfail test. None today (the last, `RuntimeError: Cannot call write() after
# write_eof()` for bytes after `Connection: close`, is fixed).
KNOWN_CHAINS: dict[str, str] = {}
MARKERS = ("never awaited", "Task exception was never retrieved", "[crit]", "[alert]", "[emerg]")
_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def traceback_chains(text: str) -> list[str]:
    """The last exception line of every traceback chain in `text`."""
    lines = text.splitlines()
    chains = []
    for n, line in enumerate(lines):
        if not _EXCEPTION_LINE.fullmatch(line):
            continue
        following = next((later for later in lines[n + 1 :] if later.strip()), "")
        if not following.startswith(("During handling", "The above exception")):
            chains.append(line)
    if text.count("Traceback (most recent call last)") and not chains:
        chains.append("a traceback without an exception line")
    return chains


def internal_errors(text: str, known: dict[str, str] | None = None) -> list[str]:
    """Traceback chains (except `known` ones) and internal-error markers found in `text`."""
    known = KNOWN_CHAINS if known is None else known
    found = [chain for chain in traceback_chains(text) if chain not in known]
    found += [line for line in text.splitlines() if any(m in line for m in MARKERS)]
    return found
