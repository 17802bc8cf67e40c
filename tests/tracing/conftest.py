"""Fixtures for the tracing tests: one global SDK tracer provider for the whole session.

The MCP SDK's tracer is a module-level proxy that follows the *global* provider, and the global
provider can be set only once per process. So the session installs one provider with an in-memory
exporter (synchronous: a span is visible as soon as it ends) and a processor that tracks spans still
open; each test starts from an empty exporter. Metrics need no global: each test gets its own
MeterProvider and reader, passed to ``instrument``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import prehydrate as ph
from prehydrate.tracing import Instrumentation, instrument


class OpenSpanTracker(SpanProcessor):
    """Remembers every span started and not yet ended, to prove that nothing leaks."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.open[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.open.pop(span.context.span_id, None)


_EXPORTER = InMemorySpanExporter()
_TRACKER = OpenSpanTracker()
_PROVIDER = TracerProvider(resource=Resource.create({"service.name": "prehydrate-test"}))
_PROVIDER.add_span_processor(_TRACKER)
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture(scope="session", autouse=True)
def global_tracer_provider() -> TracerProvider:
    """Install the SDK provider globally once, so the MCP SDK's own spans are recorded too."""
    trace.set_tracer_provider(_PROVIDER)
    assert trace.get_tracer_provider() is _PROVIDER, "another global provider was installed first"
    return _PROVIDER


@pytest.fixture
def exporter(global_tracer_provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def tracker() -> OpenSpanTracker:
    return _TRACKER


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def corpus(ids: list[str]) -> dict[str, str]:
    return {sid: f"# {sid}\n\ncontent of {sid} " + "x" * 40 for sid in ids}


@pytest.fixture
async def engine() -> AsyncIterator[ph.Engine]:
    """Sections a..e; ``slow`` takes long enough that a turn ends while its prefetch still runs."""
    texts = corpus(["a", "b", "c", "d", "e", "slow", "boom"])

    def handler(section_id: str, scope: ph.Scope) -> str:
        if section_id == "boom":
            raise RuntimeError("source exploded")
        return texts[section_id]

    latency = {"slow": 30.0, "b": 0.05}
    titles = {"d": "Password reset", "e": "Account deletion"}
    sections = [ph.Section(id=sid, title=titles.get(sid, f"Section {sid}")) for sid in texts]
    source = ph.MockSource(handler, sections, latency_s=lambda s: latency.get(s, 0.0))
    eng = ph.Engine(sources=[source], policy=ph.PrefetchPolicy(top_n=4, max_inflight=4, repredict=False))
    async with eng:
        yield eng


@pytest.fixture
def instrumented(
    engine: ph.Engine, exporter: InMemorySpanExporter, meter_provider: MeterProvider
) -> Iterator[Instrumentation]:
    with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
        yield handle
