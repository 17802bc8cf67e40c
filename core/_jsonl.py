"""JSONL input files (sections, traces): one JSON value per line, every error naming file:line.

A line that is not JSON, nests too deeply or holds a string that is not Unicode text (a lone
surrogate from a ``\\ud800`` escape) is a :class:`MalformedInputError` with the file and the
1-based line; nothing is skipped silently. Blank lines are allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import InputError, MalformedInputError
from ._text import first_lone_surrogate

__all__ = ["iter_jsonl", "parse_jsonl_line"]


def iter_jsonl(path: str | Path, what: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of ``path``, read lazily.

    Args:
        path: the file.
        what: what the file is, for the message when it cannot be opened (``"traces file"``).
    """
    try:
        fh = Path(path).open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                yield lineno, parse_jsonl_line(raw, str(path), lineno)


def parse_jsonl_line(raw: bytes, path: str, line: int) -> Any:
    """One line's JSON value, or a :class:`MalformedInputError` naming ``path:line``."""
    try:
        value = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, ints over the digit limit
        raise MalformedInputError(path, line, f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise MalformedInputError(path, line, "JSON nested too deeply") from exc
    if b"\\ud" in raw or b"\\uD" in raw:  # only a surrogate escape can make a lone surrogate
        _check_unicode(value, path, line)
    return value


def _check_unicode(value: Any, path: str, line: int) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            at = first_lone_surrogate(item)
            if at is not None:
                raise MalformedInputError(
                    path, line, f"a string is not Unicode text (lone surrogate {item[at]!a}, a bad \\u escape)"
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
