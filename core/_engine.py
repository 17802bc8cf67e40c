"""Engine, Session and Turn: the lifecycle that predicts, prefetches, serves and bails out.

``async with session.turn(...)`` compiles nothing into the prompt: it predicts and launches
prefetches. ``await turn.request_context(...)`` answers from the warm cache (``hit``), joins a
running fetch (``inflight``) or hydrates on demand (``miss``). Leaving the turn is the bailout: it
cancels what is still running, deletes prefetched entries nobody asked for and returns a
:class:`TurnReport`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

from ._cache import CacheEntry, CacheKey, WarmCache
from ._catalog import Catalog
from ._errors import (
    ConfigError,
    HydrationTimeout,
    InputError,
    PrehydrateError,
    RequestTooLargeError,
    SourceError,
)
from ._events import (
    EventBus,
    Lookup,
    LookupFailed,
    Outcome,
    PrefetchFinished,
    PrefetchSettled,
    PrefetchStarted,
    Subscriber,
    TurnEnded,
    TurnStarted,
)
from ._predict import Candidate, ContextRequest, Learner, PredictionState, Predictor, SequentialPredictor
from ._prefetch import AdaptiveWidth, Prefetcher, PrefetchPolicy, PrefetchRecord
from ._sections import DEFAULT_TENANT, Hydrated, Scope, Section, content_version, estimate_tokens
from ._sources import Source, check_section_id
from ._traces import Call, SessionTrace, TaskSpec, TraceStore, TurnTrace

__all__ = ["ContextResult", "Engine", "EngineLimits", "Session", "Turn", "TurnReport"]

logger = logging.getLogger("prehydrate.engine")


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineLimits:
    """Input bounds: oversized requests are refused with a clear error instead of being served."""

    max_query_chars: int = 4096
    """Longest free-text query accepted by ``request_context(query=...)``."""
    max_content_bytes: int = 16 << 20
    """Largest hydrated section accepted from a source."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextResult:
    """The answer to one ``request_context`` call."""

    section_id: str
    title: str
    content: str
    outcome: Outcome
    """``hit`` (ready in cache), ``inflight`` (joined a running fetch) or ``miss`` (hydrated now)."""
    waited_ms: float
    version: str
    bytes: int
    tier: str | None = None
    """The cache tier that answered a hit."""

    @property
    def tokens(self) -> int:
        """Approximate tokens of the content."""
        return estimate_tokens(self.content)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnReport:
    """What a turn cost and what speculation bought.

    ``prefetched`` counts speculative hydrations launched; ``wasted`` those not used by a request
    (finished unused, cancelled at bailout or failed), of which ``cancelled`` and ``failed`` are
    broken out. ``bytes_wasted`` counts bytes hydrated and discarded.
    """

    turn_id: str
    session: str
    tenant: str
    calls: int = 0
    hits: int = 0
    inflight: int = 0
    misses: int = 0
    errors: int = 0
    prefetched: int = 0
    used: int = 0
    wasted: int = 0
    cancelled: int = 0
    failed: int = 0
    bytes_prefetched: int = 0
    bytes_wasted: int = 0
    wait_ms: tuple[float, ...] = ()
    duration_ms: float = 0.0
    max_inflight: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits per call (0 when there were no calls)."""
        return self.hits / self.calls if self.calls else 0.0

    @property
    def covered_rate(self) -> float:
        """Hits and in-flight joins per call."""
        return (self.hits + self.inflight) / self.calls if self.calls else 0.0

    @property
    def wait_ms_total(self) -> float:
        """Context wait summed over the turn's calls."""
        return sum(self.wait_ms)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (used by tracing attributes and the CLI)."""
        return {
            "turn_id": self.turn_id,
            "session": self.session,
            "tenant": self.tenant,
            "calls": self.calls,
            "hits": self.hits,
            "inflight": self.inflight,
            "misses": self.misses,
            "errors": self.errors,
            "prefetched": self.prefetched,
            "used": self.used,
            "wasted": self.wasted,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "bytes_prefetched": self.bytes_prefetched,
            "bytes_wasted": self.bytes_wasted,
            "wait_ms_total": round(self.wait_ms_total, 3),
            "duration_ms": round(self.duration_ms, 3),
        }


def _check_optional_str(value: object, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{what} must be a string or None, got {type(value).__name__}")


def _strings(values: object, what: str) -> tuple[str, ...]:
    """A tuple of strings from an iterable of strings; a bare string is refused (it would split into letters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError(f"{what} must be a list of strings, got {type(values).__name__}")
    out = tuple(values)
    if not all(isinstance(v, str) for v in out):
        raise InputError(f"{what} must be a list of strings")
    return out


KEPT_RESULTS = 256
"""Results a turn keeps in ``Turn.results``; its report still counts every call."""

_FetchResult = tuple[CacheEntry, bool]
"""An entry and whether it came from the cache rather than from the source."""


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
    ) -> None:
        if not sources:
            raise ConfigError("an Engine needs at least one source")
        self.sources = list(sources)
        self.cache = cache if cache is not None else WarmCache()
        self.predictor: Predictor = predictor if predictor is not None else SequentialPredictor()
        self.policy = policy if policy is not None else PrefetchPolicy()
        self.width = AdaptiveWidth(self.policy)
        """The prefetch width, adapted across turns when ``policy.adaptive`` is on."""
        self.traces = traces
        self.limits = limits if limits is not None else EngineLimits()
        self.learn_on_start = learn_on_start
        self.events = EventBus()
        self._catalog: Catalog | None = None
        self._source_of: dict[str, Source] = {}
        self._inflight: dict[CacheKey, asyncio.Task[_FetchResult]] = {}
        self._live_prefetch: dict[CacheKey, PrefetchRecord] = {}
        self._latency: dict[str, float] = {}
        self._turn_ids = itertools.count(1)
        self._started = False
        self._sessions: set[Session] = set()
        self._bg: set[asyncio.Task[Any]] = set()

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
        self._source_of = source_of
        return self._catalog

    async def start(self) -> None:
        """Build the catalog and let the predictor learn from the recorded traces."""
        if self._started:
            return
        # Build the catalog and its BM25 index off the loop now, so the first request by query does
        # not pay for indexing inside its measured wait.
        await asyncio.to_thread(lambda: self.catalog.warm())
        if self.learn_on_start:
            await self.learn()
        self._started = True

    async def learn(self) -> int:
        """Fit the predictor on the TraceStore (when both exist); returns the sessions used."""
        if self.traces is None or not isinstance(self.predictor, Learner):
            return 0
        traces = await asyncio.to_thread(self.traces.load)
        if traces:
            predictor = self.predictor
            catalog = self.catalog
            await asyncio.to_thread(predictor.fit, traces, catalog)
        return len(traces)

    async def aclose(self) -> None:
        """Close open sessions (bailing out their turns), then the cache and the sources."""
        for session in list(self._sessions):
            await session.aclose()
        for task in list(self._inflight.values()) + list(self._bg):
            task.cancel()
        pending = list(self._inflight.values()) + list(self._bg)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.cache.aclose()
        for src in self.sources:
            await src.aclose()
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Receive every engine event; returns an unsubscribe function."""
        return self.events.subscribe(fn)

    def session(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        task_type: str | None = None,
        tags: Iterable[str] = (),
        record: bool = True,
    ) -> Session:
        """A conversation: turns share history, and the whole is recorded as one trace."""
        if not isinstance(session_id, str) or not session_id:
            raise InputError("a session id must be a non-empty string")
        if not isinstance(tenant, str) or not tenant:
            raise InputError("a tenant must be a non-empty string")
        _check_optional_str(task_type, "a task type")
        return Session(self, session_id, tenant=tenant, task_type=task_type, tags=_strings(tags, "tags"), record=record)

    # -- fetching ----------------------------------------------------------------------------------

    def latency_estimate(self, section: Section) -> float:
        """Expected hydration latency of the section's source (seconds, moving average)."""
        src = self._source_of.get(section.id)
        return self._latency.get(src.name, 0.1) if src is not None else 0.1

    def _observe_latency(self, src: Source, seconds: float) -> None:
        old = self._latency.get(src.name)
        self._latency[src.name] = seconds if old is None else 0.8 * old + 0.2 * seconds

    def key_for(self, section: Section, scope: Scope) -> CacheKey:
        """The cache key of a section for a scope (tenant and current version)."""
        return CacheKey(scope.tenant, section.id, section.version)

    async def _hydrate(self, section: Section, scope: Scope, *, prefetched: bool) -> _FetchResult:
        # Cross-process single-flight: when another replica sharing a cache tier is hydrating this
        # key, take its result instead of hydrating again (a no-op without a coordinating tier).
        async with self.cache.fill(self.key_for(section, scope)) as filled:
            if filled is not None:
                return filled, True
            return await self._hydrate_source(section, scope, prefetched=prefetched)

    async def _hydrate_source(self, section: Section, scope: Scope, *, prefetched: bool) -> _FetchResult:
        src = self._source_of.get(section.id)
        if src is None:
            raise SourceError(f"no source for section {section.id!r}", section_id=section.id)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                hydrated = await src.hydrate(section.id, scope=scope)
        except TimeoutError:
            raise HydrationTimeout(
                f"source {src.name!r} took longer than {self.policy.timeout_s}s to hydrate {section.id!r}",
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
        valid = isinstance(hydrated, Hydrated) and isinstance(hydrated.content, str)
        if not (valid and isinstance(hydrated.version, str)):  # a third-party source broke the protocol
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
        size = hydrated.size_bytes
        if size > self.limits.max_content_bytes:
            raise RequestTooLargeError(f"section {section.id!r}", size, self.limits.max_content_bytes)
        version = hydrated.version or content_version(hydrated.content)
        if section.version and version != section.version:
            # The source changed since listing: serve and cache the fresh content under its own
            # version, and move the catalog on so older entries are never looked up again.
            section = replace(section, version=version, size_bytes=size, tokens=estimate_tokens(hydrated.content))
            self.catalog.replace(section)
        key = self.key_for(section, scope)
        entry = self.cache.entry(key, hydrated.content, title=section.title, prefetched=prefetched)
        await self.cache.put(entry)
        return entry, False

    def _register(self, key: CacheKey, coro: Any) -> asyncio.Task[_FetchResult]:
        task: asyncio.Task[_FetchResult] = asyncio.get_running_loop().create_task(coro)
        self._inflight[key] = task

        def _unregister(t: asyncio.Task[_FetchResult]) -> None:
            if self._inflight.get(key) is t:
                del self._inflight[key]
            if not t.cancelled():
                t.exception()  # retrieved here so a failed prefetch nobody joined is not logged

        task.add_done_callback(_unregister)
        return task

    async def lookup(self, section: Section, scope: Scope) -> tuple[CacheEntry, Outcome, str | None]:
        """Serve a section: from cache, by joining a running fetch, or by hydrating it now.

        Single-flight: concurrent requests for the same key share one hydration.
        """
        key = self.key_for(section, scope)
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

    def _launch_prefetch(self, turn: Turn, record: PrefetchRecord, section: Section) -> asyncio.Task[object] | None:
        if record.key in self._inflight:
            return None
        src = self._source_of.get(section.id)
        if src is None or not src.speculative:
            return None

        async def run() -> _FetchResult:
            loop = asyncio.get_running_loop()
            record.status = "running"
            record.start_ns = time.time_ns()
            record.started_at = loop.time()
            turn._prefetch_started(record)
            status: str = "failed"
            error: str | None = None
            try:
                found = await self.cache.get(record.key)
                if found is not None:
                    status = "warm"
                    return found[0], True
                result = await self._hydrate(section, turn.scope, prefetched=True)
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
                record.status = status  # type: ignore[assignment]
                record.end_ns = time.time_ns()
                record.finished_at = loop.time()
                turn._prefetch_finished(record, "ok" if status in ("ok", "warm") else status, error)

        return self._register(record.key, run())


class Session:
    """One conversation of one tenant: its turns share history and are recorded as one trace."""

    def __init__(
        self,
        engine: Engine,
        session_id: str,
        *,
        tenant: str,
        task_type: str | None,
        tags: tuple[str, ...],
        record: bool,
    ) -> None:
        self.engine = engine
        self.session_id = session_id
        self.tenant = tenant
        self.task_type = task_type
        self.tags = tags
        self.record = record
        self.task_query = ""
        self.history: list[tuple[str, ...]] = []
        self.history_queries: list[str] = []
        self.turns: list[TurnTrace] = []
        self.reports: list[TurnReport] = []
        self.current: Turn | None = None
        self.closed = False

    @property
    def scope(self) -> Scope:
        """The tenant scope of everything this session does."""
        return Scope(tenant=self.tenant, session=self.session_id)

    def turn(
        self,
        query: str = "",
        *,
        task_type: str | None = None,
        tags: Iterable[str] = (),
        expect: Sequence[str] | None = None,
        budget_tokens: int | None = None,
        node: str | None = None,
    ) -> Turn:
        """A new turn; use as ``async with`` (entering predicts and prefetches, leaving bails out).

        Args:
            query: the user's message of this turn.
            task_type: the task's type (defaults to the session's).
            tags: tags that narrow prediction.
            expect: section ids to prefetch instead of asking the predictor.
            budget_tokens: token budget of the compiled context, passed to predictors.
            node: the workflow node about to run, when known.
        """
        if self.closed:
            raise InputError(f"session {self.session_id!r} is closed")
        if not isinstance(query, str):
            raise InputError("a turn query must be a string")
        if len(query) > self.engine.limits.max_query_chars * 16:
            raise RequestTooLargeError("turn query", len(query), self.engine.limits.max_query_chars * 16)
        _check_optional_str(task_type, "a task type")
        _check_optional_str(node, "a node")
        tags = _strings(tags, "tags")
        if expect is not None:
            expect = _strings(expect, "expect")
        if budget_tokens is not None and (isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int)):
            raise InputError(f"budget_tokens must be an int or None, got {type(budget_tokens).__name__}")
        if task_type is not None:
            self.task_type = task_type
        if not self.task_query:
            self.task_query = query
        all_tags = tuple(dict.fromkeys((*self.tags, *tags)))
        request = ContextRequest(
            query=query,
            task_type=self.task_type,
            task_query=self.task_query,
            tags=all_tags,
            budget_tokens=budget_tokens,
            scope=self.scope,
        )
        return Turn(self, request, expect=expect, node=node)

    def _finished(self, turn: Turn) -> None:
        self.history.append(tuple(c.key for c in turn.calls))
        self.history_queries.append(turn.request.query)
        self.turns.append(TurnTrace(query=turn.request.query, calls=tuple(turn.calls)))
        if turn.report is not None:
            self.reports.append(turn.report)
        if self.current is turn:
            self.current = None

    def trace(self) -> SessionTrace:
        """This session in the trace format."""
        return SessionTrace(
            session=self.session_id,
            task=TaskSpec(type=self.task_type or "", query=self.task_query, tags=self.tags),
            turns=tuple(self.turns),
        )

    async def aclose(self) -> None:
        """Bail out of an open turn and record the session in the TraceStore."""
        if self.closed:
            return
        if self.current is not None:
            await self.current.end()
        self.closed = True
        self.engine._sessions.discard(self)
        store = self.engine.traces
        if store is not None and self.record and self.turns:
            await asyncio.to_thread(store.append, self.trace())

    async def __aenter__(self) -> Self:
        self.engine._sessions.add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Turn:
    """One user message and the model's calls until it answers."""

    def __init__(
        self, session: Session, request: ContextRequest, *, expect: Sequence[str] | None, node: str | None
    ) -> None:
        self.session = session
        self.engine = session.engine
        self.request = request
        self.expect = list(expect) if expect is not None else None
        self.node = node
        self.turn_id = f"{session.session_id}/{next(self.engine._turn_ids)}"
        self.scope = session.scope
        self.calls: list[Call] = []
        self.results: deque[ContextResult] = deque(maxlen=KEPT_RESULTS)
        """The turn's most recent results (a long-lived turn must not hold every content it served)."""
        self._outcomes: list[Outcome] = []
        self._waits: list[float] = []
        self.report: TurnReport | None = None
        self._errors = 0
        self._prefetcher = Prefetcher(
            self.engine.policy,
            lambda record, section: self.engine._launch_prefetch(self, record, section),
            self.engine.latency_estimate,
            id_prefix=f"{self.turn_id}/p",
            top_n=self.engine.width.current if self.engine.width.policy is self.engine.policy else None,
        )
        self._started = False
        self._t0 = 0.0
        self._start_ns = 0
        self._last_end = 0.0

    @property
    def prefetches(self) -> list[PrefetchRecord]:
        """Every speculative hydration launched in this turn so far."""
        return list(self._prefetcher.records)

    def state(self) -> PredictionState:
        """The predictor's view of this turn right now."""
        return PredictionState(
            request=self.request,
            catalog=self.engine.catalog,
            calls=tuple(c.key for c in self.calls),
            history=tuple(self.session.history),
            history_queries=tuple(self.session.history_queries),
            node=self.node,
        )

    def _predict(self) -> list[Candidate]:
        policy = self.engine.policy
        if not policy.enabled or self._prefetcher.top_n == 0:
            return []
        if self.expect is not None:
            if self.calls:
                return []
            return [Candidate(section_id=s, probability=1.0, reason="expected by caller") for s in self.expect]
        k = self._prefetcher.top_n + len(self.calls)
        return self.engine.predictor.predict(self.state(), k)

    def _schedule(self, candidates: Sequence[Candidate]) -> None:
        catalog = self.engine.catalog
        seen = {c.key for c in self.calls}
        items = []
        for cand in candidates:
            if cand.section_id in seen or cand.section_id not in catalog:
                continue
            section = catalog.get(cand.section_id)
            items.append((cand, section, self.engine.key_for(section, self.scope)))
        self._prefetcher.offer(items)

    async def start(self) -> Self:
        """Predict and launch prefetches; returns at once (hydration runs in the background)."""
        if self._started:
            return self
        if self.session.current is not None and self.session.current is not self:
            await self.session.current.end()
        self.session.current = self
        self.session.engine._sessions.add(self.session)
        self._started = True
        loop = asyncio.get_running_loop()
        self._t0 = self._last_end = loop.time()
        self._start_ns = time.time_ns()
        candidates = self._predict()
        self.engine.events.emit(
            TurnStarted(
                turn_id=self.turn_id,
                session=self.session.session_id,
                tenant=self.scope.tenant,
                query=self.request.query,
                task_type=self.request.task_type,
                candidates=tuple((c.section_id, c.probability) for c in candidates),
                time_ns=self._start_ns,
            )
        )
        self._schedule(candidates)
        return self

    def _resolve(self, key: str | None, query: str | None) -> Section:
        if (key is None) == (query is None):
            raise InputError("request_context takes exactly one of a section id or a query")
        catalog = self.engine.catalog
        if key is not None:
            return catalog.get(check_section_id(key))
        assert query is not None
        if not isinstance(query, str) or not query.strip():
            raise InputError("a query must be a non-empty string")
        if len(query) > self.engine.limits.max_query_chars:
            limit = self.engine.limits.max_query_chars
            raise RequestTooLargeError("query", len(query.encode("utf-8", "replace")), limit)
        if "\x00" in query:
            raise InputError("a query may not contain NUL bytes")
        return catalog.resolve(query)

    async def request_context(
        self,
        key: str | None = None,
        *,
        query: str | None = None,
        tool_call_id: str | None = None,
        node: str | None = None,
        repredict: bool = True,
    ) -> ContextResult:
        """Return a section's content, from the warm cache when it was predicted.

        Args:
            key: the section id (``billing/refunds``).
            query: free text resolved to the best-matching section instead of an id.
            tool_call_id: the model's tool call id, passed to events (tracing).
            node: the workflow node making the call, recorded in the trace.
            repredict: re-predict and queue prefetches before returning (per the policy). A front
                end that answers first and re-predicts in the idle time after passes False and
                calls :meth:`repredict` itself.

        Raises:
            UnknownSectionError: no such id (with suggestions).
            NoMatchError: the query matched nothing.
            InputError: both or neither of key and query, or malformed values.
            SourceError: hydration failed on demand.
        """
        if not self._started:
            await self.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        start_ns = time.time_ns()
        think_ms = max(0.0, (t0 - self._last_end) * 1000.0)
        try:
            section = self._resolve(key, query)
            self._prefetcher.forget(section.id)
            entry, outcome, tier = await self.engine.lookup(section, self.scope)
        except PrehydrateError as exc:
            self._errors += 1
            self._last_end = loop.time()
            self.engine.events.emit(
                LookupFailed(
                    turn_id=self.turn_id,
                    session=self.session.session_id,
                    tenant=self.scope.tenant,
                    section_id=key if isinstance(key, str) else None,
                    query=query if isinstance(query, str) else None,
                    error_type=type(exc).__name__,
                    message=str(exc),
                    tool_call_id=tool_call_id,
                    start_ns=start_ns,
                    end_ns=time.time_ns(),
                )
            )
            raise
        t1 = loop.time()
        self._last_end = t1
        waited_ms = (t1 - t0) * 1000.0
        lead_ms: float | None = None
        record = self.engine._live_prefetch.get(entry.key)
        if record is not None and outcome != "miss":
            record.used = True
            self.engine.cache.mark_used(entry.key)
            if record.finished_at is not None and outcome == "hit":
                lead_ms = max(0.0, (t0 - record.finished_at) * 1000.0)
        result = ContextResult(
            section_id=section.id,
            title=section.title,
            content=entry.content,
            outcome=outcome,
            waited_ms=waited_ms,
            version=entry.key.version,
            bytes=entry.size_bytes,
            tier=tier,
        )
        self.calls.append(Call(key=section.id, think_ms=round(think_ms, 3), node=node or self.node))
        self.results.append(result)
        self._outcomes.append(outcome)
        self._waits.append(waited_ms)
        self.engine.events.emit(
            Lookup(
                turn_id=self.turn_id,
                session=self.session.session_id,
                tenant=self.scope.tenant,
                section_id=section.id,
                outcome=outcome,
                waited_ms=waited_ms,
                bytes=result.bytes,
                lead_ms=lead_ms,
                tier=tier,
                query=query,
                tool_call_id=tool_call_id,
                node=node or self.node,
                start_ns=start_ns,
                end_ns=time.time_ns(),
            )
        )
        if repredict:
            self.repredict()
        return result

    def repredict(self) -> None:
        """Predict again from the calls so far and queue what is new (no-op once the turn ended).

        Follows ``PrefetchPolicy.repredict``; ``request_context`` calls it unless told not to.
        """
        if self.engine.policy.repredict and self.report is None:
            self._schedule(self._predict())

    async def end(self) -> TurnReport:
        """The bailout: cancel speculation still running, discard what was not used, report."""
        if self.report is not None:
            return self.report
        if not self._started:
            await self.start()
        await self._prefetcher.close()
        engine = self.engine
        prefetched = used = wasted = cancelled = failed = bytes_prefetched = bytes_wasted = 0
        for rec in self._prefetcher.records:
            if rec.status == "warm":
                continue
            if rec.status == "queued":
                self._never_ran(rec)
            prefetched += 1
            bytes_prefetched += rec.bytes
            if engine._live_prefetch.get(rec.key) is rec:
                del engine._live_prefetch[rec.key]
            outcome: str
            if rec.used:
                used += 1
                outcome = "used"
            elif rec.status == "cancelled":
                wasted += 1
                cancelled += 1
                outcome = "cancelled"
            elif rec.status == "failed":
                wasted += 1
                failed += 1
                outcome = "failed"
            else:
                wasted += 1
                bytes_wasted += rec.bytes
                outcome = "wasted"
                if engine.policy.discard_unused:
                    await engine.cache.delete(rec.key)
            engine.events.emit(
                PrefetchSettled(
                    turn_id=self.turn_id,
                    session=self.session.session_id,
                    tenant=self.scope.tenant,
                    prefetch_id=rec.prefetch_id,
                    section_id=rec.section_id,
                    outcome=outcome,  # type: ignore[arg-type]
                    bytes=rec.bytes,
                    start_ns=rec.start_ns,
                    end_ns=rec.end_ns or time.time_ns(),
                )
            )
        outcomes = self._outcomes
        self.report = TurnReport(
            turn_id=self.turn_id,
            session=self.session.session_id,
            tenant=self.scope.tenant,
            calls=len(outcomes),
            hits=outcomes.count("hit"),
            inflight=outcomes.count("inflight"),
            misses=outcomes.count("miss"),
            errors=self._errors,
            prefetched=prefetched,
            used=used,
            wasted=wasted,
            cancelled=cancelled,
            failed=failed,
            bytes_prefetched=bytes_prefetched,
            bytes_wasted=bytes_wasted,
            wait_ms=tuple(self._waits),
            duration_ms=(asyncio.get_running_loop().time() - self._t0) * 1000.0,
            max_inflight=self._prefetcher.max_running,
        )
        engine.width.observe(calls=self.report.calls, misses=self.report.misses, prefetched=prefetched, wasted=wasted)
        self.session._finished(self)
        engine.events.emit(
            TurnEnded(
                turn_id=self.turn_id,
                session=self.session.session_id,
                tenant=self.scope.tenant,
                report=self.report,
                start_ns=self._start_ns,
                end_ns=time.time_ns(),
            )
        )
        return self.report

    def _prefetch_started(self, rec: PrefetchRecord) -> None:
        self.engine.events.emit(
            PrefetchStarted(
                turn_id=self.turn_id,
                session=self.session.session_id,
                tenant=self.scope.tenant,
                prefetch_id=rec.prefetch_id,
                section_id=rec.section_id,
                probability=rec.probability,
                reason=rec.reason,
                time_ns=rec.start_ns,
            )
        )

    def _prefetch_finished(self, rec: PrefetchRecord, status: str, error: str | None) -> None:
        duration = 0.0 if rec.finished_at is None else (rec.finished_at - rec.started_at) * 1000.0
        self.engine.events.emit(
            PrefetchFinished(
                turn_id=self.turn_id,
                session=self.session.session_id,
                tenant=self.scope.tenant,
                prefetch_id=rec.prefetch_id,
                section_id=rec.section_id,
                status=status,  # type: ignore[arg-type]
                bytes=rec.bytes,
                duration_ms=duration,
                error=error,
                time_ns=rec.end_ns,
            )
        )

    def _never_ran(self, rec: PrefetchRecord) -> None:
        """A prefetch cancelled before its task first ran: report it as started and cancelled.

        Its coroutine never executed, so it emitted nothing; observers (tracing) still see one
        start, one finish and one settlement per launched prefetch.
        """
        rec.status = "cancelled"
        rec.start_ns = rec.end_ns = time.time_ns()
        self._prefetch_started(rec)
        self._prefetch_finished(rec, "cancelled", None)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.end()
