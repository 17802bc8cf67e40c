"""Change notifications: clients told which sections changed, in both protocol eras.

The engine emits :class:`~prehydrate.SectionsChanged` when a live source's change set is in the
catalog. :class:`SectionNotifier` turns each one into MCP notifications:

- ``notifications/resources/updated`` for every subscribed section URI
  (``prehydrate://sections/{id}``, the id percent-encoded as the catalog resource lists it) whose
  section changed or was removed, and for the catalog ``prehydrate://sections`` on every change
  (its JSON carries each section's version);
- ``notifications/resources/list_changed`` when sections were added or removed.

**Handshake era** (``2025-11-25`` and earlier): ``resources/subscribe`` / ``resources/unsubscribe``
keep a set of URIs per connection; the server advertises ``resources.subscribe`` and
``resources.listChanged``, and list changes go to every handshake-era connection seen.
**2026-07-28 era**: the SDK's ``subscriptions/listen`` streams do the filtering; events are
published on the server's ``SubscriptionBus`` (pass one over Redis pub/sub to fan out to replicas).

No ``notifications/prompts/list_changed`` is sent: the prompt list (one ``compiled_context`` with
fixed arguments) never changes, and the prompt is compiled from the current catalog on every
``prompts/get``, so a host that re-gets it after ``resources/list_changed`` has the new stubs.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any
from urllib.parse import quote, unquote

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import prehydrate as ph

__all__ = ["CATALOG_URI", "SectionNotifier", "section_uri"]

logger = logging.getLogger("prehydrate.mcp")

CATALOG_URI = "prehydrate://sections"


def section_uri(section_id: str) -> str:
    """The resource URI of a section: ``#`` and ``?`` (which a URI reads as delimiters) percent-encoded."""
    return f"{CATALOG_URI}/{quote(section_id, safe='/')}"


def _canonical(uri: str) -> str:
    """A subscribed URI in the form the server sends (a client may encode more or less than we do)."""
    head = CATALOG_URI + "/"
    return section_uri(unquote(uri[len(head) :])) if uri.startswith(head) else uri


def _connection_key(ctx: ServerRequestContext[Any, Any]) -> object:
    """An object living as long as the client's connection (the SDK builds a session per request).

    The SDK has no public accessor for a request's connection; its per-request session keeps it.
    """
    return getattr(ctx.session, "_connection", ctx.session)


class _Client:
    """One handshake-era connection: a session to send on (its standalone channel) and its subscriptions."""

    __slots__ = ("session", "uris", "__weakref__")

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.uris: set[str] = set()


class SectionNotifier:
    """Engine :class:`~prehydrate.SectionsChanged` events -> MCP notifications, both eras.

    Args:
        bus: the server's ``subscriptions/listen`` bus (2026-07-28 era).
    """

    def __init__(self, bus: SubscriptionBus) -> None:
        self.bus = bus
        self._clients: weakref.WeakKeyDictionary[object, _Client] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        """Notifications sent to handshake-era connections (events published to the bus not counted)."""

    # -- handshake era: resources/subscribe -------------------------------------------------------

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        """``resources/subscribe``: remember the URI for this connection (any URI is accepted, as by listen)."""
        self._client(ctx).uris.add(_canonical(params.uri))
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        """``resources/unsubscribe``: forget the URI for this connection (unknown URIs are fine)."""
        self._client(ctx).uris.discard(_canonical(params.uri))
        return EmptyResult()

    def _client(self, ctx: ServerRequestContext[Any, Any]) -> _Client:
        key = _connection_key(ctx)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = _Client(ctx.session)
        return client

    async def seen(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Middleware: remember handshake-era connections, which get ``list_changed`` unasked."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            self._client(ctx)
        return await call_next(ctx)

    # -- engine events ------------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """Engine subscriber: schedule the notifications of a :class:`~prehydrate.SectionsChanged`."""
        if not isinstance(event, ph.SectionsChanged):
            return
        task = asyncio.get_running_loop().create_task(self.notify(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def events_for(event: ph.SectionsChanged) -> list[ServerEvent]:
        """What one change set means to clients: the catalog and each changed or removed section updated,
        and a list change when sections came or went."""
        out: list[ServerEvent] = [ResourceUpdated(CATALOG_URI)]
        out += [ResourceUpdated(section_uri(sid)) for sid in (*event.changed, *event.removed)]
        if event.added or event.removed:
            out.append(ResourcesListChanged())
        return out

    async def notify(self, event: ph.SectionsChanged) -> None:
        """Send one change set's notifications: to handshake-era connections, and on the listen bus."""
        events = self.events_for(event)
        for ev in events:
            await self.bus.publish(ev)
        for key, client in list(self._clients.items()):
            if not await self._notify_client(client, events):
                self._clients.pop(key, None)

    async def _notify_client(self, client: _Client, events: list[ServerEvent]) -> bool:
        """Send what ``client`` asked for (and list changes); False when its connection is gone."""
        try:
            for ev in events:
                if isinstance(ev, ResourceUpdated) and ev.uri in client.uris:
                    await client.session.send_resource_updated(ev.uri)
                    self.sent += 1
                elif isinstance(ev, ResourcesListChanged):
                    await client.session.send_resource_list_changed()
                    self.sent += 1
        except Exception as exc:  # a closed client must not stop the others' notifications
            logger.debug("dropping a client that could not be notified (%s: %s)", type(exc).__name__, exc)
            return False
        return True

    async def aclose(self) -> None:
        """Wait for notifications being sent (called when the server shuts down)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
