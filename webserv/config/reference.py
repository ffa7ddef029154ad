"""The README's directive reference, generated from the directive table."""

from __future__ import annotations

from .directives import DIRECTIVES

_ORDER = ("main", "events", "http", "server", "location")


def markdown() -> str:
    lines = ["| directive | default | contexts | meaning |", "|---|---|---|---|"]
    for spec in DIRECTIVES.values():
        contexts = ", ".join(c for c in _ORDER if c in spec.contexts)
        syntax = spec.syntax or spec.name
        default = spec.default_text or "—"
        lines.append(f"| `{syntax}` | {default} | {contexts} | {spec.doc} |")
    return "\n".join(lines)
