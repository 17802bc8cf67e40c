"""Deltas on re-request: a unified diff instead of the whole section, when the caller holds an older version.

A model that read a section earlier in the conversation and asks for it again after it changed
needs only what changed. ``request_context(section, since_version=v)`` answers with a unified diff
(``difflib``) from ``v`` to the current version when the warm cache still holds ``v`` (the cache is
keyed by version, so the old text is there until evicted) and the diff is smaller than the content;
otherwise with the full content. The same version gives an empty diff: nothing to transmit.
"""

from __future__ import annotations

import difflib

from ._text import utf8

__all__ = ["unified_delta"]


def unified_delta(section_id: str, old: str, new: str, *, old_version: str, new_version: str) -> str | None:
    """The unified diff from ``old`` to ``new``, or None when it is not smaller than ``new`` itself.

    Every diff line ends with a newline, so a text without a final newline diffs as if it had one.
    """
    if old_version == new_version:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{section_id}@{old_version}",
        tofile=f"{section_id}@{new_version}",
    )
    diff = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return diff if len(utf8(diff)) < len(utf8(new)) else None
