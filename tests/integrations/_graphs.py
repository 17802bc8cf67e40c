"""The support-desk graph the LangGraph tests run: its state, router, specialists, builder and source.

``classify`` routes to two specialists through a router with declared targets (a ``Literal`` return),
and each specialist thinks, then asks for its sections through the real ``request_context`` tool, as a
model's tool calls would. ``test_langgraph.py`` runs it with prehydrate's entry node (the explicit
path), ``test_graph_lifecycle.py`` wrapped by ``prehydrate_graph`` with a checkpointer (the implicit one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.integrations.langgraph import PrehydrateContext, RequestContextTool, prehydrate_entry

BILLING = ["billing/refunds", "refunds/request"]
API = ["api/errors", "api/rate-limits"]
TOOL = RequestContextTool()


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    route: Literal["billing", "api"]
    fail: bool
    """Makes the specialist raise: a run that crashes."""
    approved: str
    """The answer to an ``interrupt()``."""


def router(state: State) -> Literal["billing", "api"]:
    return state["route"]


async def noop(state: State) -> dict[str, Any]:
    return {}


def specialist(sections: Sequence[str], think_s: float = 0.1) -> Callable[..., Any]:
    """A node that thinks, then asks for each section through the tool (as a model's tool calls)."""

    async def node(state: State, config: RunnableConfig) -> dict[str, Any]:
        if state.get("fail"):
            raise ValueError("the specialist crashed")
        out: list[AnyMessage] = []
        for i, sid in enumerate(sections):
            await asyncio.sleep(think_s)
            call = {"type": "tool_call", "id": f"{sid}-{i}", "name": "request_context", "args": {"section": sid}}
            msg = await TOOL.ainvoke(call, config)
            assert isinstance(msg, ToolMessage)
            out.append(msg)
        return {"messages": out}

    return node


def support_graph(
    *,
    billing: Sequence[str] = BILLING,
    api: Sequence[str] = API,
    think_s: float = 0.1,
    declared: Mapping[str, Sequence[str]] | None = None,
    entry: bool = False,
    checkpointer: Any = None,
) -> Any:
    """The compiled graph: START -> classify -> billing | api -> END.

    Args:
        billing: the sections the billing specialist asks for (api: the api one's).
        think_s: how long a specialist thinks before each call.
        declared: sections a specialist declares in its node metadata (``{"billing": [...]}``).
        entry: start with prehydrate's entry node and take ``PrehydrateContext`` as the run context.
        checkpointer: the checkpointer to compile with.
    """
    md = declared or {}
    g = StateGraph(State, context_schema=PrehydrateContext) if entry else StateGraph(State)
    if entry:
        g.add_node("prehydrate", prehydrate_entry)
    g.add_node("classify", noop)
    for name, sections in (("billing", billing), ("api", api)):
        metadata = {"prehydrate": list(md[name])} if name in md else None
        g.add_node(name, specialist(sections, think_s), metadata=metadata)
    g.add_edge(START, "prehydrate" if entry else "classify")
    if entry:
        g.add_edge("prehydrate", "classify")
    g.add_conditional_edges("classify", router)
    g.add_edge("billing", END)
    g.add_edge("api", END)
    return g.compile(checkpointer=checkpointer)


def mock_source(
    ids: Sequence[str], latency: float | Callable[[str], float], gate: asyncio.Event | None = None
) -> ph.MockSource:
    """A source of ``ids`` whose content names the section and the tenant; waits for ``gate`` when given."""

    async def handler(sid: str, scope: ph.Scope) -> str:
        if gate is not None:
            await gate.wait()
        return f"# {sid}\n\ncontent of {sid} for {scope.tenant}"

    return ph.MockSource(handler, list(ids), latency_s=latency)
