"""Under MCP the SDK's own ``tools/call`` span is the tool span: one span per call, every call traced."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import prehydrate as ph
from prehydrate.tracing import Instrumentation, instrument
from prehydrate.tracing import attributes as A

from .conftest import OpenSpanTracker


def tiny_server(turn: ph.Turn) -> MCPServer[Any]:
    """The smallest MCP front end of an application's own: one tool forwarding to ``turn.request_context``.

    It declares nothing: prehydrate recognises the SDK's ``execute_tool request_context`` span by itself.
    """
    server: MCPServer[Any] = MCPServer("tiny")

    @server.tool()
    async def request_context(section: str) -> dict[str, str]:
        try:
            r = await turn.request_context(section)
        except ph.PrehydrateError as exc:
            raise ToolError(str(exc)) from exc
        return {"section": r.section_id, "outcome": r.outcome}

    return server


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def execute_tool_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if attrs(s).get(A.GEN_AI_OPERATION_NAME) == A.OPERATION_EXECUTE_TOOL]


def call_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """Spans that record one prehydrate call (tool or resource read), whoever opened them."""
    return [s for s in spans if A.PREHYDRATE_OPERATION in attrs(s)]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_tools_call_span_is_the_only_tool_span(
    mode: str,
    engine: ph.Engine,
    instrumented: Instrumentation,
    exporter: InMemorySpanExporter,
    tracker: OpenSpanTracker,
) -> None:
    async with engine.session("mcp-1", tenant="acme") as session:
        async with session.turn(query="q", expect=["a"]) as turn:
            for record in turn.prefetches:
                assert record.task is not None
                await record.task
            server = tiny_server(turn)
            async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
                exporter.clear()  # keep only the tool calls' spans
                first = await client.call_tool("request_context", {"section": "a"})
                second = await client.call_tool("request_context", {"section": "c"})
                failed = await client.call_tool("request_context", {"section": "nope"})
    spans = exporter.get_finished_spans()
    (turn_span,) = [s for s in spans if s.name == A.SPAN_TURN]
    assert first.structured_content == {"section": "a", "outcome": "hit"}
    assert second.structured_content == {"section": "c", "outcome": "miss"}
    assert failed.is_error

    servers = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "tools/call request_context"]
    assert len(servers) == 3, [s.name for s in spans]
    assert execute_tool_spans(spans) == servers  # one execute_tool span per call: the SDK's
    ours = {s.name for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "prehydrate"}
    assert ours == {A.SPAN_TURN, A.SPAN_PREFETCH}  # and no call span of prehydrate's own
    assert [attrs(s).get(A.PREHYDRATE_CACHE_RESULT) for s in servers] == ["hit", "miss", None]
    assert attrs(servers[0])[A.PREHYDRATE_SECTION_ID] == "a"
    assert attrs(servers[0])[A.PREHYDRATE_PREFETCH_LEAD_TIME] >= 0.0
    assert A.GEN_AI_TOOL_CALL_ID not in attrs(servers[0])  # the JSON-RPC id is not a model's tool call id
    for span in servers:  # each call links back to its turn
        assert turn_span.context.span_id in {link.context.span_id for link in span.links}
    assert servers[2].status.status_code is StatusCode.ERROR
    (event,) = [e for e in servers[2].events if e.name == "exception"]
    assert dict(event.attributes or {})["exception.type"] == "UnknownSectionError"
    if mode == "legacy":  # the client's JSON-RPC dispatcher propagates its trace: one trace per call
        clients = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "MCP send tools/call request_context"]
        assert len(clients) == 3
        for client_span, server_span in zip(clients, servers, strict=True):
            assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id
    assert tracker.open == {}


def lookup_counts(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], int]:
    data = reader.get_metrics_data()
    out: dict[tuple[str, str, str], int] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == A.METRIC_LOOKUPS:
                    for p in metric.data.data_points:
                        a = dict(p.attributes or {})
                        op, result = str(a[A.PREHYDRATE_OPERATION]), str(a[A.PREHYDRATE_CACHE_RESULT])
                        key = (op, result, str(a.get(A.ERROR_TYPE, "")))
                        out[key] = out.get(key, 0) + int(p.value)  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_call_of_the_real_server_has_exactly_one_span(
    mode: str,
    exporter: InMemorySpanExporter,
    reader: InMemoryMetricReader,
    meter_provider: MeterProvider,
    tracker: OpenSpanTracker,
) -> None:
    """Hits, misses, bad inputs (refused before the engine or by it) and resource reads: N calls, N spans."""
    from prehydrate.mcp_server import create_server

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    ids = engine.catalog.ids
    tool_calls: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"section": ids[0]}, None),
        ({"section": ids[0]}, None),  # a hit: warm since the first call
        ({"query": "refund"}, None),
        ({}, None),  # neither argument: refused by the tool before the engine
        ({"section": ids[0], "query": "x"}, None),  # both
        ({"query": "x" * 5000}, None),  # over-long
        ({"section": 123}, None),  # wrong type: refused by the argument check before the SDK's validation
        ({"sect": ids[0]}, None),  # a misspelled argument
        ({"section": "no/such-section"}, None),  # refused by the engine
        ({"section": ids[1]}, {"prehydrate/session": ""}),  # a malformed session id in _meta
    ]
    reads = [f"prehydrate://sections/{ids[2]}", f"prehydrate://sections/{ids[2]}", "prehydrate://sections/nope"]
    with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
        async with engine:
            async with Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
                exporter.clear()
                errors = 0
                for args, meta in tool_calls:
                    out = await client.call_tool("request_context", args, meta=meta)  # type: ignore[arg-type]
                    errors += out.is_error
                for uri in reads:
                    try:
                        await client.read_resource(uri, cache_mode="bypass")
                    except MCPError:
                        errors += 1
            assert handle.open_spans == 0
    assert errors == 8
    spans = exporter.get_finished_spans()
    calls = call_spans(spans)
    assert len(calls) == len(tool_calls) + len(reads)
    for span in calls:
        a = attrs(span)
        assert (A.PREHYDRATE_CACHE_RESULT in a) != (span.status.status_code is StatusCode.ERROR), a
    tools = [s for s in spans if s.name == "tools/call request_context"]
    assert len(tools) == len(tool_calls)
    assert execute_tool_spans(spans) == tools  # exactly one execute_tool span per tools/call, the SDK's
    assert [s for s in calls if s.name.startswith("tools/call")] == tools
    outcomes = [attrs(s).get(A.PREHYDRATE_CACHE_RESULT) for s in tools]
    assert outcomes[1] == "hit" and outcomes[0] in {"miss", "inflight", "hit"}
    assert outcomes[3:] == [None] * 7
    resource_spans = [s for s in calls if attrs(s)[A.PREHYDRATE_OPERATION] == "read_resource"]
    assert [s.name for s in resource_spans] == ["resources/read"] * 3  # the SDK's span of each read
    assert [attrs(s).get(A.PREHYDRATE_CACHE_RESULT) for s in resource_spans][1] == "hit"
    assert resource_spans[2].status.status_code is StatusCode.ERROR
    assert [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "prehydrate"] == [
        s for s in spans if s.name in (A.SPAN_TURN, A.SPAN_PREFETCH)
    ]  # prehydrate opened no call span of its own: every call was recorded on the SDK's span

    counts = lookup_counts(reader)
    assert sum(counts.values()) == len(tool_calls) + len(reads)
    assert counts[("request_context", "error", "InputError")] == 6
    assert counts[("request_context", "error", "UnknownSectionError")] == 1
    assert counts[("read_resource", "error", "UnknownSectionError")] == 1
    assert tracker.open == {}


async def test_without_the_sdk_span_prehydrate_opens_its_own(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """With the SDK's OpenTelemetry middleware removed, each call still gets exactly one execute_tool span."""
    from prehydrate.mcp_server import create_server

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    ids = engine.catalog.ids
    server = create_server(engine)
    server.middleware[:] = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
    with instrument(engine, trace.get_tracer_provider(), meter_provider):
        async with engine:
            async with Client(server) as client:
                exporter.clear()
                await client.call_tool("request_context", {"section": ids[0]})
                await client.call_tool("request_context", {})
                await client.read_resource(f"prehydrate://sections/{ids[1]}", cache_mode="bypass")
    spans = exporter.get_finished_spans()
    assert not [s for s in spans if s.kind is SpanKind.SERVER]
    tools = execute_tool_spans(spans)
    assert [s.name for s in tools] == [A.SPAN_LOOKUP, A.SPAN_LOOKUP]
    assert attrs(tools[0])[A.PREHYDRATE_CACHE_RESULT] in {"hit", "inflight", "miss"}
    assert tools[1].status.status_code is StatusCode.ERROR
    assert [s.name for s in call_spans(spans)] == [A.SPAN_LOOKUP, A.SPAN_LOOKUP, A.SPAN_READ_RESOURCE]
    assert tracker.open == {}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_streamable_http_the_sdk_span_is_the_tool_span(
    mode: str, exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """The same shape over a real streamable HTTP server on a free loopback port (uvicorn, in process)."""
    import asyncio

    import uvicorn

    from prehydrate.mcp_server import create_server

    from .._net import free_port

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    ids = engine.catalog.ids
    port = free_port()
    config = uvicorn.Config(create_server(engine).streamable_http_app(), host="127.0.0.1", port=port, log_level="error")
    web = uvicorn.Server(config)
    with instrument(engine, trace.get_tracer_provider(), meter_provider):
        async with engine:
            serving = asyncio.create_task(web.serve())
            try:
                while not web.started:
                    await asyncio.sleep(0.02)
                async with Client(f"http://127.0.0.1:{port}/mcp", mode=mode) as client:  # type: ignore[arg-type]
                    exporter.clear()
                    await client.call_tool("request_context", {"section": ids[0]})
                    await client.call_tool("request_context", {"section": ids[0]})
                    await client.call_tool("request_context", {"section": ids[0], "query": "both"})
                    await client.read_resource(f"prehydrate://sections/{ids[1]}", cache_mode="bypass")
                spans = exporter.get_finished_spans()
            finally:
                web.should_exit = True
                await serving
    tools = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "tools/call request_context"]
    assert len(tools) == 3 and execute_tool_spans(spans) == tools
    assert [attrs(s).get(A.PREHYDRATE_CACHE_RESULT) for s in tools][1:] == ["hit", None]
    assert tools[2].status.status_code is StatusCode.ERROR
    calls = call_spans(spans)
    assert len(calls) == 4 and [s.name for s in calls if s not in tools] == ["resources/read"]
    assert tracker.open == {}
