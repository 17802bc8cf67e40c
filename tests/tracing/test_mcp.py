"""Under MCP, the lookup span is the child of the SDK's own ``tools/call`` server span (and no second server span)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import prehydrate as ph
from prehydrate.tracing import Instrumentation, instrument
from prehydrate.tracing import attributes as A

from .conftest import OpenSpanTracker


def tiny_server(turn: ph.Turn) -> MCPServer[Any]:
    """The smallest MCP front end: one tool that forwards to ``turn.request_context``."""
    server: MCPServer[Any] = MCPServer("tiny")

    @server.tool()
    async def request_context(section: str, ctx: Context[Any, Any]) -> dict[str, str]:
        try:
            r = await turn.request_context(section, tool_call_id=str(ctx.request_id))
        except ph.PrehydrateError as exc:
            raise ToolError(str(exc)) from exc
        return {"section": r.section_id, "outcome": r.outcome}

    return server


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_lookup_span_is_child_of_the_tools_call_server_span(
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
    assert first.structured_content == {"section": "a", "outcome": "hit"}
    assert second.structured_content == {"section": "c", "outcome": "miss"}
    assert failed.is_error

    servers = [s for s in by_kind(spans, SpanKind.SERVER) if s.name == "tools/call request_context"]
    lookups = [s for s in spans if s.name == A.SPAN_LOOKUP]
    assert len(servers) == 3, [s.name for s in spans]
    assert len(lookups) == 3
    ours = [s for s in spans if s.instrumentation_scope is not None and s.instrumentation_scope.name == "prehydrate"]
    assert ours == lookups  # prehydrate adds INTERNAL lookup spans only, never a second server span
    for server_span, lookup in zip(servers, lookups, strict=True):
        assert lookup.kind is SpanKind.INTERNAL
        assert lookup.parent is not None and lookup.parent.span_id == server_span.context.span_id
        assert lookup.context.trace_id == server_span.context.trace_id
        assert (
            dict(lookup.attributes or {})[A.GEN_AI_TOOL_CALL_ID]
            == dict(server_span.attributes or {})["jsonrpc.request.id"]
        )
    results = [dict(s.attributes or {}).get(A.PREHYDRATE_CACHE_RESULT) for s in lookups]
    assert results == ["hit", "miss", None]
    assert lookups[2].status.status_code is StatusCode.ERROR
    assert dict(lookups[2].attributes or {})[A.ERROR_TYPE] == "UnknownSectionError"
    assert servers[2].status.status_code is StatusCode.ERROR  # the SDK marks the tool error on its own span

    if mode == "legacy":  # the client's JSON-RPC dispatcher propagates its trace: one trace per call
        clients = [s for s in by_kind(spans, SpanKind.CLIENT) if s.name == "MCP send tools/call request_context"]
        assert len(clients) == 3
        for client_span, server_span in zip(clients, servers, strict=True):
            assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id
    assert tracker.open == {}


async def test_the_real_prehydrate_server_nests_its_lookups_and_ends_every_span(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """``prehydrate.mcp_server.create_server``: its own sessions and turns, the same span shape."""
    from prehydrate.mcp_server import create_server

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    ids = engine.catalog.ids
    with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
        async with engine:
            async with Client(create_server(engine)) as client:
                for section in (ids[0], ids[1], ids[1]):
                    out = await client.call_tool("request_context", {"section": section})
                    assert not out.is_error
            # Leaving the client ran the server's shutdown: the open turn bailed out.
            assert handle.open_spans == 0
    spans = exporter.get_finished_spans()
    servers = {s.context.span_id: s for s in spans if s.name == "tools/call request_context"}
    lookups = [s for s in spans if s.name == A.SPAN_LOOKUP]
    assert len(lookups) == 3 and len(servers) == 3
    for lookup in lookups:
        assert lookup.parent is not None and lookup.parent.span_id in servers
    assert dict(lookups[2].attributes or {})[A.PREHYDRATE_CACHE_RESULT] == "hit"
    (turn_span,) = [s for s in spans if s.name == A.SPAN_TURN]
    assert dict(turn_span.attributes or {})[A.PREHYDRATE_TURN_CALLS] == 3
    for lookup in lookups:  # each call's trace links back to the turn it belongs to
        assert turn_span.context.span_id in {link.context.span_id for link in lookup.links}
    assert tracker.open == {}
