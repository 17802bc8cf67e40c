"""A LangGraph node cache on disk (diskcache), so cached node results survive restarts.

LangGraph caches a node's writes when the node has a ``CachePolicy`` and the graph is compiled
with a cache. Its ``InMemoryCache`` forgets everything when the process exits; ``DiskNodeCache``
keeps it in a diskcache directory that several processes may share.

Example:
    >>> from langgraph.types import CachePolicy  # doctest: +SKIP
    >>> g.add_node("retrieve", retrieve, cache_policy=CachePolicy(ttl=3600))  # doctest: +SKIP
    >>> app = g.compile(cache=DiskNodeCache(".prehydrate/node-cache"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import diskcache
from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.checkpoint.serde.base import SerializerProtocol

__all__ = ["DiskNodeCache"]

ValueT = TypeVar("ValueT")

_SEP = "\x1f"
"""Joins a namespace into the diskcache tag (unit separator: never part of a node name)."""


class DiskNodeCache(BaseCache[ValueT]):
    """LangGraph ``BaseCache`` stored with diskcache (SQLite plus files), persistent across restarts.

    Values are serialised with the cache's ``serde`` (LangGraph's JSON-plus serializer by default,
    no pickle), so reading a cache directory never runs code from it. Each entry is tagged with
    its namespace, which makes ``clear(namespaces)`` an indexed delete. TTLs are checked against
    ``clock`` on read (diskcache also expires the rows, which bounds the directory's size).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        serde: SerializerProtocol | None = None,
        clock: Callable[[], float] = time.time,
        **settings: Any,
    ) -> None:
        """Open (or create) the cache directory.

        Args:
            directory: where the cache lives; reopening the same directory finds earlier entries.
            serde: LangGraph serializer for values (default: JSON-plus without pickle).
            clock: wall clock in seconds, for TTLs (tests pass a fake one).
            **settings: diskcache settings, e.g. ``size_limit``.
        """
        super().__init__(serde=serde)
        self.directory = Path(directory)
        self.clock = clock
        self._dc = diskcache.Cache(str(self.directory), tag_index=True, **settings)

    @staticmethod
    def _key(ns: Namespace, key: str) -> tuple[str, ...]:
        return (*ns, _SEP, key)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Cached values for ``keys`` (missing and expired keys are left out)."""
        out: dict[FullKey, ValueT] = {}
        now = self.clock()
        for ns, key in keys:
            raw = self._dc.get(self._key(tuple(ns), key))
            if raw is None:
                continue
            enc, data, expires_at = raw
            if expires_at is not None and now >= expires_at:
                continue
            out[(ns, key)] = self.serde.loads_typed((enc, data))
        return out

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """``get`` inline: a diskcache read is a few microseconds, cheaper than a thread hop."""
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store values, each with a TTL in seconds (None: no expiry)."""
        now = self.clock()
        with self._dc.transact():
            for (ns, key), (value, ttl) in pairs.items():
                enc, data = self.serde.dumps_typed(value)
                expires_at = None if ttl is None else now + ttl
                self._dc.set(
                    self._key(tuple(ns), key),
                    (enc, data, expires_at),
                    expire=ttl,
                    tag=_SEP.join(ns),
                )

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """``set`` on a thread: writes sync to disk."""
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete everything, or the entries of the given namespaces."""
        if namespaces is None:
            self._dc.clear()
            return
        for ns in namespaces:
            self._dc.evict(_SEP.join(ns))

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """``clear`` on a thread."""
        await asyncio.to_thread(self.clear, namespaces)

    def close(self) -> None:
        """Close the database connection (the data stays on disk)."""
        self._dc.close()

    def __len__(self) -> int:
        return len(self._dc)
