"""The engine: sources, a warm cache, a predictor and a policy, assembled; the thing every front end wraps.

It owns the catalog (every section of every source), the prefetch width, the event bus and the
open sessions, and hands fetching to its :class:`~prehydrate._fetch.Fetcher`. Turns and sessions
reach it only through the :class:`~prehydrate._turn.TurnEngine` and
:class:`~prehydrate._session.SessionEngine` protocols, which it satisfies.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Self

from ._cache import CacheEntry, CacheKey, WarmCache
from ._catalog import Catalog
from ._conversations import Conversations
from ._defaults import default_policy, default_predictor
from ._errors import ConfigError
from ._events import Event, EventBus, Outcome, SectionsChanged, Subscriber
from ._fetch import Fetcher, PrefetchFinishedHook, PrefetchStartedHook, key_for
from ._inputs import EngineLimits, check_identifier, check_optional_identifier, optional_text, text_tuple
from ._learning import Learning, LearningPolicy
from ._live import Follower, LiveSource, SectionChanges, merge_changes
from ._predict import Predictor
from ._prefetch import AdaptiveWidth, PrefetchPolicy, PrefetchRecord
from ._sections import DEFAULT_TENANT, Scope, Section
from ._session import Session
from ._sources import Source
from ._traces import TraceStore

__all__ = ["Engine"]


def _indexed(sections: list[Section]) -> Catalog:
    """A catalog of ``sections`` with its lexical index built (run off the loop)."""
    return Catalog(sections).warm()


class Engine:
    """Sources, a warm cache, a predictor and a policy: the thing every front end wraps.

    Example:
        >>> import prehydrate as ph
        >>> engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
        >>> len(engine.catalog) > 0
        True
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        cache: WarmCache | None = None,
        predictor: Predictor | None = None,
        policy: PrefetchPolicy | None = None,
        traces: TraceStore | None = None,
        limits: EngineLimits | None = None,
        learn_on_start: bool = True,
        learning: LearningPolicy | None = None,
    ) -> None:
        if not sources:
            raise ConfigError("an Engine needs at least one source")
        self.sources = list(sources)
        self.cache = cache if cache is not None else WarmCache()
        self.predictor: Predictor = predictor if predictor is not None else default_predictor()
        self.width = AdaptiveWidth(policy if policy is not None else default_policy())
        """The prefetch width, adapted across turns when ``policy.adaptive`` is on: its one owner."""
        self.traces = traces
        self.limits = limits if limits is not None else EngineLimits()
        self.learn_on_start = learn_on_start
        self.learning = Learning(lambda: self.predictor, traces, learning if learning is not None else LearningPolicy())
        """Per-tenant predictors, fits, persisted models and online refits."""
        self.events = EventBus()
        self._catalog: Catalog | None = None
        self._fetcher = Fetcher(self.cache, lambda: self.catalog, timeout_s=self.policy.timeout_s, limits=self.limits)
        self._turn_numbers = itertools.count(1)
        self._started = False
        self._learning_started = False
        self._sessions: set[Session] = set()
        self.conversations = Conversations(self)
        """The open conversations by (tenant, id): the registry front ends map their sessions onto."""
        self._follower = Follower(self.apply_changes)
        self._changes_lock = asyncio.Lock()
        self._reindexing: asyncio.Task[None] | None = None
        self._reindex_again = False

    @property
    def policy(self) -> PrefetchPolicy:
        """How much to speculate per turn (the width's policy, so the two never disagree)."""
        return self.width.policy

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """Every section of every source, in document order (built on first use)."""
        if self._catalog is None:
            self.refresh()
        assert self._catalog is not None
        return self._catalog

    def refresh(self) -> Catalog:
        """List the sources again (sections added, removed or changed since)."""
        sections: list[Section] = []
        source_of: dict[str, Source] = {}
        for src in self.sources:
            for s in src.list_sections():
                sections.append(replace(s, order=len(sections), source=s.source or src.name))
                source_of[s.id] = src
        self._catalog = Catalog(sections)
        self._fetcher.route(source_of)
        return self._catalog

    async def apply_changes(self, src: LiveSource, changes: SectionChanges) -> None:
        """Fold a live source's change set into the catalog, so the next lookup uses the new versions.

        Added or removed sections: a new catalog and its lexical index are built off the event loop
        and swapped in whole. Only new versions: the stubs are swapped in place at once and the
        index is rebuilt off the loop afterwards. Running prefetches of old versions are cancelled;
        a tier shared by replicas (Redis) gets the new versions stamped; subscribers get
        :class:`SectionsChanged`.
        """
        async with self._changes_lock:
            catalog = self.catalog
            if changes.added or changes.removed or any(s.id not in catalog for s in changes.changed):
                sections = merge_changes(catalog.sections, changes, src.name)
                self._catalog = await asyncio.to_thread(lambda: Catalog(sections).warm())
            else:
                # Only versions changed: swap the stubs in place now (a lookup by id sees them at
                # once) and refresh the lexical index (titles, summaries) off the loop afterwards.
                for section in changes.changed:
                    catalog.replace(replace(section, order=catalog.get(section.id).order))
                self._reindex()
            self._fetcher.follow(src, changes)  # type: ignore[arg-type]  # a live source is a Source too
        now = time.time_ns()
        if self.cache.stamps:  # replicas sharing the tier serve the new versions from now on
            versions = {s.id: s.version for s in (*changes.added, *changes.changed)}
            await self.cache.stamp(versions | dict.fromkeys(changes.removed, ""), now)
        self.emit(
            SectionsChanged(
                source=src.name,
                added=tuple(s.id for s in changes.added),
                changed=tuple(s.id for s in changes.changed),
                removed=changes.removed,
                time_ns=now,
            )
        )

    def _reindex(self) -> None:
        """Rebuild the catalog's lexical index off the loop and swap it in, unless a change set came
        meanwhile (that one's rebuild, or the next ``_reindex``, wins); one rebuild at a time."""
        if self._reindexing is not None and not self._reindexing.done():
            self._reindex_again = True
            return

        async def rebuild() -> None:
            while True:
                self._reindex_again = False
                current = self.catalog
                fresh = await asyncio.to_thread(_indexed, list(self.catalog.sections))
                if self._catalog is not current:
                    return  # a change set that added or removed sections built a whole new catalog
                for section in current.sections:  # versions adopted while building (in place) carry over
                    if fresh.get(section.id).version != section.version:
                        fresh.replace(section)
                self._catalog = fresh
                if not self._reindex_again:
                    return

        self._reindexing = asyncio.get_running_loop().create_task(rebuild())

    async def start(self, *, warm_up: bool = True) -> None:
        """List the sources, build the lexical index and let the predictor learn from the recorded traces.

        Args:
            warm_up: build the index and start learning now. ``False`` lists the sources only and
                leaves both to :meth:`warm_up`, which a server calls once its port is open, so that
                importing the index's libraries and reading traces never delay the first connection.
        """
        if self._started:
            return
        # Build the catalog and its BM25 index off the loop now, so the first request by query does
        # not pay for indexing inside its measured wait.
        await asyncio.to_thread(lambda: self.catalog.warm() if warm_up else self.catalog)
        self._follower.start(self.sources)
        if warm_up:
            await self._start_learning()
        self._started = True

    async def warm_up(self) -> None:
        """What ``start(warm_up=False)`` left: build the lexical index off the loop, then start learning."""
        await asyncio.to_thread(lambda: self.catalog.warm())
        await self._start_learning()

    async def _start_learning(self) -> None:
        if self._learning_started:
            return
        policy = self.learning.policy
        if self.learn_on_start and policy.wait_at_start:
            await self.learn()
        self._learning_started = True
        if self.learn_on_start and not policy.wait_at_start:
            # Serve at once: the worker loads persisted models, then fits every tenant, off the loop.
            self.learning.start_background(lambda: self.catalog, fit_now=True)
        elif policy.online:
            self.learning.start_background(lambda: self.catalog, fit_now=False)

    async def learn(self) -> int:
        """Fit every tenant's predictor on its recent sessions now; returns the sessions used.

        Each tenant learns from its own sessions (see :class:`LearningPolicy`); the fit reads the
        TraceStore's ``fit_window`` most recent sessions of the tenant.
        """
        if not self.learning.learns:
            return 0
        catalog = self.catalog
        return await asyncio.to_thread(self.learning.fit_all, catalog)

    def predictor_for(self, tenant: str) -> Predictor:
        """The predictor that serves ``tenant`` now (``predictor`` itself for the default tenant)."""
        return self.learning.predictor_for(tenant)

    async def aclose(self) -> None:
        """Stop following live sources, close sessions (bailing out their turns), then the cache and sources."""
        await self._follower.aclose()
        if self._reindexing is not None:
            self._reindexing.cancel()
            await asyncio.gather(self._reindexing, return_exceptions=True)
        for session in list(self._sessions):
            await session.aclose()
        await self._fetcher.aclose()
        await self.cache.aclose()
        for src in self.sources:
            await src.aclose()
        await asyncio.to_thread(self.learning.close)
        if self.traces is not None:
            self.traces.close()
        self._started = False
        self._learning_started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sessions and events -----------------------------------------------------------------------

    def session(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        task_type: str | None = None,
        tags: Iterable[str] = (),
        record: bool = True,
        partition: str | None = None,
    ) -> Session:
        """A conversation: turns share history, and the whole is recorded as one trace.

        Args:
            session_id: the conversation's id (recorded in traces, seen by sources).
            tenant: who owns it; the cache is scoped by tenant.
            task_type: the task's type, when known up front.
            tags: tags that narrow prediction for every turn.
            record: append the session to the TraceStore when it closes.
            partition: a cache scope of its own inside the tenant (e.g. the session id, for
                per-conversation content): nothing fetched under it is served outside it.
        """
        session_id = check_identifier(session_id, "a session id")
        tenant = check_identifier(tenant, "a tenant")
        partition = check_optional_identifier(partition, "a partition")
        return Session(
            self,
            session_id,
            tenant=tenant,
            task_type=optional_text(task_type, "a task type"),
            tags=text_tuple(tags, "tags"),
            record=record,
            partition=partition,
        )

    @property
    def open_sessions(self) -> tuple[Session, ...]:
        """Sessions entered or with a started turn, and not closed yet."""
        return tuple(self._sessions)

    def session_opened(self, session: Session) -> None:
        """Track ``session`` so :meth:`aclose` closes it (called by the session)."""
        self._sessions.add(session)

    def session_closed(self, session: Session) -> None:
        """Stop tracking ``session`` (called by the session as it closes)."""
        self._sessions.discard(session)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Receive every engine event; returns an unsubscribe function."""
        return self.events.subscribe(fn)

    def emit(self, event: Event) -> None:
        """Deliver an event to the subscribers."""
        self.events.emit(event)

    def next_turn_number(self) -> int:
        """A number unique among this engine's turns (turn ids are ``session/number``)."""
        return next(self._turn_numbers)

    # -- fetching ----------------------------------------------------------------------------------

    @property
    def fetches_running(self) -> int:
        """Hydrations running now, on demand or speculative (0 once everything settled)."""
        return self._fetcher.running

    def latency_estimate(self, section: Section) -> float:
        """Expected hydration latency of the section's source (seconds, moving average)."""
        return self._fetcher.latency_estimate(section)

    def key_for(self, section: Section, scope: Scope) -> CacheKey:
        """The cache key of a section for a scope (tenant and partition as separate fields, current version)."""
        return key_for(section, scope)

    async def lookup(self, section: Section, scope: Scope) -> tuple[CacheEntry, Outcome, str | None]:
        """Serve a section: from cache, by joining a running fetch, or by hydrating it now.

        Single-flight: concurrent requests for the same key share one hydration.
        """
        return await self._fetcher.lookup(section, scope)

    async def cached(self, key: CacheKey) -> CacheEntry | None:
        """The entry at ``key`` if some tier holds it (an older version's text, for a delta)."""
        found = await self.cache.get(key)
        return found[0] if found is not None else None

    def launch_prefetch(
        self,
        record: PrefetchRecord,
        section: Section,
        scope: Scope,
        *,
        started: PrefetchStartedHook,
        finished: PrefetchFinishedHook,
    ) -> asyncio.Task[object] | None:
        """Start a speculative hydration for a turn (None: already running, or the source is not speculative)."""
        return self._fetcher.launch_prefetch(record, section, scope, started=started, finished=finished)

    def claim_prefetch(self, key: CacheKey) -> PrefetchRecord | None:
        """A request used the entry at ``key``: mark the live prefetch that made it used."""
        return self._fetcher.claim_prefetch(key)

    async def settle_prefetch(self, record: PrefetchRecord, *, discard: bool) -> None:
        """A prefetch's turn ended: forget it, and delete its entry when ``discard``."""
        await self._fetcher.settle_prefetch(record, discard=discard)
