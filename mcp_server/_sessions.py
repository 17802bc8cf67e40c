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
records it. Those rules and their timers are the core's (:class:`prehydrate.ConversationKeeper`, the
same for every front end); this module only maps requests to sessions and bounds calls in progress.
"""

from __future__ import annotations

import itertools
import secrets
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import prehydrate as ph

__all__ = ["SessionKey", "SessionManager", "SessionPolicy", "SessionOrigin"]

SessionOrigin = Literal["meta", "principal", "mcp-session-id", "connection"]

MAX_SESSION_ID_CHARS = 200
"""Longest client-supplied session id accepted from ``_meta``."""


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

    def conversations(self) -> ph.ConversationPolicy:
        """The core's rules for turns and session lifetimes, from this policy."""
        return ph.ConversationPolicy(
            idle_gap_s=self.idle_gap_s,
            session_ttl_s=self.session_ttl_s,
            max_sessions=self.max_sessions,
            record=self.record,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionKey:
    """Which session a request belongs to, and how that was decided."""

    tenant: str
    session_id: str
    origin: SessionOrigin


class SessionManager:
    """Maps MCP requests to engine sessions and keeps each session's turn open between calls."""

    def __init__(self, engine: ph.Engine, policy: SessionPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy if policy is not None else SessionPolicy()
        self.keeper = ph.ConversationKeeper(engine.conversations, self.policy.conversations())
        """Turns and session lifetimes: the core's, shared with every front end."""
        self._conn_ids: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
        self._peer_ids: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._run = secrets.token_hex(3)  # connection ids stay unique across server restarts in the trace store
        self._calls = 0
        self.busy = 0
        """Tool calls refused because ``max_concurrent_calls`` were in progress."""

    @property
    def reports(self) -> list[ph.TurnReport]:
        """Reports of the turns that ended (most recent last, bounded)."""
        return self.keeper.reports

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
            # an id is refused, not cleaned, when it is not Unicode text: two ids must never become one
            if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_SESSION_ID_CHARS or "\x00" in raw:
                raise ph.InputError(
                    f"_meta[{self.policy.meta_key!r}] must be a non-empty string of at most "
                    f"{MAX_SESSION_ID_CHARS} characters without NUL"
                )
            if ph.clean_text(raw) != raw:
                raise ph.InputError(f"_meta[{self.policy.meta_key!r}] must be Unicode text (it holds a lone surrogate)")
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

    # -- turns (the core's ConversationKeeper) -------------------------------------------------------

    async def begin_call(self, key: SessionKey, *, query: str | None = None) -> tuple[ph.Turn, ph.OpenCall]:
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
            return await self.keeper.begin_call(
                key.session_id, tenant=key.tenant, partition=self._partition(key), query=query
            )
        except BaseException:
            self._calls -= 1
            raise

    def end_call(self, call: ph.OpenCall, *, then: Callable[[], None] | None = None) -> None:
        """A call finished (see :meth:`prehydrate.ConversationKeeper.end_call`)."""
        self._calls -= 1
        self.keeper.end_call(call, then=then)

    async def new_turn(self, key: SessionKey, *, query: str, task_type: str | None) -> ph.Turn:
        """Start a fresh turn (the ``compiled_context`` prompt): bail out of the open one first."""
        return await self.keeper.new_turn(
            key.session_id, tenant=key.tenant, partition=self._partition(key), query=query, task_type=task_type
        )

    # -- introspection and shutdown ------------------------------------------------------------------

    def session(self, key: SessionKey) -> ph.Session | None:
        """The open engine session of ``key`` (``None`` if there is none)."""
        return self.keeper.session(key.session_id, tenant=key.tenant)

    def __len__(self) -> int:
        return len(self.keeper)

    async def aclose(self) -> None:
        """Shutdown: bail out of every open turn and record every session."""
        await self.keeper.aclose()
