"""Conversations: the one registry of an engine's open sessions, keyed by (tenant, conversation id).

Front ends map their own notion of a conversation onto it (an MCP client's session, a LangGraph
thread, a replayed session) instead of keeping registries of their own with their own rules. Opening
an id again returns the same :class:`~prehydrate.Session`, so its history continues; the same id in
two tenants is two conversations, never "another tenant's session". The key is a tuple, never a
joined string.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from ._sections import DEFAULT_TENANT
from ._session import Session

__all__ = ["ConversationKey", "Conversations", "SessionFactory"]

ConversationKey = tuple[str, str]
"""(tenant, conversation id)."""


class SessionFactory(Protocol):
    """What the registry needs from its engine: make a session, and track it once entered."""

    def session(
        self,
        session_id: str,
        *,
        tenant: str = ...,
        task_type: str | None = ...,
        tags: Iterable[str] = ...,
        record: bool = ...,
        partition: str | None = ...,
    ) -> Session: ...
    def session_opened(self, session: Session) -> None: ...


class Conversations:
    """The open sessions of one engine by (tenant, id); ``engine.conversations`` is the instance."""

    def __init__(self, engine: SessionFactory) -> None:
        self._engine = engine
        self._open: dict[ConversationKey, Session] = {}

    def get(self, session_id: str, *, tenant: str = DEFAULT_TENANT) -> Session | None:
        """The open session of ``(tenant, session_id)``, or None."""
        session = self._open.get((tenant, session_id))
        if session is not None and session.closed:
            del self._open[tenant, session_id]
            return None
        return session

    def open(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        partition: str | None = None,
        task_type: str | None = None,
        tags: Iterable[str] = (),
        record: bool = True,
    ) -> Session:
        """The open session of ``(tenant, session_id)``, made (and entered) if there is none.

        The other arguments apply only when the session is made; an open session keeps its own.

        Raises:
            InputError: a malformed id, tenant, partition, task type or tags.
        """
        found = self.get(session_id, tenant=tenant)
        if found is not None:
            return found
        session = self._engine.session(
            session_id, tenant=tenant, partition=partition, task_type=task_type, tags=tags, record=record
        )
        self._engine.session_opened(session)
        self._open[tenant, session_id] = session
        return session

    def detach(self, session: Session) -> None:
        """Forget ``session`` at once, before closing it: an ``open`` of its id from now on makes a new one."""
        key = (session.tenant, session.session_id)
        if self._open.get(key) is session:
            del self._open[key]

    async def close(self, session: Session) -> None:
        """Forget ``session`` and close it (bailing out of its turn, recording it)."""
        self.detach(session)
        await session.aclose()

    def __len__(self) -> int:
        return sum(1 for s in self._open.values() if not s.closed)

    def __iter__(self) -> Iterator[Session]:
        return iter([s for s in self._open.values() if not s.closed])

    async def aclose(self) -> None:
        """Close every open conversation."""
        for session in list(self._open.values()):
            await self.close(session)
