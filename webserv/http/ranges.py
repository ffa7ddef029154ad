"""Range requests (RFC 9110 §14): parse a `Range` header against a representation's size."""

from __future__ import annotations

MAX_RANGES = 64  # more parts than this is a denial-of-service shape, not a download

UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str, size: int) -> list[tuple[int, int]] | str | None:
    """Return inclusive (first, last) byte pairs, UNSATISFIABLE, or None to ignore the header.

    A header that is not a valid `bytes=` range set is ignored (the full representation is
    sent, as RFC 9110 §14.2 allows); a valid set none of whose ranges overlaps the
    representation is unsatisfiable (416).
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges: list[tuple[int, int]] = []
    items = spec.split(",")
    if len(items) > MAX_RANGES:
        return None
    for item in items:
        item = item.strip()
        if not item:
            continue  # RFC 9110 §5.6.1: empty list elements are allowed
        first_text, dash, last_text = item.partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        bad = (first_text and not _digits(first_text)) or (last_text and not _digits(last_text))
        if not dash or bad:
            return None
        if not first_text:
            if not last_text:
                return None
            suffix = int(last_text)
            if suffix == 0:
                continue  # "-0" selects nothing
            first, last = max(0, size - suffix), size - 1
        else:
            first = int(first_text)
            # only an explicit last before first is invalid syntax; "20-" on a 20-byte file
            # is valid but unsatisfiable (416), not a header to ignore
            if last_text and int(last_text) < first:
                return None
            last = min(int(last_text), size - 1) if last_text else size - 1
        if first < size and first <= last:
            ranges.append((first, last))
    if not ranges:
        return UNSATISFIABLE
    return ranges


def _digits(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²" or "١", which int() refuses or misreads
    return text.isascii() and text.isdigit()


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or adjacent ranges (RFC 9110 §14.2 allows it; it bounds the parts)."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged
