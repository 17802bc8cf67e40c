"""prehydrate for LangChain: the ``request_context`` tool, retrievers as sources, the run callback.

Usage::

    from prehydrate.integrations.langchain import RequestContextTool, RetrieverSource

    engine = ph.Engine(sources=[RetrieverSource(retriever, {"billing/refunds": "refund policy"})])
    tool = RequestContextTool()          # in a LangGraph run it finds the run's context itself
    tool = RequestContextTool(context=ctx)   # elsewhere, bind a PrehydrateContext

The tool's ``ToolMessage.artifact`` carries ``section``, ``title``, ``outcome`` (hit, inflight,
miss), ``waited_ms``, ``version`` and ``bytes``. See docs/langgraph.md.
"""

from __future__ import annotations

from prehydrate.integrations._guard import require

require("prehydrate.integrations.langchain", "langchain_core", "langgraph")

from prehydrate.integrations._retriever import RetrieverSource, join_documents  # noqa: E402
from prehydrate.integrations._run import PrehydrateCallbackHandler, PrehydrateContext  # noqa: E402
from prehydrate.integrations._tool import RequestContextArgs, RequestContextTool  # noqa: E402

__all__ = [
    "PrehydrateCallbackHandler",
    "PrehydrateContext",
    "RequestContextArgs",
    "RequestContextTool",
    "RetrieverSource",
    "join_documents",
]
