"""Caller-supplied values: the bounds an engine enforces and the checks that refuse bad ones.

Every refusal is one :class:`InputError` sentence naming the argument, so a front end can pass it
to the model or the user as is. Free text that is accepted (queries, tags, task types, node names) is
made Unicode text here, as it enters (:func:`~prehydrate._text.clean_text`); identifiers (session,
tenant, partition) that are not Unicode text are refused, as two of them would become one if cleaned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import ConfigError, InputError
from ._text import check_text, clean_text

__all__ = [
    "EngineLimits",
    "check_identifier",
    "check_optional_identifier",
    "check_optional_str",
    "optional_text",
    "string_tuple",
    "text_tuple",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineLimits:
    """Input bounds: oversized requests are refused with a clear error instead of being served."""

    max_query_chars: int = 4096
    """Longest free-text query accepted by ``request_context(query=...)``."""
    max_content_bytes: int = 16 << 20
    """Largest hydrated section accepted from a source."""
    max_session_turns: int = 256
    """Turns a session keeps, the most recent ones: its history for prediction and its recorded
    trace. A conversation of 1,000 prompts must not grow the process (or its trace line) forever."""
    max_turn_calls: int = 1024
    """Calls a turn keeps for prediction and its trace, the most recent ones (its report counts all)."""

    def __post_init__(self) -> None:
        for name in ("max_query_chars", "max_content_bytes", "max_session_turns", "max_turn_calls"):
            if getattr(self, name) < 1:
                raise ConfigError(f"EngineLimits.{name} must be at least 1")

    def kept_query(self, query: str) -> str:
        """A query as kept in history and traces: at most ``max_query_chars`` characters."""
        return query if len(query) <= self.max_query_chars else query[: self.max_query_chars]


MAX_LABEL_CHARS = 512
"""Longest task type, node or tag accepted: labels, kept in every trace line of the session."""


def check_optional_str(value: object, what: str) -> None:
    """Refuse anything but a string (of at most :data:`MAX_LABEL_CHARS`) or None for ``what``."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"{what} must be a string or None, got {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
        raise InputError(f"{what} may have at most {MAX_LABEL_CHARS} characters, got {len(value)}")


def string_tuple(values: object, what: str) -> tuple[str, ...]:
    """A tuple of strings from an iterable of strings; a bare string is refused (it would split into letters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError(f"{what} must be a list of strings, got {type(values).__name__}")
    out = tuple(values)
    if not all(isinstance(v, str) for v in out):
        raise InputError(f"{what} must be a list of strings")
    return out


def optional_text(value: object, what: str) -> str | None:
    """A label (task type, node) checked as by :func:`check_optional_str` and made Unicode text."""
    check_optional_str(value, what)
    return clean_text(value) if isinstance(value, str) else None


def text_tuple(values: object, what: str) -> tuple[str, ...]:
    """Tags: a tuple of strings as by :func:`string_tuple`, each made Unicode text."""
    return tuple(clean_text(v) for v in string_tuple(values, what))


def check_identifier(value: object, what: str) -> str:
    """A non-empty string of Unicode text naming a session, tenant or partition; else an InputError.

    Never cleaned: ``a\\ud800`` and ``a\\udfff`` would both become ``a\\ufffd``, one tenant's scope.
    """
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} must be a non-empty string")
    return check_text(value, what)


def check_optional_identifier(value: object, what: str) -> str | None:
    """A partition: None, or a string (possibly empty) of Unicode text; never cleaned, as above."""
    check_optional_str(value, what)
    return check_text(value, what) if isinstance(value, str) else None
