"""A session: one conversation of one tenant, whose turns share history and are recorded as one trace.

A session hands its turns to :class:`~prehydrate.Turn` one at a time (starting a turn ends the one
before), keeps what the predictor needs from earlier turns, and appends itself to the engine's
TraceStore when it closes. It reaches the engine only through :class:`SessionEngine`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol, Self

from ._errors import InputError, RequestTooLargeError
from ._inputs import optional_text, string_tuple, text_tuple
from ._predict import ContextRequest
from ._sections import DEFAULT_TENANT, Scope
from ._text import clean_text
from ._traces import SessionTrace, TaskSpec, TraceStore, TurnTrace
from ._turn import Turn, TurnEngine

__all__ = ["Session", "SessionEngine"]


class SessionEngine(TurnEngine, Protocol):
    """What a session needs from its engine beyond what its turns need: the trace store and the registry."""

    @property
    def traces(self) -> TraceStore | None: ...
    def session_opened(self, session: Session) -> None: ...
    def session_closed(self, session: Session) -> None: ...


class Session:
    """One conversation of one tenant: its turns share history and are recorded as one trace."""

    def __init__(
        self,
        engine: SessionEngine,
        session_id: str,
        *,
        tenant: str,
        task_type: str | None,
        tags: tuple[str, ...],
        record: bool,
        partition: str | None = None,
    ) -> None:
        self.engine = engine
        self.session_id = session_id
        self.tenant = tenant
        self.partition = partition
        """The cache partition inside the tenant (None: the tenant's shared cache scope)."""
        self.task_type = task_type
        self.tags = tags
        self.record = record
        self.task_query = ""
        self.turns: tuple[TurnTrace, ...] = ()
        """The session's most recent turns (``EngineLimits.max_session_turns``), queries cut to
        ``max_query_chars``: what its trace records and what prediction reads as its history. A
        tuple, replaced at each turn's end: four deques (one per kind of history, as before) cost
        3 KB a session before its first turn ended, most of what 1,000 idle sessions hold."""
        self.current: Turn | None = None
        self.closed = False
        self._closing = False

    @property
    def history(self) -> tuple[tuple[str, ...], ...]:
        """Each kept turn's section ids, oldest first."""
        return tuple(tuple(c.key for c in t.calls) for t in self.turns)

    @property
    def history_queries(self) -> tuple[str, ...]:
        """Each kept turn's query, oldest first."""
        return tuple(t.query for t in self.turns)

    @property
    def scope(self) -> Scope:
        """The scope of everything this session does: its tenant, its partition (if any) and itself."""
        return Scope(tenant=self.tenant, session=self.session_id, partition=self.partition)

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
        self._check_turn(query, budget_tokens)
        # Free text is made Unicode text here, as it enters: the trace, the cache keys and the spans
        # downstream never see a lone surrogate (a client's "\ud800" escape).
        query = clean_text(query)
        tags = text_tuple(tags, "tags")
        task_type = optional_text(task_type, "a task type")
        node = optional_text(node, "a node")
        if expect is not None:
            expect = string_tuple(expect, "expect")
        if task_type is not None:
            self.task_type = task_type
        if not self.task_query:
            self.task_query = self.engine.limits.kept_query(query)
        request = self._request(query, tags, budget_tokens)
        ahead = self.current
        if ahead is not None and ahead.prepositioned and ahead.report is None:
            return ahead.adopt(request, expect=expect, node=node)  # continue what was prefetched between turns
        return Turn(self, self.engine, request, expect=expect, node=node)

    def _request(self, query: str, tags: tuple[str, ...], budget_tokens: int | None) -> ContextRequest:
        return ContextRequest(
            query=query,
            task_type=self.task_type,
            task_query=self.task_query,
            tags=tuple(dict.fromkeys((*self.tags, *tags))),
            budget_tokens=budget_tokens,
            scope=self.scope,
        )

    def _check_turn(self, query: object, budget_tokens: object) -> None:
        if not isinstance(query, str):
            raise InputError("a turn query must be a string")
        longest = self.engine.limits.max_query_chars * 16
        if len(query) > longest:
            raise RequestTooLargeError("turn query", len(query), longest)
        if budget_tokens is not None and (isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int)):
            raise InputError(f"budget_tokens must be an int or None, got {type(budget_tokens).__name__}")

    async def begin_turn(self, turn: Turn) -> None:
        """Make ``turn`` the current one, ending the turn before it (called by the turn as it starts)."""
        if self.current is not None and self.current is not turn:
            await self.current.end()
        self.current = turn
        self.engine.session_opened(self)

    def finish_turn(self, turn: Turn) -> None:
        """Keep an ended turn's calls as history (called by the turn at its bailout)."""
        if turn.prepositioned:  # never became a turn: no user message, nothing to remember
            if self.current is turn:
                self.current = None
            return
        query = self.engine.limits.kept_query(turn.request.query)
        kept = (*self.turns, TurnTrace(query=query, calls=tuple(turn.calls)))
        self.turns = kept[-self.engine.limits.max_session_turns :]
        if self.current is turn:
            self.current = None

    async def after_turn(self, turn: Turn) -> None:
        """With ``PrefetchPolicy.preposition``: start predicting the next turn in the idle time after ``turn``."""
        if not self.engine.policy.preposition or turn.prepositioned or self._closing or self.closed:
            return
        if self.current is not None:  # the caller started another turn already
            return
        ahead = Turn(self, self.engine, self._request("", (), None), expect=None, node=None)
        ahead.prepositioned = True
        await ahead.start()

    def trace(self) -> SessionTrace:
        """This session in the trace format."""
        return SessionTrace(
            session=self.session_id,
            task=TaskSpec(type=self.task_type or "", query=self.task_query, tags=self.tags),
            turns=self.turns,
            tenant=None if self.tenant == DEFAULT_TENANT else self.tenant,
        )

    async def aclose(self) -> None:
        """Bail out of an open turn and record the session in the TraceStore."""
        if self.closed:
            return
        self._closing = True
        if self.current is not None:
            await self.current.end()
        self.closed = True
        self.engine.session_closed(self)
        store = self.engine.traces
        if store is not None and self.record and self.turns:
            await asyncio.to_thread(store.append, self.trace())

    async def __aenter__(self) -> Self:
        self.engine.session_opened(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
