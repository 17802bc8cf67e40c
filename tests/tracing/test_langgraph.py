"""Under LangGraph, lookup spans are children of the run's current context, even for parallel tool calls."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.tracing import Instrumentation
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
