"""UTF-8 text: the one rule for turning text into bytes, and for reading bytes back as text.

Sizes and hashes encode with ``surrogatepass``, so they never raise, whatever a ``str`` holds.
Reading is strict, and every failure is an :class:`InputError` naming where: a file that is not
UTF-8, or a string that is not Unicode text (a lone surrogate, which JSON's ``\\ud800`` escape can
produce and which no UTF-8 writer, MCP client or tokenizer accepts), is bad input, never a
``UnicodeError`` from deep inside the library.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import InputError

__all__ = [
    "decode_utf8",
    "estimate_tokens",
    "first_lone_surrogate",
    "read_text",
    "text_counts",
    "tokens_from_counts",
    "utf8",
]

_WORD = re.compile(r"\S+")


def utf8(text: str) -> bytes:
    """The UTF-8 bytes of ``text`` for sizes and hashes (lone surrogates pass through, never raise)."""
    return text.encode("utf-8", "surrogatepass")


def first_lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (not Unicode text), or None when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as text; bytes that are not UTF-8 raise an :class:`InputError` naming ``where`` and the byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def read_text(path: str | Path, what: str) -> str:
    """Read a UTF-8 text file; a missing, unreadable or non-UTF-8 file is an :class:`InputError`.

    Args:
        path: the file.
        what: what the file is, for the message (``"glossary file"``).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    return decode_utf8(data, str(path))


def text_counts(text: str) -> tuple[int, int]:
    """UTF-8 bytes and whitespace-separated words: the two inputs of the token estimate."""
    return len(utf8(text)), len(_WORD.findall(text))


def tokens_from_counts(nbytes: int, nwords: int) -> int:
    """The token estimate from its counts (the compiler sums the counts of pieces without joining them)."""
    if not nbytes:
        return 0
    return max(1, round(max(nbytes / 4, nwords / 0.75)))


def estimate_tokens(text: str) -> int:
    """Approximate token count without a tokenizer: about 4 bytes or 0.75 words per token.

    The larger of the two estimates is used so that code (few spaces) and prose both land close
    to what BPE tokenizers report; budgets only need the right order of magnitude.
    """
    return tokens_from_counts(*text_counts(text))
