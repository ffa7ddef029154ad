"""Range requests (RFC 9110 §14): parse a `Range` header against a representation's size.

nginx's rules (ngx_http_range_filter_module.c), which RFC 9110 §14.2 allows: a header whose
unit is not `bytes` is ignored; a `bytes=` set with a syntax error is rejected (416); the
ranges are read in order, and one more satisfiable range than `max_ranges` (or a set whose
lengths add up to more than the representation) gives the whole representation instead.
"""

from __future__ import annotations

UNSATISFIABLE = "unsatisfiable"

# nginx refuses numbers that do not fit its off_t (416); Python's ints would not overflow
_MAX_OFFSET = 2**63 - 1


def parse_range(
    header: str, size: int, max_ranges: int | None = None
) -> list[tuple[int, int]] | str | None:
    """Return inclusive (first, last) byte pairs, UNSATISFIABLE, or None for the full answer.

    None: the header is not a `bytes=` range set, or asks for more than MAX_RANGES satisfiable
    ranges (None: no limit), or for more bytes than SIZE in all. UNSATISFIABLE (416): a syntax
    error in the set, or no range that overlaps the representation.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges: list[tuple[int, int]] = []
    total = 0
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue  # RFC 9110 §5.6.1: empty list elements are allowed (nginx: 416)
        first_text, dash, last_text = item.partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        bad = (first_text and not _digits(first_text)) or (last_text and not _digits(last_text))
        if not dash or bad:
            return UNSATISFIABLE
        if not first_text:
            if not last_text:
                return UNSATISFIABLE
            suffix = int(last_text)
            if suffix > _MAX_OFFSET:
                return UNSATISFIABLE
            if suffix == 0:
                continue  # "-0" selects nothing
            first, last = max(0, size - suffix), size - 1
        else:
            first = int(first_text)
            if first > _MAX_OFFSET or (last_text and int(last_text) > _MAX_OFFSET):
                return UNSATISFIABLE
            if last_text and int(last_text) < first:
                return UNSATISFIABLE  # (RFC 9110 §14.1.1: invalid; nginx: 416)
            last = min(int(last_text), size - 1) if last_text else size - 1
        if first < size and first <= last:
            ranges.append((first, last))
            total += last - first + 1
            if max_ranges is not None and len(ranges) > max_ranges:
                return None  # nginx stops here: a later syntax error does not matter
    if not ranges:
        return UNSATISFIABLE
    if total > size:
        return None  # "0-10001, 0-0": more than the whole, a denial-of-service shape
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
