"""The fetcher: hydrates sections into the warm cache, one fetch per key at a time.

It owns what happens between a cache key and a source: single-flight (concurrent requests for one
key share one hydration, in this process and, through a coordinating tier, across replicas), the
source's timeout and protocol checks, the latency estimate the prefetcher ranks by, and the
registry of live prefetches a later request may claim. It knows nothing of turns or sessions:
callers hand it a section, a scope and, for a prefetch, the record and two callbacks.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from ._cache import CacheEntry, CacheKey, WarmCache
from ._catalog import Catalog
from ._errors import HydrationTimeout, PrehydrateError, RequestTooLargeError, SourceError
from ._events import Outcome, PrefetchStatus
from ._inputs import EngineLimits
from ._live import LiveSource, SectionChanges
from ._prefetch import PrefetchRecord, Status
from ._sections import Hydrated, Scope, Section, content_version, estimate_tokens
from ._sources import Source

__all__ = ["FetchResult", "Fetcher", "PrefetchFinishedHook", "PrefetchStartedHook"]

FetchResult = tuple[CacheEntry, bool]
"""An entry and whether it came from the cache rather than from the source."""

PrefetchStartedHook = Callable[[PrefetchRecord], None]
"""Called when a prefetch's hydration begins (the turn emits its event)."""
PrefetchFinishedHook = Callable[[PrefetchRecord, PrefetchStatus, "str | None"], None]
"""Called with the record, ``ok``/``failed``/``cancelled`` and the error text when a prefetch ends."""

DEFAULT_LATENCY_S = 0.1
"""Latency assumed for a source not measured yet."""


def key_for(section: Section, scope: Scope) -> CacheKey:
    """The cache key of a section for a scope: tenant and partition as separate fields, and the current version."""
    return CacheKey(scope.tenant, section.id, section.version, scope.partition)


def _ended(status: Status) -> PrefetchStatus:
    """The event status of a prefetch that ended with record status ``status``."""
    if status == "cancelled":
        return "cancelled"
    return "failed" if status == "failed" else "ok"


class Fetcher:
    """Single-flight hydration of sections into one warm cache."""

    def __init__(
        self, cache: WarmCache, catalog: Callable[[], Catalog], *, timeout_s: float, limits: EngineLimits
    ) -> None:
        self.cache = cache
        self.timeout_s = timeout_s
        self.limits = limits
        self._catalog = catalog
        self._source_of: dict[str, Source] = {}
        self._inflight: dict[CacheKey, asyncio.Task[FetchResult]] = {}
        self._live_prefetch: dict[CacheKey, PrefetchRecord] = {}
        self._prefetching: set[asyncio.Task[Any]] = set()
        self._latency: dict[str, float] = {}
        self._listed_ns = time.time_ns()
        self._seen_ns: dict[str, int] = {}

    def route(self, source_of: dict[str, Source]) -> None:
        """Use this section id -> source map from now on (after the catalog was listed again)."""
        self._source_of = source_of
        self._listed_ns = time.time_ns()
        self._seen_ns.clear()

    async def _current(self, section: Section) -> Section:
        """``section`` at the version another replica stamped, when that stamp is newer than what this
        process observed (its listing, its own change sets) and names another version.

        Only live sections are checked (one read of the stamping tier per lookup); without a tier
        that keeps stamps this is free. The catalog moves on, so prediction and later lookups agree.
        """
        if not self.cache.stamps or not isinstance(self._source_of.get(section.id), LiveSource):
            return section
        found = await self.cache.stamped(section.id)
        if found is None:
            return section
        time_ns, version = found
        if not version or version == section.version or time_ns <= self._seen_ns.get(section.id, self._listed_ns):
            return section
        self._seen_ns[section.id] = time_ns
        newer = replace(section, version=version)
        self._catalog().replace(newer)
        return newer

    @property
    def running(self) -> int:
        """Hydrations running now (on demand or speculative)."""
        return len(self._inflight)

    def latency_estimate(self, section: Section) -> float:
        """Expected hydration latency of the section's source (seconds, moving average)."""
        src = self._source_of.get(section.id)
        return self._latency.get(src.name, DEFAULT_LATENCY_S) if src is not None else DEFAULT_LATENCY_S

    def _observe_latency(self, src: Source, seconds: float) -> None:
        old = self._latency.get(src.name)
        self._latency[src.name] = seconds if old is None else 0.8 * old + 0.2 * seconds

    async def _hydrate(self, section: Section, scope: Scope, *, prefetched: bool) -> FetchResult:
        # Cross-process single-flight: when another replica sharing a cache tier is hydrating this
        # key, take its result instead of hydrating again (a no-op without a coordinating tier).
        async with self.cache.fill(key_for(section, scope)) as filled:
            if filled is not None:
                return filled, True
            return await self._hydrate_source(section, scope, prefetched=prefetched)

    async def _call_source(self, src: Source, section: Section, scope: Scope) -> Hydrated:
        """The source's answer, with its failures wrapped in the error root and its latency observed."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            async with asyncio.timeout(self.timeout_s):
                hydrated = await src.hydrate(section.id, scope=scope)
        except TimeoutError:
            raise HydrationTimeout(
                f"source {src.name!r} took longer than {self.timeout_s}s to hydrate {section.id!r}",
                section_id=section.id,
                source=src.name,
            ) from None
        except PrehydrateError:
            raise
        except Exception as exc:  # a source's own failure: wrap it with context, keep the cause
            raise SourceError(
                f"source {src.name!r} failed to hydrate {section.id!r}: {type(exc).__name__}: {exc}",
                section_id=section.id,
                source=src.name,
            ) from exc
        self._observe_latency(src, loop.time() - t0)
        return hydrated

    @staticmethod
    def _check(src: Source, section: Section, hydrated: object) -> Hydrated:
        """Refuse an answer that breaks the source protocol."""
        # A third-party source may break the protocol; say so instead of failing later on its value.
        valid = isinstance(hydrated, Hydrated) and isinstance(hydrated.content, str)
        if not (valid and isinstance(hydrated, Hydrated) and isinstance(hydrated.version, str)):
            raise SourceError(
                f"source {src.name!r} returned {type(hydrated).__name__} for {section.id!r}, "
                "expected Hydrated with str content and version",
                section_id=section.id,
                source=src.name,
            )
        if hydrated.section_id != section.id:
            raise SourceError(
                f"source {src.name!r} returned {hydrated.section_id!r} for {section.id!r}",
                section_id=section.id,
                source=src.name,
            )
        return hydrated

    async def _hydrate_source(self, section: Section, scope: Scope, *, prefetched: bool) -> FetchResult:
        src = self._source_of.get(section.id)
        if src is None:
            raise SourceError(f"no source for section {section.id!r}", section_id=section.id)
        hydrated = self._check(src, section, await self._call_source(src, section, scope))
        size = hydrated.size_bytes
        if size > self.limits.max_content_bytes:
            raise RequestTooLargeError(f"section {section.id!r}", size, self.limits.max_content_bytes)
        version = hydrated.version or content_version(hydrated.content)
        if section.version and version != section.version:
            # The source changed since listing: serve and cache the fresh content under its own
            # version, and move the catalog on so older entries are never looked up again.
            section = replace(section, version=version, size_bytes=size, tokens=estimate_tokens(hydrated.content))
            self._catalog().replace(section)
        key = key_for(section, scope)
        entry = self.cache.entry(key, hydrated.content, title=section.title, prefetched=prefetched)
        await self.cache.put(entry)
        return entry, False

    def _register(self, key: CacheKey, coro: Coroutine[Any, Any, FetchResult]) -> asyncio.Task[FetchResult]:
        # A context of its own: the fetch is shared by every request that joins it, so it must not
        # run in (nor keep alive, through its timeout's timer, for ``timeout_s``) the context of the
        # request that happened to start it: its user, its token, its spans. Tracing parents a
        # hydration to its turn explicitly; a source gets what it needs through ``scope``.
        task: asyncio.Task[FetchResult] = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        self._inflight[key] = task

        def _unregister(t: asyncio.Task[FetchResult]) -> None:
            if self._inflight.get(key) is t:
                del self._inflight[key]
            if not t.cancelled():
                t.exception()  # retrieved here so a failed prefetch nobody joined is not logged

        task.add_done_callback(_unregister)
        return task

    async def lookup(self, section: Section, scope: Scope) -> tuple[CacheEntry, Outcome, str | None]:
        """Serve a section: from cache, by joining a running fetch, or by hydrating it now.

        Single-flight: concurrent requests for the same key share one hydration. A live section
        another replica saw change is served at the version it stamped (see ``_current``).
        """
        section = await self._current(section)
        key = key_for(section, scope)
        found = await self.cache.get(key)
        if found is not None:
            return found[0], "hit", found[1]
        failures_left = 2  # a failed fetch we joined earns one more try of our own
        while True:
            task = self._inflight.get(key)
            own = task is None or task.done()  # a done task may still be registered for a moment
            if own:
                task = self._register(key, self._hydrate(section, scope, prefetched=False))
            assert task is not None
            try:
                # Joined fetches are shielded: a prefetch may be cancelled by its own turn's bailout
                # (possibly another session's), which must not cancel this request.
                entry, from_cache = await (task if own else asyncio.shield(task))
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if own or (current is not None and current.cancelling()):
                    raise
                continue  # the fetch we joined was cancelled: join or start another
            except PrehydrateError:
                failures_left -= 1
                if own or failures_left == 0:
                    raise
                continue  # the fetch we joined failed (e.g. a speculative one): try once more
            if own:
                return entry, ("inflight" if from_cache else "miss"), None
            return entry, ("hit" if from_cache else "inflight"), None

    def launch_prefetch(
        self,
        record: PrefetchRecord,
        section: Section,
        scope: Scope,
        *,
        started: PrefetchStartedHook,
        finished: PrefetchFinishedHook,
    ) -> asyncio.Task[object] | None:
        """Start a speculative hydration (None: the key is being fetched already, or the source is not speculative)."""
        if record.key in self._inflight:
            return None
        src = self._source_of.get(section.id)
        if src is None or not src.speculative:
            return None
        task: asyncio.Task[Any] = self._register(record.key, self._prefetch(record, section, scope, started, finished))
        self._prefetching.add(task)
        task.add_done_callback(self._prefetching.discard)
        return task

    async def _prefetch(
        self,
        record: PrefetchRecord,
        section: Section,
        scope: Scope,
        started: PrefetchStartedHook,
        finished: PrefetchFinishedHook,
    ) -> FetchResult:
        loop = asyncio.get_running_loop()
        record.status = "running"
        record.start_ns = time.time_ns()
        record.started_at = loop.time()
        started(record)
        status: Status = "failed"
        error: str | None = None
        try:
            found = await self.cache.get(record.key)
            if found is not None:
                status = "warm"
                return found[0], True
            result = await self._hydrate(section, scope, prefetched=True)
            record.bytes = result[0].size_bytes
            record.key = result[0].key
            status = "ok"
            self._live_prefetch[record.key] = record
            return result
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except PrehydrateError as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.status = status
            record.end_ns = time.time_ns()
            record.finished_at = loop.time()
            finished(record, _ended(status), error)

    def claim_prefetch(self, key: CacheKey) -> PrefetchRecord | None:
        """A request used the entry at ``key``: mark the live prefetch that made it (if any) used."""
        record = self._live_prefetch.get(key)
        if record is not None:
            record.used = True
            self.cache.mark_used(key)
        return record

    async def settle_prefetch(self, record: PrefetchRecord, *, discard: bool) -> None:
        """The prefetch's turn ended: forget it, and delete its entry when ``discard``."""
        if self._live_prefetch.get(record.key) is record:
            del self._live_prefetch[record.key]
        if discard:
            await self.cache.delete(record.key)

    def follow(self, src: Source, changes: SectionChanges) -> int:
        """Route a live source's added sections to it, forget removed ones, and cancel every running
        prefetch of a section at a version that is no longer current; returns how many were cancelled.

        A request that had joined such a prefetch starts over (see ``lookup``); the cancelled
        prefetch is settled as wasted by its turn. A request's own fetch is left to finish: it reads
        the source now, and a newer version than listed is adopted when it returns.
        """
        for s in (*changes.added, *changes.changed):
            self._source_of[s.id] = src
        for sid in changes.removed:
            self._source_of.pop(sid, None)
        seen = time.time_ns()
        for sid in changes.ids:
            self._seen_ns[sid] = seen
        current = {s.id: s.version for s in (*changes.added, *changes.changed)}
        stale = [
            task
            for key, task in self._inflight.items()
            if task in self._prefetching
            and (key.section_id in changes.removed or current.get(key.section_id, key.version) != key.version)
        ]
        for task in stale:
            task.cancel()
        return len(stale)

    async def aclose(self) -> None:
        """Cancel every running hydration and wait until they have stopped."""
        pending = list(self._inflight.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
