"""Under LangGraph, lookup spans are children of the run's current context, even for parallel tool calls."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.tracing import Instrumentation, instrument
from prehydrate.tracing import attributes as A

from .conftest import OpenSpanTracker


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_graph(turn: ph.Turn) -> Any:
    @tool
    async def request_context(section: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Fetch a context section by id."""
        r = await turn.request_context(section, tool_call_id=tool_call_id, node="tools")
        return r.content

    def agent(state: State) -> dict[str, Any]:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return {"messages": [AIMessage(content="done")]}
        calls = [
            {"name": "request_context", "args": {"section": sid}, "id": f"call_{sid}", "type": "tool_call"}
            for sid in ("a", "d", "e")
        ]
        return {"messages": [AIMessage(content="", tool_calls=calls)]}

    def route(state: State) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([request_context]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile()


async def test_parallel_tool_calls_in_a_graph_are_children_of_the_run(
    engine: ph.Engine, instrumented: Instrumentation, exporter: InMemorySpanExporter, tracker: OpenSpanTracker
) -> None:
    tracer = trace.get_tracer("app")
    async with engine.session("lg-1", tenant="acme") as session:
        async with session.turn(query="q", expect=["a"]) as turn:
            for rec in turn.prefetches:
                assert rec.task is not None
                await rec.task
            graph = build_graph(turn)
            with tracer.start_as_current_span("invoke_workflow support-agent") as run:
                out = await graph.ainvoke({"messages": [("user", "help")]})
    tool_messages = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 3

    lookups = [s for s in exporter.get_finished_spans() if s.name == A.SPAN_LOOKUP]
    assert len(lookups) == 3  # exactly one span per call
    by_call = {dict(s.attributes or {})[A.GEN_AI_TOOL_CALL_ID]: dict(s.attributes or {}) for s in lookups}
    assert {k: v[A.PREHYDRATE_CACHE_RESULT] for k, v in by_call.items()} == {
        "call_a": "hit",
        "call_d": "miss",
        "call_e": "miss",
    }
    assert {v[A.PREHYDRATE_NODE] for v in by_call.values()} == {"tools"}
    for span in lookups:
        assert span.parent is not None and span.parent.span_id == run.get_span_context().span_id
        assert span.context.trace_id == run.get_span_context().trace_id
    assert tracker.open == {}


async def test_the_langchain_request_context_tool_in_a_prehydrated_graph_is_one_trace(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """The real integration: the entry node opens the turn and ``RequestContextTool`` serves the calls.

    Everything happens inside the application's run span, so the turn, its prefetches and the
    lookups form one trace under it, each lookup carrying the model's tool call id and node.
    """
    from prehydrate.integrations.langgraph import PrehydrateContext, Prehydrator, RequestContextTool, prehydrate_entry

    texts = {sid: f"# {sid}\n" + "text " * 50 for sid in ("billing/refunds", "billing/invoices", "api/errors")}
    source = ph.MockSource(lambda sid, scope: texts[sid], list(texts))
    engine = ph.Engine(sources=[source], policy=ph.PrefetchPolicy(top_n=2))

    async def agent(state: State) -> dict[str, Any]:
        calls = [
            {"name": "request_context", "args": {"section": sid}, "id": f"call_{i}", "type": "tool_call"}
            for i, sid in enumerate(("billing/refunds", "api/errors"))
        ]
        return {"messages": [AIMessage(content="", tool_calls=calls)]}

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("prehydrate", prehydrate_entry)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([RequestContextTool()]))
    g.add_edge(START, "prehydrate")
    g.add_edge("prehydrate", "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", END)
    app = g.compile()

    tracer = trace.get_tracer("app")
    with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
        async with engine:
            with tracer.start_as_current_span("invoke_workflow support-agent") as run:
                async with Prehydrator(engine, app).run("lg-2", tenant="acme", query="refund") as ctx:
                    out = await app.ainvoke({"messages": [("user", "refund?")]}, context=ctx)
            assert handle.open_spans == 0
    assert len([m for m in out["messages"] if isinstance(m, ToolMessage)]) == 2

    spans = exporter.get_finished_spans()
    run_id = run.get_span_context()
    assert {s.context.trace_id for s in spans if s.instrumentation_scope.name == "prehydrate"} == {run_id.trace_id}
    (turn_span,) = [s for s in spans if s.name == A.SPAN_TURN]
    assert turn_span.parent is not None and turn_span.parent.span_id == run_id.span_id
    lookups = {dict(s.attributes or {})[A.GEN_AI_TOOL_CALL_ID]: s for s in spans if s.name == A.SPAN_LOOKUP}
    assert set(lookups) == {"call_0", "call_1"}
    for span in lookups.values():
        assert span.parent is not None and span.parent.span_id == run_id.span_id
        assert dict(span.attributes or {})[A.PREHYDRATE_NODE] == "tools"
        assert turn_span.context.span_id in {link.context.span_id for link in span.links}
    assert dict(turn_span.attributes or {})[A.PREHYDRATE_TURN_CALLS] == 2
    for prefetch in (s for s in spans if s.name == A.SPAN_PREFETCH):
        assert prefetch.parent is not None and prefetch.parent.span_id == turn_span.context.span_id
    assert tracker.open == {}


def prehydrated_app() -> tuple[ph.Engine, Any]:
    """The real integration: entry node, a scripted agent asking for two sections, a ToolNode with the tool."""
    from prehydrate.integrations.langgraph import PrehydrateContext, RequestContextTool, prehydrate_entry

    texts = {sid: f"# {sid}\n" + "text " * 50 for sid in ("billing/refunds", "billing/invoices", "api/errors")}
    source = ph.MockSource(lambda sid, scope: texts[sid], list(texts))
    engine = ph.Engine(sources=[source], policy=ph.PrefetchPolicy(top_n=2))

    async def agent(state: State) -> dict[str, Any]:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return {"messages": [AIMessage(content="done")]}
        calls = [
            {"name": "request_context", "args": {"section": sid}, "id": f"call_{i}", "type": "tool_call"}
            for i, sid in enumerate(("billing/refunds", "api/errors"))
        ]
        return {"messages": [AIMessage(content="", tool_calls=calls)]}

    def route(state: State) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("prehydrate", prehydrate_entry)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([RequestContextTool()]))
    g.add_edge(START, "prehydrate")
    g.add_edge("prehydrate", "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return engine, g.compile()


async def test_under_the_openinference_instrumentor_a_run_is_one_trace_without_an_app_span(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """What Phoenix users run: the graph's node spans, the turn and every lookup in one trace.

    No application span: the parents come from OpenInference's public ``get_current_span()``.
    """
    from openinference.instrumentation.langchain import LangChainInstrumentor

    from prehydrate.integrations.langgraph import Prehydrator

    engine, app = prehydrated_app()
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=trace.get_tracer_provider())
    try:
        assert not trace.get_current_span().get_span_context().is_valid  # nothing current: no app span
        with instrument(engine, trace.get_tracer_provider(), meter_provider) as handle:
            async with engine:
                async with Prehydrator(engine, app).run("oi-1", tenant="acme", query="refund") as ctx:
                    out = await app.ainvoke({"messages": [("user", "refund?")]}, context=ctx)
                assert handle.open_spans == 0
    finally:
        instrumentor.uninstrument()
    assert len([m for m in out["messages"] if isinstance(m, ToolMessage)]) == 2

    spans = exporter.get_finished_spans()
    graph = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name.startswith("openinference")]
    ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "prehydrate"]
    by_id = {s.context.span_id: s for s in graph}
    assert {"prehydrate", "agent", "tools"} <= {s.name for s in graph}  # the graph's node spans
    assert len({s.context.trace_id for s in graph + ours}) == 1  # one trace
    (turn_span,) = [s for s in ours if s.name == A.SPAN_TURN]
    assert turn_span.parent is not None and by_id[turn_span.parent.span_id].name == "prehydrate"  # the entry node
    lookups = [s for s in ours if s.name == A.SPAN_LOOKUP]
    assert sorted(dict(s.attributes or {})[A.GEN_AI_TOOL_CALL_ID] for s in lookups) == ["call_0", "call_1"]
    for span in lookups:  # each lookup under the tool run's span, which is under the tools node
        assert span.parent is not None
        tool_run = by_id[span.parent.span_id]
        assert tool_run.name == "request_context"
        assert tool_run.parent is not None and by_id[tool_run.parent.span_id].name == "tools"
    # Exactly one execute_tool span per call: OpenInference's tool span is not an execute_tool span.
    tool_spans = [s for s in spans if dict(s.attributes or {}).get(A.GEN_AI_OPERATION_NAME) == A.OPERATION_EXECUTE_TOOL]
    assert tool_spans == lookups
    assert tracker.open == {}


async def test_under_langsmith_opentelemetry_tracing_a_run_joins_the_application_span(
    exporter: InMemorySpanExporter, meter_provider: MeterProvider, tracker: OpenSpanTracker
) -> None:
    """LangChain's own OpenTelemetry tracing (LangSmith, ``tracing_mode="otel"``) and prehydrate in one trace.

    LangSmith publishes no helper for the current run's span (see docs/tracing.md), so the join goes
    through the span current around the run: LangSmith's root span and prehydrate's spans are both
    its children. Nothing leaves the machine: in ``otel`` mode LangSmith exports only to the provider.
    """
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client as LangSmithClient

    from prehydrate.integrations.langgraph import Prehydrator

    engine, app = prehydrated_app()
    provider = trace.get_tracer_provider()
    client = LangSmithClient(
        tracing_mode="otel", otel_tracer_provider=provider, api_key="unused", api_url="http://127.0.0.1:9"
    )
    tracer = LangChainTracer(client=client, project_name="prehydrate-test")
    with instrument(engine, provider, meter_provider):
        async with engine:
            with trace.get_tracer("app").start_as_current_span("invoke_workflow support-agent") as run:
                async with Prehydrator(engine, app).run("ls-1", tenant="acme", query="refund") as ctx:
                    await app.ainvoke({"messages": [("user", "refund?")]}, context=ctx, config={"callbacks": [tracer]})
    tracer.wait_for_futures()
    client.flush()
    spans = exporter.get_finished_spans()
    langsmith = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "langsmith"]
    ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "prehydrate"]
    assert {"LangGraph", "prehydrate", "agent", "tools"} <= {s.name for s in langsmith}
    assert {s.name for s in ours} >= {A.SPAN_TURN, A.SPAN_LOOKUP}
    assert {s.context.trace_id for s in langsmith + ours} == {run.get_span_context().trace_id}  # one trace
    (root,) = [s for s in langsmith if s.name == "LangGraph"]
    assert root.parent is not None and root.parent.span_id == run.get_span_context().span_id
    assert tracker.open == {}
