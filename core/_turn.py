"""A turn: one user message and the model's calls until it answers.

``async with session.turn(...)`` compiles nothing into the prompt: it predicts and launches
prefetches. ``await turn.request_context(...)`` answers from the warm cache (``hit``), joins a
running fetch (``inflight``) or hydrates on demand (``miss``). Leaving the turn is the bailout: it
cancels what is still running, deletes prefetched entries nobody asked for and returns a
:class:`TurnReport`.

A turn talks to its engine only through :class:`TurnEngine` and to its conversation only through
:class:`TurnOwner`, so this module imports neither and neither reads a turn's private state.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Protocol, Self

from ._cache import CacheEntry, CacheKey
from ._catalog import Catalog
from ._delta import unified_delta
from ._errors import InputError, PrehydrateError, RequestTooLargeError
from ._events import (
    Event,
    Lookup,
    LookupFailed,
    Outcome,
    PrefetchFinished,
    PrefetchSettled,
    PrefetchStarted,
    PrefetchStatus,
    Settlement,
    TurnEnded,
    TurnIds,
    TurnReport,
    TurnStarted,
)
from ._fetch import PrefetchFinishedHook, PrefetchStartedHook
from ._inputs import EngineLimits, optional_text
from ._predict import Candidate, ContextRequest, PredictionState, Predictor
from ._prefetch import AdaptiveWidth, Prefetcher, PrefetchPolicy, PrefetchRecord
from ._sections import Scope, Section, estimate_tokens
from ._sources import check_section_id
from ._text import clean_text, utf8
from ._traces import Call
from ._workflow import WorkflowDAG

__all__ = ["KEPT_RESULTS", "ContextResult", "Turn", "TurnEngine", "TurnOwner"]

KEPT_RESULTS = 256
"""Results a turn keeps in ``Turn.results``; its report still counts every call."""


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
    diff: str | None = None
    """With ``since_version``: a unified diff from ``base_version`` to ``version`` (``content`` is still
    the whole text); None when the full content is the answer (base unknown or evicted, or the diff
    is not smaller)."""
    base_version: str | None = None
    """The version ``diff`` starts from (the caller's ``since_version``), when there is a diff."""

    @property
    def delta(self) -> bool:
        """True when :attr:`diff` is the answer to transmit instead of :attr:`content`."""
        return self.diff is not None

    @property
    def tokens(self) -> int:
        """Approximate tokens of the content."""
        return estimate_tokens(self.content)


def _result(section: Section, entry: CacheEntry, outcome: Outcome, waited_ms: float, tier: str | None) -> ContextResult:
    """The answer for ``section`` served from ``entry``."""
    return ContextResult(
        section_id=section.id,
        title=section.title,
        content=entry.content,
        outcome=outcome,
        waited_ms=waited_ms,
        version=entry.key.version,
        bytes=entry.size_bytes,
        tier=tier,
    )


def _check_since(since_version: object) -> None:
    if since_version is not None and not isinstance(since_version, str):
        raise InputError("since_version must be a string (a version returned by an earlier request)")


class TurnEngine(Protocol):
    """What a turn needs from its engine: the catalog, prediction, the width, lookup, prefetch and events."""

    @property
    def catalog(self) -> Catalog: ...
    @property
    def policy(self) -> PrefetchPolicy: ...
    @property
    def predictor(self) -> Predictor: ...
    def predictor_for(self, tenant: str) -> Predictor:
        """The predictor that serves ``tenant`` (each tenant learns from its own sessions)."""
        ...

    @property
    def limits(self) -> EngineLimits: ...
    @property
    def width(self) -> AdaptiveWidth:
        """The one owner of the prefetch width; a turn reads it at start and feeds it at the end."""
        ...

    def next_turn_number(self) -> int: ...
    def key_for(self, section: Section, scope: Scope) -> CacheKey: ...
    def latency_estimate(self, section: Section) -> float: ...
    async def lookup(self, section: Section, scope: Scope) -> tuple[CacheEntry, Outcome, str | None]: ...
    async def cached(self, key: CacheKey) -> CacheEntry | None: ...
    def launch_prefetch(
        self,
        record: PrefetchRecord,
        section: Section,
        scope: Scope,
        *,
        started: PrefetchStartedHook,
        finished: PrefetchFinishedHook,
    ) -> asyncio.Task[object] | None: ...
    def claim_prefetch(self, key: CacheKey) -> PrefetchRecord | None: ...
    async def settle_prefetch(self, record: PrefetchRecord, *, discard: bool) -> None: ...
    def emit(self, event: Event) -> None: ...


class TurnOwner(Protocol):
    """What a turn needs from its conversation: who it is, what came before, and the turn handover."""

    @property
    def session_id(self) -> str: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def history(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def history_queries(self) -> tuple[str, ...]: ...
    async def begin_turn(self, turn: Turn) -> None: ...
    def finish_turn(self, turn: Turn) -> None: ...
    async def after_turn(self, turn: Turn) -> None: ...


@dataclass(slots=True)
class _Tally:
    """What became of a turn's prefetches, counted at bailout."""

    prefetched: int = 0
    used: int = 0
    wasted: int = 0
    cancelled: int = 0
    failed: int = 0
    bytes_prefetched: int = 0
    bytes_wasted: int = 0

    def add(self, rec: PrefetchRecord, outcome: Settlement) -> None:
        self.prefetched += 1
        self.bytes_prefetched += rec.bytes
        if outcome == "used":
            self.used += 1
            return
        self.wasted += 1
        if outcome == "cancelled":
            self.cancelled += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.bytes_wasted += rec.bytes


def _settlement(rec: PrefetchRecord) -> Settlement:
    """``used``, ``cancelled``, ``failed`` or ``wasted`` (finished, never requested)."""
    if rec.used:
        return "used"
    if rec.status == "cancelled":
        return "cancelled"
    if rec.status == "failed":
        return "failed"
    return "wasted"


class Turn:
    """One user message and the model's calls until it answers."""

    def __init__(
        self,
        session: TurnOwner,
        engine: TurnEngine,
        request: ContextRequest,
        *,
        expect: Sequence[str] | None,
        node: str | None,
    ) -> None:
        self.session = session
        self.engine = engine
        self.request = request
        self.expect = list(expect) if expect is not None else None
        self.node = node
        self.workflow: WorkflowDAG | None = None
        """The graph this turn runs, when a workflow front end knows it (an input of prediction)."""
        self.turn_id = f"{session.session_id}/{engine.next_turn_number()}"
        self.scope = session.scope
        self._ids = TurnIds(turn_id=self.turn_id, session=session.session_id, tenant=self.scope.tenant)
        """What every event of this turn carries (events are built as ``Kind(**self._ids, ...)``)."""
        self.calls: deque[Call] = deque(maxlen=engine.limits.max_turn_calls)
        """The turn's calls, the most recent ``EngineLimits.max_turn_calls`` (a turn that never ends is bounded)."""
        self.results: deque[ContextResult] = deque(maxlen=KEPT_RESULTS)
        """The turn's most recent results (a long-lived turn must not hold every content it served)."""
        self._outcomes: list[Outcome] = []
        self._waits: list[float] = []
        self.report: TurnReport | None = None
        self._errors = 0
        self._prefetcher = Prefetcher(
            engine.policy,
            self._launch,
            engine.latency_estimate,
            top_n=engine.width.current,
            min_probability=engine.width.floor,
            id_prefix=f"{self.turn_id}/p",
        )
        self.prepositioned = False
        """Started by the session between turns (no user message yet); the next turn asked for continues it."""
        self._adopted = False
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
            history=self.session.history,
            history_queries=self.session.history_queries,
            node=self.node,
            workflow=self.workflow,
        )

    def _predict(self) -> list[Candidate]:
        if not self.engine.policy.enabled or self._prefetcher.top_n == 0:
            return []
        if self.expect is not None:
            if self.calls:
                return []
            return [Candidate(section_id=s, probability=1.0, reason="expected by caller") for s in self.expect]
        k = self._prefetcher.top_n + len(self.calls)
        return self.engine.predictor_for(self.scope.tenant).predict(self.state(), k)

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

    def _launch(self, record: PrefetchRecord, section: Section) -> asyncio.Task[object] | None:
        return self.engine.launch_prefetch(
            record, section, self.scope, started=self._prefetch_started, finished=self._prefetch_finished
        )

    def adopt(self, request: ContextRequest, *, expect: Sequence[str] | None, node: str | None) -> Self:
        """Become the session's next turn (called by the session on a pre-positioned turn).

        The prefetches launched between turns stay; starting the turn predicts again from ``request``.
        """
        self.request = request
        self.expect = list(expect) if expect is not None else None
        self.node = node
        self.prepositioned = False
        self._adopted = True
        return self

    async def start(self) -> Self:
        """Predict and launch prefetches; returns at once (hydration runs in the background)."""
        if self._started:
            if self._adopted:  # a pre-positioned turn taken over: the user's message is known now
                # No second TurnStarted: observers keep the one span they opened between turns.
                self._adopted = False
                self._last_end = asyncio.get_running_loop().time()
                self._schedule(self._predict())
            return self
        await self.session.begin_turn(self)
        self._started = True
        loop = asyncio.get_running_loop()
        self._t0 = self._last_end = loop.time()
        self._start_ns = time.time_ns()
        candidates = self._predict()
        self.engine.emit(
            TurnStarted(
                **self._ids,
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
        limit = self.engine.limits.max_query_chars
        if len(query) > limit:
            raise RequestTooLargeError("query", len(utf8(query)), limit)
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
        since_version: str | None = None,
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
            since_version: the version of this section the caller already holds; when the cache
                still has it and the change is small, ``result.diff`` carries a unified diff to
                the current version (see ``result.delta``).

        Raises:
            UnknownSectionError: no such id (with suggestions).
            NoMatchError: the query matched nothing.
            InputError: both or neither of key and query, or malformed values.
            SourceError: hydration failed on demand.
        """
        _check_since(since_version)
        query = clean_text(query) if isinstance(query, str) else query  # a client's text, made valid as it enters
        node = optional_text(node, "a node")
        opened_here = not self._started
        if opened_here:
            await self.start()
        self.prepositioned = False  # asked directly (not through session.turn): it is a turn of its own now
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        start_ns = time.time_ns()
        think_ms = max(0.0, (t0 - self._last_end) * 1000.0)
        try:
            section = self._resolve(key, query)
            self._prefetcher.forget(section.id)
            entry, outcome, tier = await self.engine.lookup(section, self.scope)
        except PrehydrateError as exc:
            self._failed(exc, key, query, tool_call_id, start_ns)
            raise
        t1 = self._last_end = loop.time()
        lead_ms = self._claim(entry, outcome, t0)
        outcome = "miss" if opened_here and outcome == "inflight" else outcome  # see _claim
        served = _result(section, entry, outcome, (t1 - t0) * 1000.0, tier)
        result = await self._with_delta(served, entry, since_version)
        call = Call(key=section.id, think_ms=round(think_ms, 3), node=node or self.node)
        self._served(result, call, lead_ms, query, tool_call_id, start_ns)
        if repredict:
            self.repredict()
        return result

    async def _with_delta(self, result: ContextResult, entry: CacheEntry, since_version: str | None) -> ContextResult:
        """``result`` with a diff from ``since_version`` when the cache still holds that version's text."""
        if since_version is None:
            return result
        if since_version == entry.key.version:
            base: str | None = entry.content
        else:
            old = await self.engine.cached(replace(entry.key, version=since_version)) if since_version else None
            base = old.content if old is not None else None
        if base is None:
            return result
        diff = unified_delta(
            result.section_id, base, entry.content, old_version=since_version, new_version=entry.key.version
        )
        return result if diff is None else replace(result, diff=diff, base_version=since_version)

    def _failed(
        self, exc: PrehydrateError, key: str | None, query: str | None, tool_call_id: str | None, start_ns: int
    ) -> None:
        """Count and report a request that raised."""
        self._errors += 1
        self._last_end = asyncio.get_running_loop().time()
        self.engine.emit(
            LookupFailed(
                **self._ids,
                section_id=clean_text(key) if isinstance(key, str) else None,  # refused, still put on spans
                query=query if isinstance(query, str) else None,
                error_type=type(exc).__name__,
                message=str(exc),
                tool_call_id=tool_call_id,
                start_ns=start_ns,
                end_ns=time.time_ns(),
            )
        )

    def _claim(self, entry: CacheEntry, outcome: Outcome, t0: float) -> float | None:
        """Mark the prefetch that made ``entry`` used; returns how long before the request it finished (hits).

        "inflight" means a fetch started before the model asked: a request that opened its turn and
        joined the prefetch it just launched saved nothing and is reported as a miss (the prefetch
        still counts as used, not wasted).
        """
        if outcome == "miss":
            return None
        record = self.engine.claim_prefetch(entry.key)
        if record is not None and record.finished_at is not None and outcome == "hit":
            return max(0.0, (t0 - record.finished_at) * 1000.0)
        return None

    def _served(
        self,
        result: ContextResult,
        call: Call,
        lead_ms: float | None,
        query: str | None,
        tool_call_id: str | None,
        start_ns: int,
    ) -> None:
        """Record an answered request in the turn and report it."""
        self.calls.append(call)
        self.results.append(result)
        self._outcomes.append(result.outcome)
        self._waits.append(result.waited_ms)
        self.engine.emit(
            Lookup(
                **self._ids,
                section_id=result.section_id,
                outcome=result.outcome,
                waited_ms=result.waited_ms,
                bytes=result.bytes,
                lead_ms=lead_ms,
                tier=result.tier,
                query=query,
                tool_call_id=tool_call_id,
                node=call.node,
                start_ns=start_ns,
                end_ns=time.time_ns(),
            )
        )

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
        tally = _Tally()
        for rec in self._prefetcher.records:
            if rec.status != "warm":
                await self._settle(rec, tally)
        self.report = report = self._make_report(tally)
        width = self.engine.width
        asked = {c.key for c in self.calls}
        offers = [(q, sid in asked) for sid, q in self._prefetcher.offers.items()]
        width.observe(
            calls=report.calls, misses=report.misses, prefetched=tally.prefetched, wasted=tally.wasted, offers=offers
        )
        self.session.finish_turn(self)
        self.engine.emit(TurnEnded(**self._ids, report=report, start_ns=self._start_ns, end_ns=time.time_ns()))
        await self.session.after_turn(self)
        return report

    async def _settle(self, rec: PrefetchRecord, tally: _Tally) -> None:
        """Decide what became of one prefetch, count it, discard its entry when unused, report it."""
        if rec.status == "queued":
            self._never_ran(rec)
        outcome = _settlement(rec)
        tally.add(rec, outcome)
        await self.engine.settle_prefetch(rec, discard=outcome == "wasted" and self.engine.policy.discard_unused)
        self.engine.emit(
            PrefetchSettled(
                **self._ids,
                prefetch_id=rec.prefetch_id,
                section_id=rec.section_id,
                outcome=outcome,
                bytes=rec.bytes,
                start_ns=rec.start_ns,
                end_ns=rec.end_ns or time.time_ns(),
            )
        )

    def _make_report(self, tally: _Tally) -> TurnReport:
        outcomes = self._outcomes
        return TurnReport(
            turn_id=self.turn_id,
            session=self.session.session_id,
            tenant=self.scope.tenant,
            calls=len(outcomes),
            hits=outcomes.count("hit"),
            inflight=outcomes.count("inflight"),
            misses=outcomes.count("miss"),
            errors=self._errors,
            prefetched=tally.prefetched,
            used=tally.used,
            wasted=tally.wasted,
            cancelled=tally.cancelled,
            failed=tally.failed,
            bytes_prefetched=tally.bytes_prefetched,
            bytes_wasted=tally.bytes_wasted,
            wait_ms=tuple(self._waits),
            duration_ms=(asyncio.get_running_loop().time() - self._t0) * 1000.0,
            max_inflight=self._prefetcher.max_running,
        )

    def _prefetch_started(self, rec: PrefetchRecord) -> None:
        self.engine.emit(
            PrefetchStarted(
                **self._ids,
                prefetch_id=rec.prefetch_id,
                section_id=rec.section_id,
                probability=rec.probability,
                reason=rec.reason,
                time_ns=rec.start_ns,
            )
        )

    def _prefetch_finished(self, rec: PrefetchRecord, status: PrefetchStatus, error: str | None) -> None:
        duration = 0.0 if rec.finished_at is None else (rec.finished_at - rec.started_at) * 1000.0
        self.engine.emit(
            PrefetchFinished(
                **self._ids,
                prefetch_id=rec.prefetch_id,
                section_id=rec.section_id,
                status=status,
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
