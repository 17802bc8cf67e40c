"""Conversations kept between calls: a turn stays open across calls and ends after an idle gap.

A front end that sees only calls (an MCP server: no "turn ended" message exists in the protocol; a
chat loop that never says when the user went away) still needs turns, so that the bailout runs and
the next turn predicts afresh. :class:`ConversationKeeper` derives them over ``engine.conversations``
with one set of timers, so every front end gets the same rules:

- a call joins the session's open turn, or starts a new one when the session was quiet for
  ``idle_gap_s`` (:meth:`ConversationKeeper.begin_call` / :meth:`ConversationKeeper.end_call`);
- ``idle_gap_s`` after the last call the open turn bails out; ``session_ttl_s`` after it the session
  closes (and is recorded); beyond ``max_sessions`` the least recently used quiet session closes;
- work for the idle time after a call (the turn's re-prediction) runs just after the answer left,
  or at the start of the session's next call if that comes first: never skipped, never in the way.

Example:
    >>> import asyncio, prehydrate as ph
    >>> async def main() -> str:
    ...     engine = ph.Engine([ph.MockSource(lambda sid, scope: f"text of {sid}", ["a", "b"])])
    ...     keeper = ph.ConversationKeeper(engine.conversations, ph.ConversationPolicy(idle_gap_s=0.05))
    ...     turn, call = await keeper.begin_call("chat-1", query="refunds")
    ...     result = await turn.request_context("a")
    ...     keeper.end_call(call)
    ...     await asyncio.sleep(0.1)  # quiet for longer than the idle gap: the turn bailed out
    ...     await keeper.aclose()
    ...     return f"{result.content}; turns ended: {len(keeper.reports)}"
    >>> asyncio.run(main())
    'text of a; turns ended: 1'
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ._conversations import Conversations
from ._errors import ConfigError
from ._events import TurnReport
from ._sections import DEFAULT_TENANT
from ._session import Session
from ._turn import Turn

__all__ = ["REPREDICT_DELAY_S", "ConversationKeeper", "ConversationPolicy", "OpenCall"]

logger = logging.getLogger("prehydrate")

REPREDICT_DELAY_S = 0.001
"""How long after a call returns its idle-time work runs: long enough for the response to leave
first (so prediction never adds to the model's wait), far shorter than any model's think time."""

_KEPT_REPORTS = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationPolicy:
    """When a kept conversation's turn ends and when the conversation closes."""

    idle_gap_s: float = 30.0
    """A call after this much quiet starts a new turn; the open turn bails out when it passes."""
    session_ttl_s: float = 1800.0
    """A session without calls for this long is closed (bailout, then recorded)."""
    max_sessions: int = 10_000
    """Open sessions kept at most; the least recently used quiet one is closed beyond it."""
    record: bool = True
    """Record every session in the engine's TraceStore so the predictors learn from real use."""

    def __post_init__(self) -> None:
        if self.idle_gap_s <= 0 or self.session_ttl_s <= 0:
            raise ConfigError("ConversationPolicy needs idle_gap_s > 0 and session_ttl_s > 0")
        if self.session_ttl_s < self.idle_gap_s:
            raise ConfigError("ConversationPolicy.session_ttl_s must not be shorter than idle_gap_s")
        if self.max_sessions < 1:
            raise ConfigError("ConversationPolicy.max_sessions must be at least 1")


@dataclass(slots=True, eq=False)
class OpenCall:
    """A kept session and its timers; :meth:`ConversationKeeper.begin_call` hands it out for ``end_call``."""

    session: Session
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: int = 0
    last_activity: float = 0.0
    timer: asyncio.TimerHandle | None = None
    closed: bool = False
    pending: asyncio.TimerHandle | None = None
    pending_fn: Callable[[], None] | None = None


class ConversationKeeper:
    """Keeps the turns of ``conversations``' sessions open between calls and ends them when idle."""

    def __init__(self, conversations: Conversations, policy: ConversationPolicy | None = None) -> None:
        self.conversations = conversations
        self.policy = policy if policy is not None else ConversationPolicy()
        self._kept: dict[tuple[str, str], OpenCall] = {}
        self._bg: set[asyncio.Task[Any]] = set()
        self.reports: list[TurnReport] = []
        """Reports of the turns this keeper ended (most recent last, the last 100)."""

    def _kept_session(self, session_id: str, tenant: str, partition: str | None) -> OpenCall:
        k = (tenant, session_id)
        kept = self._kept.get(k)
        if kept is None or kept.closed or kept.session.closed:
            session = self.conversations.open(session_id, tenant=tenant, partition=partition, record=self.policy.record)
            kept = self._kept[k] = OpenCall(session=session)
            if len(self._kept) > self.policy.max_sessions:
                oldest = min(
                    (e for e in self._kept.values() if e.active == 0 and e is not kept),
                    key=lambda e: e.last_activity,
                    default=None,
                )
                if oldest is not None:
                    self._spawn(self._close(oldest))
        else:  # keep LRU order cheap: most recent at the end
            self._kept[k] = self._kept.pop(k)
        return kept

    async def begin_call(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        partition: str | None = None,
        query: str | None = None,
    ) -> tuple[Turn, OpenCall]:
        """The turn a call runs in: the session's open one, or a new one after an idle gap.

        The session is opened in ``engine.conversations`` when it is not open (``partition`` applies
        then). Pair every ``begin_call`` with :meth:`end_call`, which arms the idle timer again.
        """
        while True:
            kept = self._kept_session(session_id, tenant, partition)
            self._flush(kept)  # the previous call's idle-time work, if it has not run yet, runs first
            kept.active += 1
            self._disarm(kept)
            try:
                async with kept.lock:
                    if kept.closed:  # expired or evicted while we waited: start over in a fresh session
                        kept.active -= 1
                        continue
                    now = asyncio.get_running_loop().time()
                    current = kept.session.current
                    if current is not None and now - kept.last_activity > self.policy.idle_gap_s:
                        await self._end_turn(current)
                        current = None
                    if current is None:
                        current = kept.session.turn(query=query or "")
                        await current.start()
                    kept.last_activity = now
                    return current, kept
            except BaseException:
                kept.active -= 1
                raise

    def end_call(self, call: OpenCall, *, then: Callable[[], None] | None = None) -> None:
        """A call finished: remember when, and bail out if nothing follows within the idle gap.

        Args:
            call: what :meth:`begin_call` returned.
            then: work for the idle time after the answer (the turn's re-prediction); it runs
                :data:`REPREDICT_DELAY_S` later, or at the start of the session's next call if
                that comes first, so it is never skipped and never delays the answer.
        """
        loop = asyncio.get_running_loop()
        call.active -= 1
        call.last_activity = loop.time()
        if then is not None:
            self._flush(call)
            call.pending_fn = then
            call.pending = loop.call_later(REPREDICT_DELAY_S, self._flush, call, context=contextvars.Context())
        if call.active == 0:
            self._arm(call, self.policy.idle_gap_s, self._on_idle)

    async def new_turn(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        partition: str | None = None,
        query: str,
        task_type: str | None = None,
    ) -> Turn:
        """Start a fresh turn (the user spoke): bail out of the open one first."""
        while True:
            kept = self._kept_session(session_id, tenant, partition)
            self._disarm(kept)
            self._drop(kept)
            async with kept.lock:
                if kept.closed:  # expired or evicted while we waited: start over in a fresh session
                    continue
                if kept.session.current is not None:
                    await self._end_turn(kept.session.current)
                turn = kept.session.turn(query=query, task_type=task_type or None)
                await turn.start()
                kept.last_activity = asyncio.get_running_loop().time()
                break
        if kept.active == 0:
            self._arm(kept, self.policy.idle_gap_s, self._on_idle)
        return turn

    def session(self, session_id: str, *, tenant: str = DEFAULT_TENANT) -> Session | None:
        """The kept open session of ``(tenant, session_id)`` (``None`` if there is none)."""
        kept = self._kept.get((tenant, session_id))
        return kept.session if kept is not None and not kept.closed else None

    def __len__(self) -> int:
        return len(self._kept)

    async def aclose(self) -> None:
        """Shutdown: bail out of every open turn and record every kept session."""
        if self._bg:  # let running bailouts finish: cancelling one could lose its session's trace
            await asyncio.gather(*self._bg, return_exceptions=True)
        for kept in list(self._kept.values()):
            try:
                await self._close(kept)
            except Exception as exc:  # an I/O error for one session must not lose the others
                logger.warning("closing session %r failed: %s: %s", kept.session.session_id, type(exc).__name__, exc)

    # -- idle-time work --------------------------------------------------------------------------------

    def _drop(self, kept: OpenCall) -> None:
        """Forget pending idle-time work: the turn it would prefetch for is about to end."""
        if kept.pending is not None:
            kept.pending.cancel()
            kept.pending = None
        kept.pending_fn = None

    def _flush(self, kept: OpenCall) -> None:
        if kept.pending is not None:
            kept.pending.cancel()
            kept.pending = None
        fn, kept.pending_fn = kept.pending_fn, None
        if fn is not None:
            try:
                fn()
            except Exception:  # a failing predictor must not break serving: the next call still works
                logger.exception("re-prediction failed in session %r", kept.session.session_id)

    async def _end_turn(self, turn: Turn) -> None:
        report = await turn.end()
        self.reports.append(report)
        del self.reports[:-_KEPT_REPORTS]

    # -- timers --------------------------------------------------------------------------------------

    def _disarm(self, kept: OpenCall) -> None:
        if kept.timer is not None:
            kept.timer.cancel()
            kept.timer = None

    def _arm(self, kept: OpenCall, delay: float, fn: Callable[[OpenCall], None]) -> None:
        # The empty context: a timer outlives the call that armed it and must not keep that call's
        # context (its request, its token, its spans) alive for the idle gap or the session's TTL.
        self._disarm(kept)
        kept.timer = asyncio.get_running_loop().call_later(delay, fn, kept, context=contextvars.Context())

    def _on_idle(self, kept: OpenCall) -> None:
        kept.timer = None
        if kept.closed or kept.active:
            return
        self._spawn(self._idle_bailout(kept))

    async def _idle_bailout(self, kept: OpenCall) -> None:
        async with kept.lock:
            if kept.active or kept.closed:
                return
            if kept.session.current is not None:
                await self._end_turn(kept.session.current)
        remaining = self.policy.session_ttl_s - self.policy.idle_gap_s
        if not kept.closed and kept.active == 0:
            self._arm(kept, max(remaining, 0.0), self._on_expired)

    def _on_expired(self, kept: OpenCall) -> None:
        kept.timer = None
        if not kept.closed and kept.active == 0:
            self._spawn(self._close(kept))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
        self._bg.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._bg.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("session housekeeping failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def _close(self, kept: OpenCall) -> None:
        async with kept.lock:
            if kept.closed:
                return
            kept.closed = True
            self.conversations.detach(kept.session)  # a call arriving while this closes gets a new one
            self._disarm(kept)
            self._drop(kept)
            current = kept.session.current
            if current is not None:
                await self._end_turn(current)
            await self.conversations.close(kept.session)
        k = (kept.session.tenant, kept.session.session_id)
        if self._kept.get(k) is kept:
            del self._kept[k]
