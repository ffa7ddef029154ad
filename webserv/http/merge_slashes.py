"""`merge_slashes off`: a request path's dot segments removed, its repeated slashes kept.

request.normalize_path is the default (`merge_slashes on`): it merges them. With `off`,
nginx keeps every empty segment, and a ".." removes the segment before it even when that
one is empty (`/a//../b` → `/a/b`, `/a///../b` → `/a//b`; checked against nginx 1.22).
Which one a request gets is decided at load, per listen group: nginx reads the flag of the
address's default server, since it parses the target before the Host chooses a server
(load.py sets ListenGroup.normalize_path; reader.py calls it). Owns no other rule of a path.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from .request import normalize_path, remove_dot_segments


def normalize_path_unmerged(raw: bytes) -> str:
    """normalize_path's result for RAW, but `//` stays `//` (same errors, same decoding)."""
    merged = normalize_path(raw)  # the 400s (no leading "/", bad %-escapes) as the default's
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    if b"//" not in raw:
        return merged  # no empty segment: the two agree
    return remove_dot_segments(raw, merge=False)
