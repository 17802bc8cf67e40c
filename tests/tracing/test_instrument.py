"""Spans and metrics from engine events, checked with the SDK's in-memory exporter and metric reader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import SpanKind, StatusCode

import prehydrate as ph
import prehydrate.tracing as pt
from prehydrate.tracing import Instrumentation, instrument
from prehydrate.tracing import attributes as A

from .conftest import OpenSpanTracker


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    return list(m.data.data_points)
    return []


def counts(reader: InMemoryMetricReader, name: str, key: str) -> dict[str, int]:
    out = {}
    for p in points(reader, name):
        assert isinstance(p, NumberDataPoint)
        out[str(dict(p.attributes or {})[key])] = int(p.value)
    return out


async def settle(turn: ph.Turn, *sections: str) -> None:
    """Wait until the prefetches of ``sections`` have finished (so a request is a hit)."""
    tasks = [r.task for r in turn.prefetches if r.section_id in sections and r.task is not None]
    assert len(tasks) == len(sections)
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_each_call_gets_one_span_with_its_result(
    engine: ph.Engine, instrumented: Instrumentation, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    async with engine.session("conv-1", tenant="acme") as session:
        async with session.turn(query="q", expect=["a", "b"]) as turn:
            await settle(turn, "a")
            hit = await turn.request_context("a", tool_call_id="call_1")
            inflight = await turn.request_context("b", tool_call_id="call_2")
            miss = await turn.request_context("c")
    assert (hit.outcome, inflight.outcome, miss.outcome) == ("hit", "inflight", "miss")

    spans = exporter.get_finished_spans()
    lookups = named(spans, A.SPAN_LOOKUP)
    assert [attrs(s)[A.PREHYDRATE_SECTION_ID] for s in lookups] == ["a", "b", "c"]
    assert [attrs(s)[A.PREHYDRATE_CACHE_RESULT] for s in lookups] == ["hit", "inflight", "miss"]
    (turn_span,) = named(spans, A.SPAN_TURN)
    for span, result in zip(lookups, (hit, inflight, miss), strict=True):
        a = attrs(span)
        assert span.kind is SpanKind.INTERNAL
        assert a[A.GEN_AI_OPERATION_NAME] == "execute_tool"
        assert a[A.GEN_AI_TOOL_NAME] == "request_context"
        assert a[A.PREHYDRATE_TENANT] == "acme"
        assert a[A.GEN_AI_CONVERSATION_ID] == "conv-1"
        assert a[A.PREHYDRATE_BYTES] == result.bytes > 0
        assert a[A.PREHYDRATE_WAIT_DURATION] == pytest.approx(result.waited_ms / 1000.0)  # seconds, like the histogram
        # No caller span here (plain engine API): the turn is the parent.
        assert span.parent is not None and span.parent.span_id == turn_span.context.span_id
        assert span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time
    assert attrs(lookups[0])[A.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert attrs(lookups[1])[A.GEN_AI_TOOL_CALL_ID] == "call_2"
    assert A.GEN_AI_TOOL_CALL_ID not in attrs(lookups[2])
    assert attrs(lookups[0])[A.PREHYDRATE_PREFETCH_LEAD_TIME] >= 0.0
    assert A.PREHYDRATE_PREFETCH_LEAD_TIME not in attrs(lookups[2])
    assert attrs(lookups[0])[A.PREHYDRATE_CACHE_TIER] == "memory"

    # A hit and an inflight join link to the prefetch that served them.
    prefetch_of = {attrs(s)[A.PREHYDRATE_SECTION_ID]: s for s in named(spans, A.SPAN_PREFETCH)}
    assert {link.context.span_id for link in lookups[0].links} == {prefetch_of["a"].context.span_id}
    assert {link.context.span_id for link in lookups[1].links} == {prefetch_of["b"].context.span_id}
    assert lookups[2].links == ()

    assert counts(reader, A.METRIC_LOOKUPS, A.PREHYDRATE_CACHE_RESULT) == {"hit": 1, "inflight": 1, "miss": 1}
    waits = points(reader, A.METRIC_LOOKUP_WAIT)
    assert sum(p.count for p in waits if isinstance(p, HistogramDataPoint)) == 3
    hydrated = counts(reader, A.METRIC_HYDRATED, A.PREHYDRATE_HYDRATION_KIND)
    assert hydrated == {"prefetch": hit.bytes + inflight.bytes, "demand": miss.bytes}


async def test_lookup_is_child_of_the_callers_span_and_links_to_its_turn(
    engine: ph.Engine, instrumented: Instrumentation, exporter: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("test")
    async with engine.session("conv-2") as session, session.turn(query="q", expect=[]) as turn:
        with tracer.start_as_current_span("agent step") as caller:
            await turn.request_context(query="password reset")
    spans = exporter.get_finished_spans()
    (lookup,) = named(spans, A.SPAN_LOOKUP)
    (turn_span,) = named(spans, A.SPAN_TURN)
    assert lookup.parent is not None and lookup.parent.span_id == caller.get_span_context().span_id
    assert lookup.context.trace_id == caller.get_span_context().trace_id
    assert [link.context.span_id for link in lookup.links] == [turn_span.context.span_id]
    assert attrs(lookup)[A.PREHYDRATE_SECTION_ID] == "d"
    assert A.PREHYDRATE_QUERY not in attrs(lookup)  # queries are opt-in


async def test_failed_lookup_has_error_status_and_type(
    engine: ph.Engine, instrumented: Instrumentation, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    async with engine.session("conv-3") as session, session.turn(expect=[]) as turn:
        with pytest.raises(ph.UnknownSectionError):
            await turn.request_context("nope", tool_call_id="call_9")
        with pytest.raises(ph.SourceError):
            await turn.request_context("boom")
    lookups = named(exporter.get_finished_spans(), A.SPAN_LOOKUP)
    assert len(lookups) == 2
    assert [attrs(s)[A.ERROR_TYPE] for s in lookups] == ["UnknownSectionError", "SourceError"]
    assert all(s.status.status_code is StatusCode.ERROR for s in lookups)
    assert "nope" in (lookups[0].status.description or "")
    assert attrs(lookups[0])[A.GEN_AI_TOOL_CALL_ID] == "call_9"
    assert A.PREHYDRATE_CACHE_RESULT not in attrs(lookups[0])
    (turn_span,) = named(exporter.get_finished_spans(), A.SPAN_TURN)
    assert attrs(turn_span)[A.PREHYDRATE_TURN_ERRORS] == 2
    got = {
        (str(dict(p.attributes)[A.PREHYDRATE_CACHE_RESULT]), str(dict(p.attributes)[A.ERROR_TYPE])): p.value
        for p in points(reader, A.METRIC_LOOKUPS)
    }
    assert got == {("error", "UnknownSectionError"): 1, ("error", "SourceError"): 1}


async def test_prefetch_outcomes_used_wasted_cancelled_failed(
    engine: ph.Engine,
    instrumented: Instrumentation,
    exporter: InMemorySpanExporter,
    reader: InMemoryMetricReader,
    tracker: OpenSpanTracker,
) -> None:
    async with engine.session("conv-4") as session:
        async with session.turn(query="q", expect=["a", "e", "slow", "boom"]) as turn:
            await settle(turn, "a", "e", "boom")
            await turn.request_context("a")
            assert instrumented.open_spans == 1 + 4  # the turn, and every prefetch until bailout settles it
    report = turn.report
    assert report is not None
    assert (report.used, report.wasted, report.cancelled, report.failed) == (1, 3, 1, 1)

    spans = exporter.get_finished_spans()
    prefetches = {attrs(s)[A.PREHYDRATE_SECTION_ID]: s for s in named(spans, A.SPAN_PREFETCH)}
    assert {k: attrs(s)[A.PREHYDRATE_PREFETCH_OUTCOME] for k, s in prefetches.items()} == {
        "a": "used",
        "e": "wasted",
        "slow": "cancelled",
        "boom": "failed",
    }
    assert attrs(prefetches["slow"])[A.PREHYDRATE_PREFETCH_STATUS] == "cancelled"
    assert prefetches["boom"].status.status_code is StatusCode.ERROR
    assert attrs(prefetches["boom"])[A.ERROR_TYPE] == "SourceError"
    assert attrs(prefetches["a"])[A.PREHYDRATE_PREFETCH_STATUS] == "ok"
    assert attrs(prefetches["a"])[A.PREHYDRATE_PREFETCH_PROBABILITY] == 1.0
    (turn_span,) = named(spans, A.SPAN_TURN)
    for span in prefetches.values():
        assert span.parent is not None and span.parent.span_id == turn_span.context.span_id
        assert [link.context.span_id for link in span.links] == [turn_span.context.span_id]
        assert span.end_time is not None and turn_span.end_time is not None
        assert span.end_time <= turn_span.end_time

    t = attrs(turn_span)
    assert (t[A.PREHYDRATE_TURN_CALLS], t[A.PREHYDRATE_TURN_HITS], t[A.PREHYDRATE_TURN_PREFETCHED]) == (1, 1, 4)
    assert (t[A.PREHYDRATE_TURN_USED], t[A.PREHYDRATE_TURN_WASTED]) == (1, 3)
    assert (t[A.PREHYDRATE_TURN_CANCELLED], t[A.PREHYDRATE_TURN_FAILED]) == (1, 1)
    assert t[A.PREHYDRATE_TURN_BYTES_WASTED] == report.bytes_wasted > 0
    assert t[A.PREHYDRATE_TURN_HIT_RATE] == 1.0
    assert list(t[A.PREHYDRATE_TURN_CANDIDATES]) == ["a", "e", "slow", "boom"]

    assert counts(reader, A.METRIC_PREFETCHES, A.PREHYDRATE_PREFETCH_OUTCOME) == {
        "used": 1,
        "wasted": 1,
        "cancelled": 1,
        "failed": 1,
    }
    (wasted_bytes,) = points(reader, A.METRIC_WASTED)
    assert wasted_bytes.value == report.bytes_wasted
    assert instrumented.open_spans == 0
    assert tracker.open == {}


async def test_no_span_left_open_when_the_engine_closes_mid_turn(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    source = ph.MockSource(lambda s, scope: f"text {s}", ["x", "y"], latency_s=30.0)
    engine = ph.Engine(sources=[source])
    handle = instrument(engine, trace.get_tracer_provider(), meter_provider)
    async with engine:
        session = engine.session("conv-5")
        await session.__aenter__()
        turn = await session.turn(query="q", expect=["x", "y"]).start()
        await asyncio.sleep(0)  # let the prefetch tasks start
        assert handle.open_spans == 3 and len(tracker.open) == 3
    # engine.aclose() bailed out of the open turn: every span ended, the prefetches as cancelled.
    assert handle.open_spans == 0
    assert tracker.open == {}
    spans = exporter.get_finished_spans()
    assert {attrs(s)[A.PREHYDRATE_PREFETCH_OUTCOME] for s in named(spans, A.SPAN_PREFETCH)} == {"cancelled"}
    assert turn.report is not None and turn.report.cancelled == 2
    handle.uninstrument()


async def test_uninstrument_ends_open_spans_and_detaches(
    engine: ph.Engine, exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    handle = instrument(engine, trace.get_tracer_provider(), meter_provider)
    session = engine.session("conv-6")
    turn = await session.turn(query="q", expect=["slow"]).start()
    await asyncio.sleep(0)
    assert handle.open_spans == 2
    handle.uninstrument()
    assert handle.open_spans == 0 and tracker.open == {}
    assert len(exporter.get_finished_spans()) == 2
    exporter.clear()
    await turn.request_context("a")
    await turn.end()
    await session.aclose()
    assert exporter.get_finished_spans() == ()  # detached: nothing more recorded
    handle.uninstrument()  # idempotent


async def test_instrumenting_mid_turn_still_records_the_turn_and_its_calls(
    engine: ph.Engine, exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    async with engine.session("conv-7") as session:
        async with session.turn(query="q", expect=["slow"]) as turn:
            await asyncio.sleep(0)
            with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
                await turn.request_context("a")
                await turn.end()
                assert handle.open_spans == 0
    spans = exporter.get_finished_spans()
    assert len(named(spans, A.SPAN_LOOKUP)) == 1
    (turn_span,) = named(spans, A.SPAN_TURN)
    assert attrs(turn_span)[A.PREHYDRATE_TURN_CALLS] == 1
    (prefetch,) = named(spans, A.SPAN_PREFETCH)
    assert attrs(prefetch)[A.PREHYDRATE_PREFETCH_OUTCOME] == "cancelled"
    assert tracker.open == {}


async def test_queries_recorded_only_when_asked(
    engine: ph.Engine, exporter: InMemorySpanExporter, meter_provider: MeterProvider
) -> None:
    with instrument(engine, trace.get_tracer_provider(), meter_provider, record_queries=True):
        async with engine.session("conv-8") as session, session.turn(query="How do I?", expect=[]) as turn:
            await turn.request_context(query="account deletion")
    spans = exporter.get_finished_spans()
    assert attrs(named(spans, A.SPAN_LOOKUP)[0])[A.PREHYDRATE_QUERY] == "account deletion"
    assert attrs(named(spans, A.SPAN_TURN)[0])[A.PREHYDRATE_QUERY] == "How do I?"


async def test_a_lone_surrogate_reaches_spans_as_unicode_text(
    engine: ph.Engine, exporter: InMemorySpanExporter, meter_provider: MeterProvider
) -> None:
    """A client's ``"\\ud800"`` escape becomes U+FFFD where the text enters the engine: the OTLP
    encoder (protobuf, strict UTF-8) raised on it and the exporter dropped the whole batch."""
    with instrument(engine, trace.get_tracer_provider(), meter_provider, record_queries=True):
        async with (
            engine.session("conv-8", task_type="how\udc80to") as session,
            session.turn(query="How \ud800do I?", expect=[]) as turn,
        ):
            await turn.request_context(query="account \ud800 deletion")
    spans = exporter.get_finished_spans()
    assert attrs(named(spans, A.SPAN_LOOKUP)[0])[A.PREHYDRATE_QUERY] == "account \ufffd deletion"
    turn_attrs = attrs(named(spans, A.SPAN_TURN)[0])
    assert (turn_attrs[A.PREHYDRATE_QUERY], turn_attrs[A.PREHYDRATE_TASK_TYPE]) == ("How \ufffddo I?", "how\ufffdto")
    assert encode_spans(spans).SerializeToString()


async def test_unsampled_provider_records_nothing_and_serves_normally(
    engine: ph.Engine, meter_provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with instrument(engine, provider, meter_provider) as handle:
        async with engine.session("conv-9") as session, session.turn(expect=["a", "slow"]) as turn:
            await settle(turn, "a")
            assert (await turn.request_context("a")).outcome == "hit"
        assert handle.open_spans == 0
    assert exporter.get_finished_spans() == ()
    assert counts(reader, A.METRIC_LOOKUPS, A.PREHYDRATE_CACHE_RESULT) == {"hit": 1}  # metrics are not sampled


async def test_a_sampler_sees_every_lookup_attribute(engine: ph.Engine, meter_provider: MeterProvider) -> None:
    """A lookup span gets all its attributes when it starts, in one dict (one validation pass in the
    SDK, not two), so a sampler can decide on any of them, e.g. keep only misses or slow waits."""
    seen: list[dict[str, Any]] = []

    class Recording(Sampler):
        def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> Any:
            attributes = args[1] if len(args) > 1 else kwargs.get("attributes")
            if name == A.SPAN_LOOKUP:
                seen.append(dict(attributes or {}))
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, *args, **kwargs)

        def get_description(self) -> str:
            return "recording"

    with instrument(engine, TracerProvider(sampler=Recording()), meter_provider):
        async with engine.session("conv-s", tenant="acme") as session, session.turn(expect=["a", "slow"]) as turn:
            await settle(turn, "a")
            await turn.request_context("a", tool_call_id="call_1")
    (lookup,) = seen
    assert lookup[A.PREHYDRATE_CACHE_RESULT] == "hit" and lookup[A.PREHYDRATE_TENANT] == "acme"
    assert lookup[A.GEN_AI_TOOL_CALL_ID] == "call_1" and lookup[A.GEN_AI_CONVERSATION_ID] == "conv-s"
    for key in (A.PREHYDRATE_WAIT_DURATION, A.PREHYDRATE_BYTES, A.PREHYDRATE_PREFETCH_LEAD_TIME, A.PREHYDRATE_TURN_ID):
        assert key in lookup


async def test_a_broken_tracer_never_breaks_serving(engine: ph.Engine, meter_provider: MeterProvider) -> None:
    class BrokenTracer(trace.NoOpTracer):
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter down")

    class BrokenProvider(trace.NoOpTracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return BrokenTracer()

    with instrument(engine, BrokenProvider(), meter_provider):
        async with engine.session("conv-10") as session, session.turn(expect=[]) as turn:
            assert (await turn.request_context("a")).section_id == "a"  # the bus logs the failure and goes on


def test_public_surface_is_sorted_and_complete() -> None:
    assert pt.__all__ == sorted(pt.__all__)
    assert set(pt.__all__) == {n for n in vars(pt) if not n.startswith("_") and n != "annotations"}
    assert A.__all__ == sorted(A.__all__)
    assert set(A.__all__) == {n for n in vars(A) if n.isupper()}
    keys = [getattr(A, n) for n in A.__all__ if not n.startswith(("METRIC_", "SPAN_"))]
    assert all(isinstance(k, str) for k in keys)


def test_import_needs_only_the_api() -> None:
    code = (
        "import sys, prehydrate.tracing; "
        "bad = sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_providers_follow_the_globals_installed_later() -> None:
    """``instrument(engine)`` before the application installs its SDK: spans and metrics still arrive.

    Runs in a fresh interpreter because it sets the global meter provider.
    """
    code = """
import asyncio
import prehydrate as ph
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prehydrate.tracing import instrument

engine = ph.Engine(sources=[ph.MockSource(lambda sid, scope: "text " + sid, ["a", "b"])])
handle = instrument(engine)  # library default: the global (proxy) providers, still no-ops here
exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(tp)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

async def main():
    async with engine, engine.session("s") as session, session.turn(expect=[]) as turn:
        await turn.request_context("a")

asyncio.run(main())
names = sorted(s.name for s in exporter.get_finished_spans())
assert names == ["execute_tool request_context", "prehydrate turn"], names
got = {m.name: [dict(p.attributes) for p in m.data.data_points]
       for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
assert got["prehydrate.cache.lookups"] == [
    {"prehydrate.operation": "request_context", "prehydrate.cache.result": "miss"}
], got
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_follow_the_opentelemetry_naming_rules() -> None:
    """No unit in a metric name (the instrument has one), and durations in seconds, not ``*_ms`` keys."""
    values = {name: getattr(A, name) for name in A.__all__ if isinstance(getattr(A, name), str)}
    metrics = [v for n, v in values.items() if n.startswith("METRIC_")]
    assert metrics and not [m for m in metrics if m.rsplit(".", 1)[-1] in {"bytes", "ms", "seconds", "count"}]
    assert not [v for v in values.values() if v.endswith("_ms") or "_ms_" in v]
