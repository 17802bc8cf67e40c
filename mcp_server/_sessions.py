"""Sessions and turns for MCP clients, which have no reliable MCP session.

The 2026-07-28 protocol era has no session at all, and the legacy ``mcp-session-id`` exists only on
stateful HTTP. prehydrate still needs a conversation (the predictor uses the session's history, the
TraceStore records one line per session) and turns (the bailout runs at the end of each), so the
server derives both itself:

**Session**, first match wins:

1. ``_meta["prehydrate/session"]`` supplied by the client on the request (explicit beats inferred);
2. the legacy ``mcp-session-id`` header (stateful streamable HTTP, 2025-11-25 era and earlier): one
   session per MCP client session;
3. the authenticated principal: the client holding a bearer token (a key of the token, never the
   tenant), so one agent keeps one history across stateless requests and reconnections;
4. the connection: the stdio pipe or in-memory stream, or the TCP connection of an HTTP client.

Sessions are per client, never per tenant: two agents of one tenant are two sessions with two
turns, sharing only the tenant's cache scope.

Every session lives inside a tenant (from the token, otherwise ``default``), so a client-supplied id
can never reach into another tenant's session or cache.

**Turn**: starts with the ``compiled_context`` prompt or with the first call after an idle gap
(``idle_gap_s``, default 30 s); it stays open across calls, and after answering each call the turn
re-predicts and prefetches in the idle time before the next one. The bailout runs when the idle gap
passes, when the session expires (``session_ttl_s``) and on server shutdown; closing a session
records it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import prehydrate as ph

__all__ = ["SessionKey", "SessionManager", "SessionPolicy", "SessionOrigin"]

logger = logging.getLogger("prehydrate.mcp_server")

SessionOrigin = Literal["meta", "principal", "mcp-session-id", "connection"]

MAX_SESSION_ID_CHARS = 200
"""Longest client-supplied session id accepted from ``_meta``."""

REPREDICT_DELAY_S = 0.001
"""How long after a call returns its re-prediction runs: long enough for the response to leave
first (so prediction never adds to the model's wait), far shorter than any model's think time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """How the server groups MCP requests into sessions and turns."""

    idle_gap_s: float = 30.0
    """A call after this much quiet starts a new turn; the open turn bails out when it passes."""
    session_ttl_s: float = 1800.0
    """A session without requests for this long is closed (bailout, then recorded)."""
    meta_key: str = "prehydrate/session"
    """The request ``_meta`` key a client may use to name its session explicitly."""
    record: bool = True
    """Record every session in the engine's TraceStore so the predictors learn from real use."""
    max_sessions: int = 10_000
    """Open sessions kept at most; the least recently used one is closed beyond it."""
    max_concurrent_calls: int = 256
    """Tool calls in progress at most, over all sessions; one more is refused at once with a "busy"
    error (:class:`prehydrate.BusyError`) instead of queueing, so a burst costs answers, not memory."""
    isolate: bool = False
    """Give every session a cache scope of its own (tenant, partition = the session id, two separate
    fields of every cache key): nothing hydrated for one
    conversation is served to another. For per-conversation content, and for measuring what
    prediction alone saves (``prehydrate demo``), without the help of other sessions' fetches."""

    def __post_init__(self) -> None:
        if self.idle_gap_s <= 0 or self.session_ttl_s <= 0:
            raise ph.ConfigError("SessionPolicy needs idle_gap_s > 0 and session_ttl_s > 0")
        if self.session_ttl_s < self.idle_gap_s:
            raise ph.ConfigError("SessionPolicy.session_ttl_s must not be shorter than idle_gap_s")
        if self.max_sessions < 1:
            raise ph.ConfigError("SessionPolicy.max_sessions must be at least 1")
        if self.max_concurrent_calls < 1:
            raise ph.ConfigError("SessionPolicy.max_concurrent_calls must be at least 1")
        if not self.meta_key:
            raise ph.ConfigError("SessionPolicy.meta_key must be a non-empty string")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionKey:
    """Which session a request belongs to, and how that was decided."""

    tenant: str
    session_id: str
    origin: SessionOrigin


@dataclass(slots=True, eq=False)
class _Entry:
    key: SessionKey
    session: ph.Session
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: int = 0
    last_activity: float = 0.0
    timer: asyncio.TimerHandle | None = None
    closed: bool = False
    pending: asyncio.TimerHandle | None = None
    pending_fn: Callable[[], None] | None = None


class SessionManager:
    """Maps MCP requests to engine sessions and keeps each session's turn open between calls."""

    def __init__(self, engine: ph.Engine, policy: SessionPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy if policy is not None else SessionPolicy()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._conn_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._peer_ids: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._run = secrets.token_hex(3)  # connection ids stay unique across server restarts in the trace store
        self._bg: set[asyncio.Task[Any]] = set()
        self._calls = 0
        self.busy = 0
        """Tool calls refused because ``max_concurrent_calls`` were in progress."""
        self.reports: list[ph.TurnReport] = []
        """Reports of the turns that ended (most recent last, bounded)."""

    # -- identity ------------------------------------------------------------------------------------

    def identify(
        self,
        *,
        meta: Mapping[str, Any] | None,
        principal: str | None,
        tenant: str | None,
        headers: Mapping[str, str] | None,
        connection: object | None,
        peer: str | None,
    ) -> SessionKey:
        """Derive the session of a request (see the module docstring for the order).

        Args:
            meta: the request's ``_meta``.
            principal: the authenticated subject, when the request carried a valid token.
            tenant: the tenant of the token (``default`` without auth).
            headers: HTTP headers (``None`` on stdio and in memory).
            connection: an object that lives as long as the client's stream (stdio, memory).
            peer: ``host:port`` of the HTTP client's TCP connection.

        Raises:
            prehydrate.InputError: the client-supplied session id is not a short string.
        """
        tenant = tenant or ph.Scope().tenant
        raw = meta.get(self.policy.meta_key) if meta else None
        if raw is not None:
            if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_SESSION_ID_CHARS or "\x00" in raw:
                raise ph.InputError(
                    f"_meta[{self.policy.meta_key!r}] must be a non-empty string of at most "
                    f"{MAX_SESSION_ID_CHARS} characters without NUL"
                )
            return SessionKey(tenant=tenant, session_id=raw, origin="meta")
        sid = headers.get("mcp-session-id") if headers is not None else None
        if sid:
            return SessionKey(tenant=tenant, session_id=f"mcp:{sid[:MAX_SESSION_ID_CHARS]}", origin="mcp-session-id")
        if principal:
            return SessionKey(tenant=tenant, session_id=f"principal:{principal}", origin="principal")
        return SessionKey(tenant=tenant, session_id=self._connection_id(connection, peer), origin="connection")

    def _connection_id(self, connection: object | None, peer: str | None) -> str:
        if connection is not None:
            try:
                cid = self._conn_ids.get(connection)
                if cid is None:
                    cid = self._conn_ids[connection] = f"conn-{self._run}-{next(self._counter)}"
                return cid
            except TypeError:  # not weak-referenceable: fall through to the peer or the shared id
                pass
        if peer is not None:
            cid = self._peer_ids.get(peer)
            if cid is None:
                if len(self._peer_ids) > self.policy.max_sessions:
                    self._peer_ids.clear()
                cid = self._peer_ids[peer] = f"conn-{self._run}-{next(self._counter)}"
            return cid
        return f"conn-{self._run}-0"

    def _partition(self, key: SessionKey) -> str | None:
        return key.session_id if self.policy.isolate else None

    def scope_of(self, key: SessionKey) -> ph.Scope:
        """The scope requests of ``key`` are served in (resource reads use it like the tool does)."""
        return ph.Scope(tenant=key.tenant, session=key.session_id, partition=self._partition(key))

    # -- turns ---------------------------------------------------------------------------------------

    def _entry(self, key: SessionKey) -> _Entry:
        k = (key.tenant, key.session_id)
        entry = self._entries.get(k)
        if entry is None or entry.closed or entry.session.closed:
            session = self.engine.conversations.open(
                key.session_id, tenant=key.tenant, partition=self._partition(key), record=self.policy.record
            )
            entry = _Entry(key=key, session=session)
            self._entries[k] = entry
            if len(self._entries) > self.policy.max_sessions:
                oldest = min(
                    (e for e in self._entries.values() if e.active == 0 and e is not entry),
                    key=lambda e: e.last_activity,
                    default=None,
                )
                if oldest is not None:
                    self._spawn(self._close(oldest))
        else:  # keep LRU order cheap: most recent at the end
            self._entries[k] = self._entries.pop(k)
        return entry

    async def begin_call(self, key: SessionKey, *, query: str | None = None) -> tuple[ph.Turn, _Entry]:
        """The turn a tool call runs in: the open one, or a new one after an idle gap.

        Pair every ``begin_call`` with :meth:`end_call`, which arms the idle timer again.

        Raises:
            prehydrate.BusyError: ``max_concurrent_calls`` calls are in progress already.
        """
        if self._calls >= self.policy.max_concurrent_calls:
            self.busy += 1
            raise ph.BusyError("tool calls", self.policy.max_concurrent_calls)
        self._calls += 1
        try:
            return await self._begin_call(key, query)
        except BaseException:
            self._calls -= 1
            raise

    async def _begin_call(self, key: SessionKey, query: str | None) -> tuple[ph.Turn, _Entry]:
        while True:
            entry = self._entry(key)
            self._flush(entry)  # the previous call's re-prediction, if it has not run yet, runs first
            entry.active += 1
            self._disarm(entry)
            try:
                async with entry.lock:
                    if entry.closed:  # expired or evicted while we waited: start over in a fresh session
                        entry.active -= 1
                        continue
                    now = asyncio.get_running_loop().time()
                    current = entry.session.current
                    if current is not None and now - entry.last_activity > self.policy.idle_gap_s:
                        await self._end_turn(current)
                        current = None
                    if current is None:
                        current = entry.session.turn(query=query or "")
                        await current.start()
                    entry.last_activity = now
                    return current, entry
            except BaseException:
                entry.active -= 1
                raise

    def end_call(self, entry: _Entry, *, then: Callable[[], None] | None = None) -> None:
        """A call finished: remember when, and bail out if nothing follows within the idle gap.

        Args:
            entry: what :meth:`begin_call` returned.
            then: work for the idle time after the response (the turn's re-prediction); it runs
                :data:`REPREDICT_DELAY_S` later, or at the start of the session's next call if
                that comes first, so it is never skipped and never delays the answer.
        """
        loop = asyncio.get_running_loop()
        self._calls -= 1
        entry.active -= 1
        entry.last_activity = loop.time()
        if then is not None:
            self._flush(entry)
            entry.pending_fn = then
            entry.pending = loop.call_later(REPREDICT_DELAY_S, self._flush, entry)
        if entry.active == 0:
            self._arm(entry, self.policy.idle_gap_s, self._on_idle)

    def _drop(self, entry: _Entry) -> None:
        """Forget pending idle-time work: the turn it would prefetch for is about to end."""
        if entry.pending is not None:
            entry.pending.cancel()
            entry.pending = None
        entry.pending_fn = None

    def _flush(self, entry: _Entry) -> None:
        if entry.pending is not None:
            entry.pending.cancel()
            entry.pending = None
        fn, entry.pending_fn = entry.pending_fn, None
        if fn is not None:
            try:
                fn()
            except Exception:  # a failing predictor must not break serving: the next call still works
                logger.exception("re-prediction failed in session %r", entry.key.session_id)

    async def new_turn(self, key: SessionKey, *, query: str, task_type: str | None) -> ph.Turn:
        """Start a fresh turn (the ``compiled_context`` prompt): bail out of the open one first."""
        while True:
            entry = self._entry(key)
            self._disarm(entry)
            self._drop(entry)
            async with entry.lock:
                if entry.closed:  # expired or evicted while we waited: start over in a fresh session
                    continue
                if entry.session.current is not None:
                    await self._end_turn(entry.session.current)
                turn = entry.session.turn(query=query, task_type=task_type or None)
                await turn.start()
                entry.last_activity = asyncio.get_running_loop().time()
                break
        if entry.active == 0:
            self._arm(entry, self.policy.idle_gap_s, self._on_idle)
        return turn

    async def _end_turn(self, turn: ph.Turn) -> None:
        report = await turn.end()
        self.reports.append(report)
        del self.reports[:-100]

    # -- timers --------------------------------------------------------------------------------------

    def _disarm(self, entry: _Entry) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    def _arm(self, entry: _Entry, delay: float, fn: Any) -> None:
        self._disarm(entry)
        entry.timer = asyncio.get_running_loop().call_later(delay, fn, entry)

    def _on_idle(self, entry: _Entry) -> None:
        entry.timer = None
        if entry.closed or entry.active:
            return
        self._spawn(self._idle_bailout(entry))

    async def _idle_bailout(self, entry: _Entry) -> None:
        async with entry.lock:
            if entry.active or entry.closed:
                return
            if entry.session.current is not None:
                await self._end_turn(entry.session.current)
        remaining = self.policy.session_ttl_s - self.policy.idle_gap_s
        if not entry.closed and entry.active == 0:
            self._arm(entry, max(remaining, 0.0), self._on_expired)

    def _on_expired(self, entry: _Entry) -> None:
        entry.timer = None
        if not entry.closed and entry.active == 0:
            self._spawn(self._close(entry))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._bg.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("session housekeeping failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def _close(self, entry: _Entry) -> None:
        async with entry.lock:
            if entry.closed:
                return
            entry.closed = True
            self.engine.conversations.detach(entry.session)  # a call arriving while this closes gets a new one
            self._disarm(entry)
            self._drop(entry)
            current = entry.session.current
            if current is not None:
                await self._end_turn(current)
            await self.engine.conversations.close(entry.session)
        k = (entry.key.tenant, entry.key.session_id)
        if self._entries.get(k) is entry:
            del self._entries[k]

    # -- introspection and shutdown ------------------------------------------------------------------

    def session(self, key: SessionKey) -> ph.Session | None:
        """The open engine session of ``key`` (``None`` if there is none)."""
        entry = self._entries.get((key.tenant, key.session_id))
        return entry.session if entry is not None and not entry.closed else None

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        """Shutdown: bail out of every open turn and record every session."""
        if self._bg:  # let running bailouts finish: cancelling one could lose its session's trace
            await asyncio.gather(*self._bg, return_exceptions=True)
        for entry in list(self._entries.values()):
            try:
                await self._close(entry)
            except Exception as exc:  # an I/O error for one session must not lose the others
                logger.warning("closing session %r failed: %s: %s", entry.key.session_id, type(exc).__name__, exc)
