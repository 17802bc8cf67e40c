"""The warm cache: tiers behind one interface.

Template method (as in aiocache): :class:`CacheTier` does key derivation, scope verification, TTL,
integrity checks and hit/miss counting once in its public ``get``/``put``/``delete``; a tier
implements only the private storage calls ``_get``/``_put``/``_delete``/``_clear``.

Keys carry the scope (tenant and partition, as separate fields) and the section version
(:class:`CacheKey`), and every stored entry carries its own key and a checksum of its content. A
tier therefore never returns another scope's entry, a stale version or a torn write: any of these
reads as a miss (and the bad entry is deleted).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._errors import CacheError, ConfigError
from ._text import from_utf8, utf8

__all__ = [
    "CacheEntry",
    "CacheKey",
    "CacheTier",
    "DiskTier",
    "FillCoordinator",
    "FillLease",
    "MemoryTier",
    "VersionStamps",
    "WarmCache",
]

logger = logging.getLogger("prehydrate.cache")


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where an entry lives: the scope (tenant, partition), the section id and the section version.

    The scope's parts stay separate fields here and in every derived form (:attr:`raw`,
    :attr:`digest`, the stored entry), never joined into one string: a tenant ``a/b`` with partition
    ``c`` and a tenant ``a`` with partition ``b/c`` are different keys whatever characters they hold.
    """

    tenant: str
    section_id: str
    version: str
    partition: str | None = None
    """A scope inside the tenant (e.g. one isolated session); None is the tenant's shared scope."""

    @property
    def parts(self) -> tuple[str, str | None, str, str]:
        """The key as a tuple: tenant, partition, section id, version."""
        return (self.tenant, self.partition, self.section_id, self.version)

    @property
    def raw(self) -> str:
        """Unambiguous string form (JSON array of :attr:`parts`), safe whatever characters the parts contain."""
        return json.dumps(self.parts, ensure_ascii=False)

    @property
    def digest(self) -> str:
        """SHA-256 of :attr:`raw`: a fixed-length key for stores with key limits (Redis)."""
        return hashlib.sha256(utf8(self.raw)).hexdigest()

    @classmethod
    def from_parts(cls, parts: object) -> CacheKey:
        """The key whose :attr:`parts` are ``parts`` (as read back from a stored entry).

        Raises:
            TypeError: ``parts`` is not four values of the right types.
        """
        if not isinstance(parts, list | tuple) or len(parts) != 4:
            raise TypeError(f"a cache key has 4 parts, got {parts!r}")
        tenant, partition, section_id, version = parts
        if not all(isinstance(p, str) for p in (tenant, section_id, version)):
            raise TypeError(f"cache key parts must be strings, got {parts!r}")
        if partition is not None and not isinstance(partition, str):
            raise TypeError(f"a cache key partition must be a string or null, got {partition!r}")
        return cls(tenant, section_id, version, partition)


def _checksum(content: str) -> str:
    return hashlib.sha256(utf8(content)).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """Hydrated content as stored in a tier, with the metadata that keeps it honest."""

    key: CacheKey
    content: str
    title: str = ""
    prefetched: bool = False
    """Put there by speculation (not yet requested); memory tiers report these separately."""
    created_at: float = 0.0
    """Wall-clock time (``time.time()``) the entry was made."""
    expires_at: float | None = None
    checksum: str = ""

    @classmethod
    def make(
        cls, key: CacheKey, content: str, *, title: str = "", prefetched: bool = False, ttl_s: float | None = None
    ) -> CacheEntry:
        """A new entry with its checksum and, when ``ttl_s`` is given, its expiry."""
        now = time.time()
        return cls(
            key=key,
            content=content,
            title=title,
            prefetched=prefetched,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s,
            checksum=_checksum(content),
        )

    @property
    def size_bytes(self) -> int:
        """UTF-8 size of the content."""
        return len(utf8(self.content))

    def expired(self, now: float | None = None) -> bool:
        """True once the entry's TTL has passed."""
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def intact(self) -> bool:
        """True when the content matches the checksum written with it."""
        return self.checksum == _checksum(self.content)

    def to_bytes(self) -> bytes:
        """Serialise as JSON (never pickle: a shared tier must not execute what it reads)."""
        text = json.dumps(
            {
                "k": self.key.parts,
                "c": self.content,
                "t": self.title,
                "p": self.prefetched,
                "a": self.created_at,
                "e": self.expires_at,
                "s": self.checksum,
            },
            ensure_ascii=False,
        )
        return utf8(text)

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheEntry:
        """Parse :meth:`to_bytes` output.

        Raises:
            CacheError: the bytes are not a complete entry (torn or foreign write).
        """
        try:
            obj = json.loads(from_utf8(data))
            return cls(
                key=CacheKey.from_parts(obj["k"]),
                content=str(obj["c"]),
                title=str(obj["t"]),
                prefetched=bool(obj["p"]),
                created_at=float(obj["a"]),
                expires_at=None if obj["e"] is None else float(obj["e"]),
                checksum=str(obj["s"]),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise CacheError(f"unreadable cache entry ({exc})", tier="codec") from exc


class CacheTier(ABC):
    """One storage level of the warm cache.

    Subclasses implement the private storage calls; the public methods here do the rest once.
    ``hits``, ``misses`` and ``rejected`` (entries refused on read: wrong key, expired, torn) count
    what the tier served.
    """

    name: str = "tier"

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.rejected = 0

    async def get(self, key: CacheKey) -> CacheEntry | None:
        """The entry for ``key``, or None when absent, expired, foreign or torn."""
        entry = await self._get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.key != key or entry.expired() or not entry.intact():
            self.rejected += 1
            self.misses += 1
            await self._delete(key)
            return None
        self.hits += 1
        return entry

    async def put(self, entry: CacheEntry) -> bool:
        """Store ``entry`` under its own key; False when the tier declined (e.g. too large)."""
        if entry.expired():
            return False
        return await self._put(entry)

    async def delete(self, key: CacheKey) -> None:
        """Remove the entry for ``key`` if present."""
        await self._delete(key)

    async def clear(self) -> None:
        """Remove every entry of this tier."""
        await self._clear()

    async def aclose(self) -> None:
        """Release resources (files, connections)."""
        return None

    @abstractmethod
    async def _get(self, key: CacheKey) -> CacheEntry | None: ...

    @abstractmethod
    async def _put(self, entry: CacheEntry) -> bool: ...

    @abstractmethod
    async def _delete(self, key: CacheKey) -> None: ...

    @abstractmethod
    async def _clear(self) -> None: ...


class FillLease(Protocol):
    """The right to hydrate one key while other processes sharing a tier wait for the result."""

    async def release(self) -> None:
        """Give the right up (after the entry was stored, or the hydration failed); never raises."""
        ...


@runtime_checkable
class FillCoordinator(Protocol):
    """Optional capability of a tier shared by processes (Redis): cross-process single-flight.

    Within one process the engine already joins a running fetch; a shared tier extends that to
    every process using it, so N replicas behind a load balancer hydrate a cold section once.
    """

    async def acquire_fill(self, key: CacheKey) -> FillLease | None:
        """A lease when the caller should hydrate ``key``; None when another process holds it.

        Raises:
            CacheError: the shared store cannot be reached (the caller hydrates without a lease).
        """
        ...

    async def wait_fill(self, key: CacheKey) -> bool:
        """Wait until the holder of ``key``'s lease stored an entry or gave the lease up.

        Returns False when the tier's wait timeout passed first (the holder may have crashed).
        """
        ...


@runtime_checkable
class VersionStamps(Protocol):
    """Optional capability of a tier shared by processes (Redis): the latest version each section was seen at.

    A replica that observes a change (its watcher, its poll) stamps the new versions; another
    replica reads the stamp on a lookup of a live section and, when the stamp is newer than what
    it observed itself and names another version, serves that version instead of its own stale
    catalog's. A stamp is ``(time_ns, version)``; an empty version means removed.
    """

    async def stamp_versions(self, versions: Mapping[str, str], time_ns: int) -> None:
        """Record ``section id -> version`` as seen at ``time_ns`` (wall clock, ns)."""
        ...

    async def stamped_version(self, section_id: str) -> tuple[int, str] | None:
        """The latest stamp of ``section_id``, or None when none was written."""
        ...


_ENTRY_OVERHEAD = 256
"""Bytes charged per memory entry on top of its content, so many tiny entries still count."""

_EMPTY_STR = sys.getsizeof("")


def _held_bytes(entry: CacheEntry) -> int:
    """Bytes the content takes in this process: its UTF-8 size, or more when Python holds it wider.

    CPython stores a string at 1, 2 or 4 bytes per character, set by its widest character, so ASCII
    text with a single emoji takes 4 bytes per character: charging only the UTF-8 size would let
    such content hold four times the tier's bound.
    """
    return max(entry.size_bytes, sys.getsizeof(entry.content) - _EMPTY_STR)


class MemoryTier(CacheTier):
    """The hot tier: an in-process LRU bounded by bytes, entries flagged when prefetched."""

    name = "memory"

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        super().__init__()
        if max_bytes <= 0:
            raise ConfigError("MemoryTier max_bytes must be positive")
        self.max_bytes = max_bytes
        self._data: OrderedDict[CacheKey, tuple[CacheEntry, int]] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    @property
    def bytes_used(self) -> int:
        """Bytes charged for the entries held now (content plus a fixed overhead each)."""
        return self._bytes

    @property
    def prefetched_bytes(self) -> int:
        """Bytes held by entries that were prefetched and not yet requested."""
        return sum(size for entry, size in self._data.values() if entry.prefetched)

    def __len__(self) -> int:
        return len(self._data)

    async def _get(self, key: CacheKey) -> CacheEntry | None:
        item = self._data.get(key)
        if item is None:
            return None
        self._data.move_to_end(key)
        return item[0]

    async def _put(self, entry: CacheEntry) -> bool:
        size = _held_bytes(entry) + _ENTRY_OVERHEAD
        if size > self.max_bytes:
            return False
        old = self._data.pop(entry.key, None)
        if old is not None:
            self._bytes -= old[1]
        self._data[entry.key] = (entry, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._data.popitem(last=False)
            self._bytes -= evicted
            self.evictions += 1
        return True

    async def _delete(self, key: CacheKey) -> None:
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= old[1]

    async def _clear(self) -> None:
        self._data.clear()
        self._bytes = 0

    def mark_used(self, key: CacheKey) -> None:
        """Clear the prefetched flag once the entry has been requested."""
        item = self._data.get(key)
        if item is not None and item[0].prefetched:
            self._data[key] = (replace(item[0], prefetched=False), item[1])


class DiskTier(CacheTier):
    """A persistent tier on diskcache: survives restarts and is shared by processes on one host.

    Reads run inline (a diskcache ``get`` costs microseconds); writes, deletes and clears run in a
    worker thread so the event loop never waits on SQLite or fsync. Values are JSON, never pickles.
    """

    name = "disk"

    def __init__(self, directory: str | Path, *, size_limit: int = 1 << 30, **settings: Any) -> None:
        super().__init__()
        import diskcache

        self.directory = Path(directory)
        try:
            self._dc = diskcache.Cache(str(self.directory), size_limit=size_limit, **settings)
        except Exception as exc:  # sqlite3/OS errors: report which directory failed
            raise CacheError(f"cannot open disk cache at {self.directory}: {exc}", tier=self.name) from exc
        # diskcache keeps one SQLite connection per thread: writes go through one thread of our own,
        # so aclose() can close that connection too instead of leaving it open in a shared pool.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prehydrate-disk")
        self._closed = False

    async def _in_writer(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writer, partial(fn, *args, **kwargs))

    async def _get(self, key: CacheKey) -> CacheEntry | None:
        try:
            data = self._dc.get(key.raw)
        except Exception as exc:  # diskcache.Timeout, sqlite3 errors
            raise CacheError(f"disk cache read failed: {exc}", tier=self.name) from exc
        if data is None:
            return None
        if not isinstance(data, bytes):
            return None
        try:
            return CacheEntry.from_bytes(data)
        except CacheError:
            self.rejected += 1
            return None

    async def _put(self, entry: CacheEntry) -> bool:
        expire = None if entry.expires_at is None else max(0.0, entry.expires_at - time.time())
        data = entry.to_bytes()
        try:
            return bool(await self._in_writer(self._dc.set, entry.key.raw, data, expire=expire))
        except Exception as exc:  # read-only or full directory, lock timeouts
            raise CacheError(f"disk cache write failed: {exc}", tier=self.name) from exc

    async def _delete(self, key: CacheKey) -> None:
        try:
            await self._in_writer(self._dc.delete, key.raw)
        except Exception as exc:
            raise CacheError(f"disk cache delete failed: {exc}", tier=self.name) from exc

    async def _clear(self) -> None:
        await self._in_writer(self._dc.clear)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._in_writer(self._dc.close)
        self._writer.shutdown(wait=True)
        self._dc.close()


UNVERSIONED_TTL_S = 30.0
"""Default lifetime of entries whose section has no version (see ``WarmCache.unversioned_ttl_s``)."""


class WarmCache:
    """Tiers in order, fastest first, behind one get/put.

    A hit in a lower tier is promoted into the tiers above it. A tier that fails (raises
    :class:`CacheError`) is treated as a miss for reads and skipped for writes; the first failure
    of a run of failures logs one warning, and recovery logs once more.
    """

    def __init__(
        self,
        tiers: Sequence[CacheTier] | None = None,
        *,
        ttl_s: float | None = None,
        unversioned_ttl_s: float = UNVERSIONED_TTL_S,
    ) -> None:
        self.tiers: list[CacheTier] = list(tiers) if tiers is not None else [MemoryTier()]
        if not self.tiers:
            raise ConfigError("WarmCache needs at least one tier")
        if not unversioned_ttl_s > 0:
            raise ConfigError(f"unversioned_ttl_s must be positive, got {unversioned_ttl_s!r}")
        self.ttl_s = ttl_s
        self.unversioned_ttl_s = unversioned_ttl_s
        """How long an entry of a section whose source gives no version (a retriever, a callable)
        may be served: nothing else can tell that its content changed."""
        self._failing: set[str] = set()
        self._failing_op: dict[str, str] = {}

    def _failed(self, tier: CacheTier, exc: CacheError, op: str = "write") -> None:
        if tier.name not in self._failing:
            self._failing.add(tier.name)
            self._failing_op[tier.name] = op
            logger.warning("cache tier %r is failing, serving without it: %s", tier.name, exc)

    def _ok(self, tier: CacheTier, op: str = "write") -> None:
        # Recovery is declared only by the kind of operation that failed: a full disk still answers
        # reads, and a read between two failed writes must not log "answering again" every request.
        if tier.name in self._failing and self._failing_op.get(tier.name) == op:
            self._failing.discard(tier.name)
            logger.warning("cache tier %r is answering again", tier.name)

    async def get(self, key: CacheKey) -> tuple[CacheEntry, str] | None:
        """The entry and the name of the tier that had it, or None."""
        for i, tier in enumerate(self.tiers):
            try:
                entry = await tier.get(key)
            except CacheError as exc:
                self._failed(tier, exc, "read")
                continue
            self._ok(tier, "read")
            if entry is not None:
                for upper in self.tiers[:i]:
                    try:
                        await upper.put(entry)
                    except CacheError as exc:
                        self._failed(upper, exc)
                return entry, tier.name
        return None

    async def put(self, entry: CacheEntry) -> int:
        """Write through every tier; returns how many tiers stored it."""
        stored = 0
        for tier in self.tiers:
            try:
                stored += await tier.put(entry)
            except CacheError as exc:
                self._failed(tier, exc)
                continue
            self._ok(tier)
        return stored

    @property
    def stamps(self) -> bool:
        """True when a tier keeps version stamps (see :class:`VersionStamps`)."""
        return any(isinstance(t, VersionStamps) for t in self.tiers)

    async def stamp(self, versions: Mapping[str, str], time_ns: int) -> None:
        """Stamp ``versions`` in every tier that keeps stamps (a failing tier is skipped, like a write)."""
        for tier in self.tiers:
            if isinstance(tier, VersionStamps):
                try:
                    await tier.stamp_versions(versions, time_ns)
                except CacheError as exc:
                    self._failed(tier, exc)

    async def stamped(self, section_id: str) -> tuple[int, str] | None:
        """The newest stamp of ``section_id`` across the tiers that keep them (None: none, or unreachable)."""
        best: tuple[int, str] | None = None
        for tier in self.tiers:
            if isinstance(tier, VersionStamps):
                try:
                    found = await tier.stamped_version(section_id)
                except CacheError as exc:
                    self._failed(tier, exc, "read")
                    continue
                if found is not None and (best is None or found[0] > best[0]):
                    best = found
        return best

    @asynccontextmanager
    async def fill(self, key: CacheKey) -> AsyncIterator[CacheEntry | None]:
        """Hydrate ``key`` at most once across the processes sharing a tier.

        Yields an entry when another process filled ``key`` while this one waited (use it, do not
        hydrate), else None: hydrate and :meth:`put`, the lease taken from each coordinating tier
        is released on exit. Tiers without :class:`FillCoordinator` cost nothing here. A waiter
        whose holder neither stores nor releases (crashed) hydrates itself after the tier's wait
        timeout; a failing tier is skipped like in :meth:`get`.
        """
        leases: list[FillLease] = []
        filled: CacheEntry | None = None
        try:
            for tier in self.tiers:
                if not isinstance(tier, FillCoordinator) or tier.name in self._failing:
                    continue
                try:
                    lease = await tier.acquire_fill(key)
                    if lease is None:
                        await tier.wait_fill(key)
                        found = await self.get(key)
                        if found is not None:
                            filled = found[0]
                            break
                        # The holder gave up without an entry, or timed out: take over if we can.
                        lease = await tier.acquire_fill(key)
                except CacheError as exc:
                    self._failed(tier, exc)
                    continue
                if lease is not None:
                    leases.append(lease)
                    # Another process may have stored the entry and released its lease between
                    # our cache miss and this acquire: look once more before hydrating again.
                    found = await self.get(key)
                    if found is not None:
                        filled = found[0]
                        break
            yield filled
        finally:
            for lease in leases:
                await lease.release()

    def entry(self, key: CacheKey, content: str, *, title: str = "", prefetched: bool = False) -> CacheEntry:
        """A new entry with this cache's TTL (capped at ``unversioned_ttl_s`` for a key without a version)."""
        ttl = self.ttl_s
        if not key.version:
            ttl = self.unversioned_ttl_s if ttl is None else min(ttl, self.unversioned_ttl_s)
        return CacheEntry.make(key, content, title=title, prefetched=prefetched, ttl_s=ttl)

    async def delete(self, key: CacheKey) -> None:
        """Remove ``key`` from every tier."""
        for tier in self.tiers:
            try:
                await tier.delete(key)
            except CacheError as exc:
                self._failed(tier, exc)

    def mark_used(self, key: CacheKey) -> None:
        """Tell memory tiers that a prefetched entry has now been requested."""
        for tier in self.tiers:
            if isinstance(tier, MemoryTier):
                tier.mark_used(key)

    async def clear(self) -> None:
        """Empty every tier."""
        for tier in self.tiers:
            await tier.clear()

    async def aclose(self) -> None:
        """Close every tier."""
        for tier in self.tiers:
            await tier.aclose()
