"""Fixtures for the tracing tests: one global SDK tracer provider for the whole session.

The MCP SDK's tracer is a module-level proxy that follows the *global* provider, and the global
provider can be set only once per process. So the session installs one provider with an in-memory
exporter (synchronous: a span is visible as soon as it ends) and a processor that tracks spans still
open; each test starts from an empty exporter. Metrics need no global: each test gets its own
MeterProvider and reader, passed to ``instrument``.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
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


@pytest.fixture(scope="session", autouse=True)
def global_tracer_provider() -> TracerProvider:
    """Install the SDK provider globally once, so the MCP SDK's own spans are recorded too.

    If another part of the suite already installed a global SDK provider (it can be set only once
    per process), attach the exporter and the tracker to that one instead.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({"service.name": "prehydrate-test"}))
        trace.set_tracer_provider(provider)
        assert trace.get_tracer_provider() is provider, "a non-SDK global provider was installed first"
    provider.add_span_processor(_TRACKER)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return provider


@pytest.fixture
def exporter(global_tracer_provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def tracker(global_tracer_provider: TracerProvider) -> OpenSpanTracker:
    """The open-span tracker, forgetting spans of earlier tests (this test's spans all start after)."""
    _TRACKER.open.clear()
    return _TRACKER


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@dataclass
class Receiver:
    """A minimal OTLP/HTTP collector: stores every decoded export request and its headers."""

    url: str
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            rec = box["r"]
            rec.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply: Any
            if self.path == "/v1/traces":
                rec.traces.append(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                rec.metrics.append(ExportMetricsServiceRequest.FromString(body))
                reply = ExportMetricsServiceResponse()
            else:
                self.send_error(404)
                return
            payload = reply.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: a free port chosen by the OS
    box["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield box["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


_OTEL_VARS = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_METRICS_EXEMPLAR_FILTER",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in _OTEL_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind is not None else None


def as_dict(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


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
