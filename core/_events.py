"""Typed engine events and the bus that delivers them to subscribers.

Events are delivered synchronously, in the task that caused them, so a subscriber sees the
caller's context (an OpenTelemetry subscriber parents its spans on the current span that way).
Times are given twice: wall-clock nanoseconds (``*_ns``, for spans) and durations in milliseconds
measured on the event loop's clock (virtual under replay).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypedDict

__all__ = [
    "Event",
    "EventBus",
    "Lookup",
    "LookupFailed",
    "Operation",
    "Outcome",
    "PrefetchFinished",
    "PrefetchSettled",
    "PrefetchStarted",
    "PrefetchStatus",
    "SectionsChanged",
    "Settlement",
    "TurnEnded",
    "TurnIds",
    "TurnReport",
    "TurnStarted",
]

logger = logging.getLogger("prehydrate.events")

Outcome = Literal["hit", "inflight", "miss"]
PrefetchStatus = Literal["ok", "failed", "cancelled"]
"""How a speculative hydration ended (a section found already warm counts as ``ok``)."""
Settlement = Literal["used", "wasted", "cancelled", "failed"]
"""What became of a prefetch, decided at bailout."""


class TurnIds(TypedDict):
    """The fields every turn event carries; a turn builds them once and spreads them into each event."""

    turn_id: str
    session: str
    tenant: str


Operation = Literal["request_context", "read_resource"]
"""What a front end was asked: the ``request_context`` tool, or a read of a section as a resource
(MCP ``resources/read prehydrate://sections/{id}``), which goes through the same cache."""


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
    status: PrefetchStatus
    bytes: int
    duration_ms: float
    error: str | None
    time_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchSettled(_TurnEvent):
    """At bailout, what became of a prefetch: ``used``, ``wasted``, ``cancelled`` or ``failed``."""

    prefetch_id: str
    section_id: str
    outcome: Settlement
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
    operation: Operation = "request_context"
    """Which front-end operation asked; ``turn_id`` is empty for a resource read outside any turn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFailed(_TurnEvent):
    """One call that raised or was refused (unknown id, source failure, bad input).

    The engine emits it for calls that reached a turn; a front end emits it for calls it refuses
    before the engine (malformed arguments), so every call is observed, with ``turn_id`` empty
    when the call belongs to no turn.
    """

    section_id: str | None
    query: str | None
    error_type: str
    message: str
    tool_call_id: str | None
    start_ns: int
    end_ns: int
    operation: Operation = "request_context"


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
    def wait_ms_mean(self) -> float:
        """Mean context wait per call (0 when there were no calls)."""
        return sum(self.wait_ms) / len(self.wait_ms) if self.wait_ms else 0.0

    @property
    def wait_ms_p95(self) -> float:
        """95th percentile of the context wait per call (nearest rank; 0 when there were no calls)."""
        if not self.wait_ms:
            return 0.0
        ordered = sorted(self.wait_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnded(_TurnEvent):
    """The turn's bailout ran; ``report`` is what it cost and what speculation bought."""

    report: TurnReport
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionsChanged:
    """A live source reported changes and the catalog now holds them (the next lookup sees the new version).

    Front ends pass it on: the MCP server notifies clients subscribed to a changed section.
    """

    source: str
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    time_ns: int


Event: TypeAlias = (
    TurnStarted
    | PrefetchStarted
    | PrefetchFinished
    | PrefetchSettled
    | Lookup
    | LookupFailed
    | TurnEnded
    | SectionsChanged
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
