"""UTF-8 text: the one rule for turning text into bytes, and for reading bytes back as text.

Four uses, one function each, so nothing in the package spells out an encoding or an error mode:

- **Sizes, hashes and the package's own stores** (:func:`utf8`, :func:`from_utf8`) pass lone
  surrogates through, so they never raise whatever a ``str`` holds, and round-trip what they wrote.
- **Input and output files and arguments** are strict, and every failure is an :class:`InputError`
  naming the file or argument (:func:`read_text`, :func:`decode_utf8`, :func:`write_text`,
  :func:`encode_text`, :func:`check_text`): a file that is not UTF-8, or a string that is not Unicode
  text (a lone surrogate, which JSON's ``\\ud800`` escape can produce and which no UTF-8 writer, MCP
  client or tokenizer accepts), is bad input, never a ``UnicodeError`` from deep inside the library.
- **Text a client sends** (a turn or task query, tags, a task type: what a user or a model typed,
  arriving through MCP or an API call) is kept, not refused: :func:`clean_text` replaces each lone
  surrogate with U+FFFD where it enters, so traces, cache keys and telemetry only ever hold Unicode text.
- **Logs for people** (:func:`log_text`) show bytes that are not UTF-8 as ``\\x`` escapes and never raise.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from ._errors import InputError

__all__ = [
    "check_text",
    "clean_text",
    "decode_utf8",
    "encode_text",
    "estimate_tokens",
    "first_lone_surrogate",
    "from_utf8",
    "log_text",
    "read_text",
    "text_counts",
    "tokens_from_counts",
    "utf8",
    "write_text",
]

_WORD = re.compile(r"\S+")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def clean_text(text: str) -> str:
    """``text`` as Unicode text: each lone surrogate replaced with U+FFFD, the rest unchanged.

    For text a client sent, which the package keeps (records in traces, keys caches by, puts on
    spans) rather than refuses: a ``\\ud800`` escape in a JSON message must not make a trace line
    that is not UTF-8 or an attribute an exporter cannot encode. ``text`` itself when it is valid.
    """
    if first_lone_surrogate(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def from_utf8(data: bytes) -> str:
    """Bytes the package wrote with :func:`utf8` back to text (lone surrogates come back as they went).

    Raises:
        UnicodeDecodeError: ``data`` is not UTF-8 at all (a torn or foreign write in a store): a
            ``ValueError`` the store reading it treats as a miss.
    """
    return data.decode("utf-8", "surrogatepass")


def log_text(data: bytes) -> str:
    """``data`` for a person to read (a log): bytes that are not UTF-8 shown as ``\\x`` escapes."""
    return data.decode("utf-8", "backslashreplace")


def check_text(text: str, where: str) -> str:
    """``text`` itself when it is Unicode text; a lone surrogate is an :class:`InputError` naming ``where``."""
    at = first_lone_surrogate(text)
    if at is not None:
        raise InputError(f"{where}: not Unicode text (lone surrogate {text[at]!a} at character {at})")
    return text


def encode_text(text: str, where: str) -> bytes:
    """The UTF-8 bytes of ``text`` for a file or a peer; a lone surrogate is an :class:`InputError` naming ``where``."""
    return check_text(text, where).encode("utf-8")


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as text; bytes that are not UTF-8 raise an :class:`InputError` naming ``where`` and the byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def read_text(path: str | PathLike[str], what: str) -> str:
    """Read a UTF-8 text file; a missing, unreadable or non-UTF-8 file is an :class:`InputError`.

    Args:
        path: the file.
        what: what the file is, for the message (``"glossary file"``).
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    return decode_utf8(data, str(path))


def write_text(path: str | PathLike[str], text: str, what: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, byte for byte (no newline translation).

    Raises:
        InputError: ``text`` is not Unicode text, or the file cannot be written; names the file.
    """
    data = encode_text(text, f"{what} {path}")
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc


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
