"""Markdown's block structure, read one way for the whole package: fenced code, ATX headings, sections.

The prompt compiler (``core/_compile.py``) and ``DirectorySource`` (``core/_splitting.py``) both cut
Markdown at its headings; a heading inside a code block must never cut, and a line that is a heading
for one must be a heading for the other. So the rules live here once, close to CommonMark:

- A **fence** opens at a line of three or more backticks or tildes indented at most three spaces, and
  closes at the next such line of the same character; every line from the opening to the closing one
  is fenced (an unclosed fence runs to the end).
- An **ATX heading** is one to six ``#`` (indented at most three spaces) followed by a space or tab and
  text, outside fences; its title drops a closing run of ``#``.
- A **section** runs from a heading (of at most the caller's ``max_level``) to the next one; the lines
  before the first heading form a section of their own, with no heading and level 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MarkdownSection",
    "fenced_lines",
    "heading",
    "is_heading",
    "split_sections",
]

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S")
_HEADING_LEVEL = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class MarkdownSection:
    """Lines ``start`` to ``end`` (end exclusive) of a document: a heading's line and its body."""

    heading: str | None
    """The heading's title; None for the text before the first heading."""
    level: int
    """The heading's level (1-6); 0 for the text before the first heading."""
    start: int
    end: int


def is_heading(line: str) -> bool:
    """Whether ``line`` (fences aside: the caller knows whether it is fenced) is an ATX heading."""
    return _HEADING.match(line) is not None


def heading(line: str) -> tuple[int, str] | None:
    """The level and title of an ATX heading line, or None when ``line`` is not one."""
    if not _HEADING.match(line):
        return None
    match = _HEADING_LEVEL.match(line)
    return (len(match.group(1)), match.group(2)) if match else (1, line.strip())


def fenced_lines(lines: Sequence[str]) -> list[bool]:
    """Which lines are inside (or open/close) a fenced code block."""
    inside: list[bool] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)[0] * 3
                inside.append(True)
                continue
            inside.append(False)
        else:
            inside.append(True)
            if match and match.group(1).startswith(fence):
                fence = None
    return inside


def split_sections(lines: Sequence[str], *, max_level: int = 6) -> list[MarkdownSection]:
    """Cut ``lines`` at the headings of level ``max_level`` or less that are outside fences.

    The first section is always the text before the first heading (it may be empty: ``start ==
    end``); the sections cover every line once, in order.
    """
    starts: list[tuple[int, str | None, int]] = [(0, None, 0)]
    for n, (line, in_fence) in enumerate(zip(lines, fenced_lines(lines), strict=True)):
        found = None if in_fence else heading(line)
        if found is not None and found[0] <= max_level:
            starts.append((n, found[1], found[0]))
    ends = [n for n, _, _ in starts[1:]] + [len(lines)]
    return [MarkdownSection(title, level, n, end) for (n, title, level), end in zip(starts, ends, strict=True)]
