"""prehydrate for LangGraph: predict from the graph, prefetch as the run starts, bail out when it ends.

Usage::

    import prehydrate as ph
    from prehydrate.integrations.langgraph import RequestContextTool, prehydrate_graph

    builder.add_node("tools", ToolNode([RequestContextTool(), ...]))   # the model's request_context
    engine = ph.Engine(sources=[ph.DirectorySource("docs/")], traces=ph.TraceStore(path))
    app = prehydrate_graph(builder.compile(checkpointer=InMemorySaver()), engine)
    await app.ainvoke({"messages": [("user", question)]}, {"configurable": {"thread_id": "t-1"}})

The thread id is the session, the tenant comes from ``configurable["tenant"]`` (or the run
context's ``tenant``; default ``"default"``), the last human message is the turn's query, and the
run's end is the bailout. Interrupts keep the turn's prefetches while the thread is paused;
subgraphs are followed (``get_graph(xray=True)``); ``invoke`` works too. For ``create_agent``
apps add :class:`PrehydrateMiddleware`. The explicit path (``Prehydrator.run``, the entry node,
``PrehydrateContext`` as the run context) stays for those who want to own the lifecycle.

Routers must declare their targets (a ``Literal`` return annotation, a ``path_map``, or
``destinations=`` for ``Command``), otherwise ``get_graph()`` loses them and
:class:`UndeclaredTargetsWarning` says so. See docs/langgraph.md.
"""

from __future__ import annotations

from prehydrate.integrations._guard import require

require("prehydrate.integrations.langgraph", "langgraph", "langchain_core")

from prehydrate import WorkflowDAG, WorkflowEdge, WorkflowNode, WorkflowPredictor  # noqa: E402
from prehydrate.integrations._app import GraphLifecycle, PrehydratedGraph, prehydrate_graph  # noqa: E402
from prehydrate.integrations._graph import UndeclaredTargetsWarning, workflow_dag  # noqa: E402
from prehydrate.integrations._node_cache import DiskNodeCache  # noqa: E402
from prehydrate.integrations._run import (  # noqa: E402
    PrehydrateCallbackHandler,
    PrehydrateContext,
    Prehydrator,
    context_of,
    current_context,
    prehydrate_entry,
)
from prehydrate.integrations._tool import RequestContextArgs, RequestContextTool  # noqa: E402

END = "__end__"
"""LangGraph's name of the virtual last node."""
START = "__start__"
"""LangGraph's name of the virtual first node."""

__all__ = [
    "DiskNodeCache",
    "END",
    "GraphLifecycle",
    "PrehydrateCallbackHandler",
    "PrehydrateContext",
    "PrehydratedGraph",
    "Prehydrator",
    "RequestContextArgs",
    "RequestContextTool",
    "START",
    "UndeclaredTargetsWarning",
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
    "context_of",
    "current_context",
    "prehydrate_entry",
    "prehydrate_graph",
    "workflow_dag",
]
