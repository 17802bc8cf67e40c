"""prehydrate for LangGraph: predict from the graph, prefetch at entry, bail out at the end of the run.

Usage::

    import prehydrate as ph
    from prehydrate.integrations.langgraph import (
        PrehydrateContext, Prehydrator, RequestContextTool, WorkflowPredictor, prehydrate_entry)

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("prehydrate", prehydrate_entry)                  # right after START
    g.add_node("billing", billing, metadata={"prehydrate": ["billing/refunds"]})   # optional hints
    g.add_node("tools", ToolNode([RequestContextTool()]))
    g.add_edge(START, "prehydrate")
    ...
    app = g.compile()

    engine = ph.Engine(sources=[...], predictor=WorkflowPredictor(), traces=ph.TraceStore(path))
    prehydrator = Prehydrator(engine, app)                      # reads the DAG once
    async with engine:
        async with prehydrator.run("conv-42", tenant="acme", query=question) as ctx:
            await app.ainvoke({"messages": [("user", question)]}, context=ctx)
        # or, for a plain ainvoke: h = prehydrator.handler("conv-42", query=question)
        #     await app.ainvoke(inputs, context=h.context, config={"callbacks": [h]})

Routers must declare their targets (a ``Literal`` return annotation, a ``path_map``, or
``destinations=`` for ``Command``), otherwise ``get_graph()`` loses them and
:class:`UndeclaredTargetsWarning` says so. See docs/langgraph.md.
"""

from __future__ import annotations

from prehydrate.integrations._guard import require

require("prehydrate.integrations.langgraph", "langgraph", "langchain_core")

from prehydrate.integrations._node_cache import DiskNodeCache  # noqa: E402
from prehydrate.integrations._run import (  # noqa: E402
    PrehydrateCallbackHandler,
    PrehydrateContext,
    Prehydrator,
    context_of,
    prehydrate_entry,
)
from prehydrate.integrations._tool import RequestContextArgs, RequestContextTool  # noqa: E402
from prehydrate.integrations._workflow import (  # noqa: E402
    END,
    START,
    UndeclaredTargetsWarning,
    WorkflowDAG,
    WorkflowEdge,
    WorkflowNode,
    WorkflowPredictor,
)

__all__ = [
    "DiskNodeCache",
    "END",
    "PrehydrateCallbackHandler",
    "PrehydrateContext",
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
    "prehydrate_entry",
]
