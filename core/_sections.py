"""Sections: the unit of context, with the stub a prompt carries and the content hydration makes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ._text import estimate_tokens, utf8

__all__ = [
    "DEFAULT_TENANT",
    "Hydrated",
    "Scope",
    "Section",
    "content_version",
    "estimate_tokens",
    "one_line_summary",
]

DEFAULT_TENANT = "default"


def content_version(text: str) -> str:
    """The version of a piece of content: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(utf8(text)).hexdigest()[:16]


def one_line_summary(text: str, limit: int = 120) -> str:
    """The first non-heading line of ``text``, cut to ``limit`` characters."""
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        if line and not raw.lstrip().startswith("#"):
            return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Who is asking: the tenant (and optional partition) scope cache entries, prefetches and sessions.

    The cache scope is the pair (``tenant``, ``partition``), carried as two fields in every cache
    key, never joined into one string. ``session`` says which conversation asked (sources and
    traces see it) but does not scope the cache unless it is also the partition.
    """

    tenant: str = DEFAULT_TENANT
    """Tenant (customer, user or deployment) that owns the request; cache keys carry it."""
    session: str | None = None
    """The session the request belongs to, when there is one."""
    partition: str | None = None
    """A cache scope inside the tenant, e.g. the session id of an isolated session: entries fetched
    under one partition are never served to another, nor to the tenant's shared scope (None)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """A section's stub: what a compiled prompt carries and what predictors rank.

    The content itself is not held here; a :class:`Source` hydrates it on demand.
    """

    id: str
    """Stable identifier, e.g. ``billing/refunds``."""
    title: str
    tags: tuple[str, ...] = ()
    size_bytes: int = 0
    """Size of the hydrated content in UTF-8 bytes (an estimate where the source cannot know)."""
    tokens: int = 0
    """Approximate tokens of the hydrated content."""
    version: str = ""
    """Content hash or etag; cache keys carry it so stale content is never served.

    Empty when the source cannot know the version before hydrating (a callable, a retriever): such
    entries are keyed without a version and kept fresh by the cache's TTL instead.
    """
    summary: str = ""
    """One-line summary for the stub."""
    index_text: str = field(default="", repr=False)
    """Text the lexical index sees (title plus the start of the content)."""
    order: int = 0
    """Position in document order across the engine's sources."""
    source: str = ""
    """Name of the source that hydrates this section."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hydrated:
    """Content a source produced for one section."""

    section_id: str
    content: str
    version: str
    title: str = ""

    @property
    def size_bytes(self) -> int:
        """UTF-8 size of the content."""
        return len(utf8(self.content))
