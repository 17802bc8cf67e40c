"""Turn engine events into OpenTelemetry spans and metrics.

The engine delivers events synchronously in the task that caused them, so when a ``Lookup``
arrives the current OpenTelemetry context is the caller's. Each call is recorded on exactly one
span:

- the host's, when the front end declared one with :func:`~prehydrate.tracing.host_span` (under
  MCP the SDK's ``tools/call request_context`` span, which by the conventions *is* the
  ``execute_tool`` span; or its ``resources/read`` span): prehydrate sets its attributes, links
  and errors on it and opens nothing;
- otherwise its own ``execute_tool request_context`` span (``read_resource ...`` for a section
  read), created *after the fact* from the event's wall-clock times and ended at once, parented on
  the LangChain run in progress (OpenInference, LangSmith), else on the current span, else on its
  turn. Nothing is left open across an ``await``.

Turns and prefetches span several tasks, so their spans are never made current: they are kept in
dictionaries by id, started when the turn or prefetch starts and ended when it is settled at
bailout. :meth:`Instrumentation.uninstrument` ends whatever is still open, so no span leaks.

Counters are cheap on the hot path: a call increments a plain dict, and observable counters hand
the totals to the SDK when it collects (an SDK ``Counter.add`` costs about as much as the whole
warm-cache hit). Only the wait-time histogram is a synchronous instrument. The instruments are
shared by every instrumentation of one meter provider, so instrumenting several engines, or the
same engine again, reports one set of totals instead of registering duplicates.

Only ``opentelemetry-api`` is imported here: the application chooses the SDK and exporters.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider

from prehydrate import (
    Engine,
    Lookup,
    LookupFailed,
    PrefetchFinished,
    PrefetchSettled,
    PrefetchStarted,
    TurnEnded,
    TurnReport,
    TurnStarted,
    __version__,
)
from prehydrate.tracing import attributes as A
from prehydrate.tracing._hosts import current_host_span, framework_parent

__all__ = ["Instrumentation", "instrument"]

_SCOPE: Final = "prehydrate"
_WAIT_BUCKETS_S: Final = (0.0, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram boundaries (seconds): a hit waits well under a millisecond, a miss up to seconds."""

_Attrs = dict[str, Any]


@dataclass(slots=True)
class _OpenTurn:
    span: Span
    link: Link = field(init=False)
    """A link to the turn span, made once: every lookup and prefetch of the turn carries it."""
    prefetches: dict[str, Span] = field(default_factory=dict)
    """Open prefetch spans of this turn, by prefetch id."""
    by_section: dict[str, Link] = field(default_factory=dict)
    """A link to the latest prefetch span of each section, so a lookup can link to the fetch that served it."""

    def __post_init__(self) -> None:
        self.link = Link(self.span.get_span_context())


class _Meters:
    """The instruments of one meter provider and the running totals its observable counters report."""

    def __init__(self, meter: Meter) -> None:
        self.lookups: dict[tuple[str, str, str], int] = {}
        """(operation, result, error type or "") -> calls."""
        self.prefetches: dict[str, int] = {}
        self.hydrated: dict[str, int] = {}
        self.wasted_bytes = 0
        self._wait_attrs: dict[tuple[str, str], Mapping[str, str]] = {}
        meter.create_observable_counter(
            A.METRIC_LOOKUPS,
            [self._observe_lookups],
            unit="{lookup}",
            description="request_context calls and section reads by operation and cache result",
        )
        meter.create_observable_counter(
            A.METRIC_PREFETCHES,
            [self._observe_prefetches],
            unit="{prefetch}",
            description="Speculative hydrations by outcome at bailout",
        )
        meter.create_observable_counter(
            A.METRIC_HYDRATED,
            [self._observe_hydrated],
            unit="By",
            description="Bytes hydrated from sources (prefetch or demand)",
        )
        meter.create_observable_counter(
            A.METRIC_WASTED,
            [self._observe_wasted],
            unit="By",
            description="Prefetched bytes discarded unused at bailout",
        )
        self.wait = meter.create_histogram(
            A.METRIC_LOOKUP_WAIT,
            unit="s",
            description="How long request_context callers waited for content",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS_S,
        )

    def wait_attrs(self, operation: str, result: str) -> Mapping[str, str]:
        """The histogram's attribute set for one (operation, result), made once and reused."""
        found = self._wait_attrs.get((operation, result))
        if found is None:
            found = self._wait_attrs[(operation, result)] = {
                A.PREHYDRATE_OPERATION: operation,
                A.PREHYDRATE_CACHE_RESULT: result,
            }
        return found

    # The callbacks run on the exporter's thread: copy the dicts (atomic under the GIL) before iterating.

    def _observe_lookups(self, options: CallbackOptions) -> Iterable[Observation]:
        out = []
        for (operation, result, error_type), n in list(self.lookups.items()):
            attrs = {A.PREHYDRATE_OPERATION: operation, A.PREHYDRATE_CACHE_RESULT: result}
            if error_type:
                attrs[A.ERROR_TYPE] = error_type
            out.append(Observation(n, attrs))
        return out

    def _observe_prefetches(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {A.PREHYDRATE_PREFETCH_OUTCOME: o}) for o, n in list(self.prefetches.items())]

    def _observe_hydrated(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {A.PREHYDRATE_HYDRATION_KIND: k}) for k, n in list(self.hydrated.items())]

    def _observe_wasted(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.wasted_bytes)]


_METERS: weakref.WeakKeyDictionary[object, _Meters] = weakref.WeakKeyDictionary()
_GLOBAL_METERS: list[_Meters] = []


def _meters_for(provider: MeterProvider | None) -> _Meters:
    """The shared instruments of ``provider`` (None: the global provider, through the API's proxy)."""
    if provider is None:
        if not _GLOBAL_METERS:
            _GLOBAL_METERS.append(_Meters(metrics.get_meter(_SCOPE, __version__)))
        return _GLOBAL_METERS[0]
    found = _METERS.get(provider)
    if found is None:
        found = _METERS[provider] = _Meters(provider.get_meter(_SCOPE, __version__))
    return found


class Instrumentation:
    """The subscriber :func:`instrument` attaches to an engine; call :meth:`uninstrument` to detach.

    Also usable as a context manager (``with instrument(engine): ...``) so tests and scripts detach
    and end open spans even when they fail.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        record_queries: bool = False,
    ) -> None:
        self.engine = engine
        self.record_queries = record_queries
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        self._meters = _meters_for(meter_provider)
        self._turns: dict[str, _OpenTurn] = {}
        self._orphans: dict[str, Span] = {}
        """Prefetch spans whose turn span we never saw (instrumented mid-turn)."""
        self._handlers: dict[type, Any] = {
            Lookup: self._on_lookup,
            LookupFailed: self._on_lookup_failed,
            TurnStarted: self._on_turn_started,
            TurnEnded: self._on_turn_ended,
            PrefetchStarted: self._on_prefetch_started,
            PrefetchFinished: self._on_prefetch_finished,
            PrefetchSettled: self._on_prefetch_settled,
        }
        self._unsubscribe = engine.subscribe(self)
        self.active = True

    # -- public --------------------------------------------------------------------------------------

    def uninstrument(self) -> None:
        """Stop receiving events and end every span still open (turns that never reached bailout)."""
        if not self.active:
            return
        self.active = False
        self._unsubscribe()
        for span in self._orphans.values():
            span.end()
        self._orphans.clear()
        for turn in self._turns.values():
            for span in turn.prefetches.values():
                span.end()
            turn.span.end()
        self._turns.clear()

    @property
    def open_spans(self) -> int:
        """Turn and prefetch spans started and not yet ended (0 once every turn has bailed out)."""
        return len(self._orphans) + sum(1 + len(t.prefetches) for t in self._turns.values())

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()

    def __call__(self, event: object) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # -- lookups -------------------------------------------------------------------------------------

    def _links(self, turn: _OpenTurn | None, section_id: str | None, *, to_turn: bool) -> list[Link]:
        """Links from a lookup to its turn and to the prefetch of its section (the fetch that served it)."""
        links = [turn.link] if turn is not None and to_turn else []
        if turn is not None and section_id is not None:
            fetch = turn.by_section.get(section_id)
            if fetch is not None:
                links.append(fetch)
        return links

    def _own_span(self, ev: Lookup | LookupFailed, attrs: _Attrs, section_id: str | None) -> Span:
        """Start the span of a call no host records: a child of the framework's run or the current span.

        With neither, it is parented on its turn, so a raw API call still sits in the turn's trace.
        Either way it links to the turn (unless that is its parent) and to the prefetch that served it.
        """
        turn = self._turns.get(ev.turn_id) if ev.turn_id else None
        ctx = framework_parent()
        to_turn = True
        if ctx is None and turn is not None and not trace.get_current_span().get_span_context().is_valid:
            ctx = trace.set_span_in_context(turn.span)
            to_turn = False
        if ev.operation == "request_context":
            name = A.SPAN_LOOKUP
            attrs[A.GEN_AI_OPERATION_NAME] = A.OPERATION_EXECUTE_TOOL
            attrs[A.GEN_AI_TOOL_NAME] = A.TOOL_NAME
            attrs[A.GEN_AI_TOOL_TYPE] = "function"
        else:
            name = A.SPAN_READ_RESOURCE
        return self._tracer.start_span(
            name,
            context=ctx,
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            links=self._links(turn, section_id, to_turn=to_turn),
            start_time=ev.start_ns,
        )

    def _call_attrs(self, ev: Lookup | LookupFailed) -> _Attrs:
        """The attributes every call carries, on its own span or on the host's, failed or not."""
        attrs: _Attrs = {
            A.PREHYDRATE_OPERATION: ev.operation,
            A.PREHYDRATE_TENANT: ev.tenant,
        }
        if ev.session:
            attrs[A.GEN_AI_CONVERSATION_ID] = ev.session
        if ev.turn_id:
            attrs[A.PREHYDRATE_TURN_ID] = ev.turn_id
        if ev.tool_call_id is not None:
            attrs[A.GEN_AI_TOOL_CALL_ID] = ev.tool_call_id
        if self.record_queries and ev.query is not None:
            attrs[A.PREHYDRATE_QUERY] = ev.query
        return attrs

    def _on_lookup(self, ev: Lookup) -> None:
        # Every attribute goes in one dict: the SDK validates it once, under one lock, where
        # separate set_attribute calls cost about 5 µs more. An unsampled span only hands the dict
        # to the sampler, so building it whole is cheaper than asking is_recording() first.
        attrs = self._call_attrs(ev)
        attrs[A.PREHYDRATE_CACHE_RESULT] = ev.outcome
        attrs[A.PREHYDRATE_SECTION_ID] = ev.section_id
        attrs[A.PREHYDRATE_WAIT_DURATION] = ev.waited_ms / 1000.0
        attrs[A.PREHYDRATE_BYTES] = ev.bytes
        if ev.lead_ms is not None:
            attrs[A.PREHYDRATE_PREFETCH_LEAD_TIME] = ev.lead_ms / 1000.0
        if ev.tier is not None:
            attrs[A.PREHYDRATE_CACHE_TIER] = ev.tier
        if ev.node is not None:
            attrs[A.PREHYDRATE_NODE] = ev.node
        served_by = ev.section_id if ev.outcome != "miss" else None
        host = current_host_span(ev.operation == "request_context")
        if host is not None:  # the host's span is the call's span: annotate it, open nothing
            host.set_attributes(attrs)
            turn = self._turns.get(ev.turn_id) if ev.turn_id else None
            for link in self._links(turn, served_by, to_turn=True):
                host.add_link(link.context)
        else:
            self._own_span(ev, attrs, served_by).end(end_time=ev.end_ns)
        m = self._meters
        key = (ev.operation, ev.outcome, "")
        m.lookups[key] = m.lookups.get(key, 0) + 1
        m.wait.record(ev.waited_ms / 1000.0, m.wait_attrs(ev.operation, ev.outcome))
        if ev.outcome == "miss":
            m.hydrated["demand"] = m.hydrated.get("demand", 0) + ev.bytes

    def _on_lookup_failed(self, ev: LookupFailed) -> None:
        attrs = self._call_attrs(ev)
        attrs[A.ERROR_TYPE] = ev.error_type
        if ev.section_id is not None:
            attrs[A.PREHYDRATE_SECTION_ID] = ev.section_id
        host = current_host_span(ev.operation == "request_context")
        span = host if host is not None else self._own_span(ev, attrs, None)
        if host is not None:
            host.set_attributes(attrs)
            turn = self._turns.get(ev.turn_id) if ev.turn_id else None
            for link in self._links(turn, None, to_turn=True):
                host.add_link(link.context)
        # The exception event keeps prehydrate's error class where a host overwrites error.type
        # with its own category (the MCP SDK sets "tool_error" on every failed tool call).
        span.add_event("exception", {"exception.type": ev.error_type, "exception.message": ev.message})
        span.set_status(Status(StatusCode.ERROR, ev.message))
        if host is None:
            span.end(end_time=ev.end_ns)
        key = (ev.operation, "error", ev.error_type)
        self._meters.lookups[key] = self._meters.lookups.get(key, 0) + 1

    # -- turns ---------------------------------------------------------------------------------------

    def _turn_attrs(self, turn_id: str, session: str, tenant: str) -> _Attrs:
        return {
            A.PREHYDRATE_TURN_ID: turn_id,
            A.PREHYDRATE_SESSION_ID: session,
            A.GEN_AI_CONVERSATION_ID: session,
            A.PREHYDRATE_TENANT: tenant,
        }

    def _on_turn_started(self, ev: TurnStarted) -> None:
        attrs = self._turn_attrs(ev.turn_id, ev.session, ev.tenant)
        attrs[A.PREHYDRATE_TURN_CANDIDATES] = [section for section, _ in ev.candidates]
        if ev.task_type is not None:
            attrs[A.PREHYDRATE_TASK_TYPE] = ev.task_type
        if self.record_queries:
            attrs[A.PREHYDRATE_QUERY] = ev.query
        old = self._turns.pop(ev.turn_id, None)
        if old is not None:  # cannot happen with the engine's unique ids; never leak a span if it does
            self._end_turn_spans(old, None)
        # Under a LangChain tracer the turn joins the run's span (the entry node's), else the current span.
        span = self._tracer.start_span(
            A.SPAN_TURN, context=framework_parent(), kind=SpanKind.INTERNAL, attributes=attrs, start_time=ev.time_ns
        )
        self._turns[ev.turn_id] = _OpenTurn(span)

    def _on_turn_ended(self, ev: TurnEnded) -> None:
        turn = self._turns.pop(ev.turn_id, None)
        if turn is None:  # instrumented after the turn started: record it after the fact
            span = self._tracer.start_span(
                A.SPAN_TURN,
                kind=SpanKind.INTERNAL,
                attributes=self._turn_attrs(ev.turn_id, ev.session, ev.tenant),
                start_time=ev.start_ns,
            )
            turn = _OpenTurn(span)
        report = ev.report
        if isinstance(report, TurnReport) and turn.span.is_recording():
            turn.span.set_attributes(
                {
                    A.PREHYDRATE_TURN_CALLS: report.calls,
                    A.PREHYDRATE_TURN_HITS: report.hits,
                    A.PREHYDRATE_TURN_INFLIGHT: report.inflight,
                    A.PREHYDRATE_TURN_MISSES: report.misses,
                    A.PREHYDRATE_TURN_ERRORS: report.errors,
                    A.PREHYDRATE_TURN_PREFETCHED: report.prefetched,
                    A.PREHYDRATE_TURN_USED: report.used,
                    A.PREHYDRATE_TURN_WASTED: report.wasted,
                    A.PREHYDRATE_TURN_CANCELLED: report.cancelled,
                    A.PREHYDRATE_TURN_FAILED: report.failed,
                    A.PREHYDRATE_TURN_BYTES_PREFETCHED: report.bytes_prefetched,
                    A.PREHYDRATE_TURN_BYTES_WASTED: report.bytes_wasted,
                    A.PREHYDRATE_TURN_WAIT_DURATION: report.wait_ms_total / 1000.0,
                    A.PREHYDRATE_TURN_DURATION: report.duration_ms / 1000.0,
                    A.PREHYDRATE_TURN_HIT_RATE: report.hit_rate,
                    A.PREHYDRATE_TURN_COVERED_RATE: report.covered_rate,
                    A.PREHYDRATE_TURN_MAX_INFLIGHT: report.max_inflight,
                }
            )
        self._end_turn_spans(turn, ev.end_ns)

    def _end_turn_spans(self, turn: _OpenTurn, end_ns: int | None) -> None:
        # A prefetch that found its section already cached ("warm") fetched nothing and is not
        # settled by the engine; it still had a span, which ends here with that outcome.
        for span in turn.prefetches.values():
            span.set_attribute(A.PREHYDRATE_PREFETCH_OUTCOME, "warm")
            span.end(end_time=end_ns)
        turn.prefetches.clear()
        turn.span.end(end_time=end_ns)

    # -- prefetches ----------------------------------------------------------------------------------

    def _on_prefetch_started(self, ev: PrefetchStarted) -> None:
        attrs: _Attrs = {
            A.PREHYDRATE_PREFETCH_ID: ev.prefetch_id,
            A.PREHYDRATE_SECTION_ID: ev.section_id,
            A.PREHYDRATE_PREFETCH_PROBABILITY: ev.probability,
            A.PREHYDRATE_PREFETCH_REASON: ev.reason,
            A.PREHYDRATE_TURN_ID: ev.turn_id,
            A.PREHYDRATE_TENANT: ev.tenant,
        }
        turn = self._turns.get(ev.turn_id)
        if turn is None:
            span = self._tracer.start_span(A.SPAN_PREFETCH, attributes=attrs, start_time=ev.time_ns)
            self._orphans[ev.prefetch_id] = span
            return
        # A child of the turn (the prefetch task's own context is wherever the turn was entered),
        # and an explicit link so backends that show links make the relation obvious.
        span = self._tracer.start_span(
            A.SPAN_PREFETCH,
            context=trace.set_span_in_context(turn.span),
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            links=[turn.link],
            start_time=ev.time_ns,
        )
        turn.prefetches[ev.prefetch_id] = span
        turn.by_section[ev.section_id] = Link(span.get_span_context())

    def _open_prefetch(self, turn_id: str, prefetch_id: str) -> Span | None:
        turn = self._turns.get(turn_id)
        if turn is not None:
            span = turn.prefetches.get(prefetch_id)
            if span is not None:
                return span
        return self._orphans.get(prefetch_id)

    def _on_prefetch_finished(self, ev: PrefetchFinished) -> None:
        if ev.status == "ok":
            self._meters.hydrated["prefetch"] = self._meters.hydrated.get("prefetch", 0) + ev.bytes
        span = self._open_prefetch(ev.turn_id, ev.prefetch_id)
        if span is None or not span.is_recording():
            return
        span.set_attributes(
            {
                A.PREHYDRATE_PREFETCH_STATUS: ev.status,
                A.PREHYDRATE_PREFETCH_DURATION: ev.duration_ms / 1000.0,
                A.PREHYDRATE_BYTES: ev.bytes,
            }
        )
        if ev.status == "failed" and ev.error is not None:
            span.set_attribute(A.ERROR_TYPE, ev.error.split(":", 1)[0])
            span.set_status(Status(StatusCode.ERROR, ev.error))

    def _on_prefetch_settled(self, ev: PrefetchSettled) -> None:
        turn = self._turns.get(ev.turn_id)
        span = turn.prefetches.pop(ev.prefetch_id, None) if turn is not None else None
        if span is None:
            span = self._orphans.pop(ev.prefetch_id, None)
        if span is None:  # settled without ever starting (cancelled while queued): record it anyway
            parent = trace.set_span_in_context(turn.span) if turn is not None else None
            span = self._tracer.start_span(
                A.SPAN_PREFETCH,
                context=parent,
                attributes={
                    A.PREHYDRATE_PREFETCH_ID: ev.prefetch_id,
                    A.PREHYDRATE_SECTION_ID: ev.section_id,
                    A.PREHYDRATE_TURN_ID: ev.turn_id,
                    A.PREHYDRATE_TENANT: ev.tenant,
                },
                start_time=ev.start_ns or ev.end_ns,
            )
        span.set_attribute(A.PREHYDRATE_PREFETCH_OUTCOME, ev.outcome)
        span.end(end_time=ev.end_ns or None)
        m = self._meters
        m.prefetches[ev.outcome] = m.prefetches.get(ev.outcome, 0) + 1
        if ev.outcome == "wasted":
            m.wasted_bytes += ev.bytes


def instrument(
    engine: Engine,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    *,
    record_queries: bool = False,
) -> Instrumentation:
    """Emit OpenTelemetry spans and metrics for everything ``engine`` does.

    Args:
        engine: the engine to observe (every front end, MCP or LangChain, goes through it).
        tracer_provider: where spans go; ``None`` follows the global provider, which is a no-op
            until the application installs one. The library never installs providers itself.
        meter_provider: where metrics go; ``None`` follows the global provider.
        record_queries: also record free-text queries (user and model text) as attributes. Off by
            default because queries may hold personal data.

    Returns:
        The :class:`Instrumentation`; call ``uninstrument()`` to detach it.

    Example:
        >>> import prehydrate as ph
        >>> from prehydrate.tracing import instrument
        >>> engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
        >>> handle = instrument(engine)
        >>> handle.uninstrument()
    """
    return Instrumentation(
        engine, tracer_provider=tracer_provider, meter_provider=meter_provider, record_queries=record_queries
    )
