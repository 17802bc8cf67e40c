"""Typed engine events and the bus that delivers them to subscribers.

Events are delivered synchronously, in the task that caused them, so a subscriber sees the
caller's context (an OpenTelemetry subscriber parents its spans on the current span that way).
Times are given twice: wall-clock nanoseconds (``*_ns``, for spans) and durations in milliseconds
measured on the event loop's clock (virtual under replay).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "EventBus",
    "Lookup",
    "LookupFailed",
    "Outcome",
    "PrefetchFinished",
    "PrefetchSettled",
    "PrefetchStarted",
    "TurnEnded",
    "TurnStarted",
]

logger = logging.getLogger("prehydrate.events")

Outcome = Literal["hit", "inflight", "miss"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _TurnEvent:
    turn_id: str
    session: str
    tenant: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted(_TurnEvent):
    """A turn was entered; ``candidates`` are the (section id, probability) pairs scheduled."""

    query: str
    task_type: str | None
    candidates: tuple[tuple[str, float], ...]
    time_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchStarted(_TurnEvent):
    """A speculative hydration began."""

    prefetch_id: str
    section_id: str
    probability: float
    reason: str
    time_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchFinished(_TurnEvent):
    """A speculative hydration ended: ``status`` is ``ok``, ``failed`` or ``cancelled``."""

    prefetch_id: str
    section_id: str
    status: Literal["ok", "failed", "cancelled"]
    bytes: int
    duration_ms: float
    error: str | None
    time_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchSettled(_TurnEvent):
    """At bailout, what became of a prefetch: ``used``, ``wasted``, ``cancelled`` or ``failed``."""

    prefetch_id: str
    section_id: str
    outcome: Literal["used", "wasted", "cancelled", "failed"]
    bytes: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup(_TurnEvent):
    """One ``request_context`` call that answered, with its outcome."""

    section_id: str
    outcome: Outcome
    waited_ms: float
    bytes: int
    lead_ms: float | None
    """For a hit on a prefetched entry: how long before the request the prefetch had finished."""
    tier: str | None
    query: str | None
    tool_call_id: str | None
    node: str | None
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFailed(_TurnEvent):
    """One ``request_context`` call that raised (unknown id, source failure, bad input)."""

    section_id: str | None
    query: str | None
    error_type: str
    message: str
    tool_call_id: str | None
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnded(_TurnEvent):
    """The turn's bailout ran; ``report`` is its :class:`~prehydrate.TurnReport`."""

    report: object
    start_ns: int
    end_ns: int


Event: TypeAlias = (
    TurnStarted | PrefetchStarted | PrefetchFinished | PrefetchSettled | Lookup | LookupFailed | TurnEnded
)
Subscriber: TypeAlias = Callable[[Event], None]


class EventBus:
    """Delivers events to subscribers; a failing subscriber is logged, never breaks serving."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber in order."""
        for fn in tuple(self._subscribers):
            try:
                fn(event)
            except Exception:  # a broken observer must not break the request it observes
                logger.exception("event subscriber %r failed on %s", fn, type(event).__name__)
