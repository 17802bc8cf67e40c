"""Caller-supplied values: the bounds an engine enforces and the checks that refuse bad ones.

Every refusal is one :class:`InputError` sentence naming the argument, so a front end can pass it
to the model or the user as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import InputError

__all__ = ["EngineLimits", "check_optional_str", "string_tuple"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineLimits:
    """Input bounds: oversized requests are refused with a clear error instead of being served."""

    max_query_chars: int = 4096
    """Longest free-text query accepted by ``request_context(query=...)``."""
    max_content_bytes: int = 16 << 20
    """Largest hydrated section accepted from a source."""


def check_optional_str(value: object, what: str) -> None:
    """Refuse anything but a string or None for ``what``."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"{what} must be a string or None, got {type(value).__name__}")


def string_tuple(values: object, what: str) -> tuple[str, ...]:
    """A tuple of strings from an iterable of strings; a bare string is refused (it would split into letters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError(f"{what} must be a list of strings, got {type(values).__name__}")
    out = tuple(values)
    if not all(isinstance(v, str) for v in out):
        raise InputError(f"{what} must be a list of strings")
    return out
