"""A LangGraph Platform deployment with prehydrate: ``langgraph dev`` (or ``langgraph up``) serves ``graph``.

Where things live:

* **The engine** is built once per server process, at import (the platform imports this module once
  per worker); it starts on the graph's first run and its warm cache and learned counts are shared by
  every thread of the process. Point ``sources`` at your documents; ``traces`` keeps what it learns.
* **The graph** is compiled without a checkpointer (the platform brings its own) and wrapped with
  ``prehydrate_graph``: every run through the platform's API is a prehydrate turn. The thread is the
  session; the tenant comes from the run's ``context`` (``{"tenant": "acme"}``, see ``Context``) or
  ``configurable``; the last human message is the turn's query.

The model here is scripted so the example runs offline; replace ``ScriptedModel`` with your chat
model (``init_chat_model(...)``) and keep ``bind_tools([RequestContextTool()])``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.integrations.langgraph import RequestContextTool, prehydrate_graph


class Context(TypedDict, total=False):
    """The run context the platform passes (``context={"tenant": "acme"}``)."""

    tenant: str


class ScriptedModel(BaseChatModel):
    """Asks for the refund policy once, then answers (stands in for a real chat model)."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        raise NotImplementedError("the platform runs graphs async")

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        await asyncio.sleep(0.2)  # the model thinks
        if any(isinstance(m, ToolMessage) for m in messages):
            msg = AIMessage(content="Refunds are granted within 30 days.")
        else:
            call = {"name": "request_context", "args": {"section": "billing/refunds"}, "id": "c1"}
            msg = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=msg)])


model = ScriptedModel().bind_tools([RequestContextTool()])


async def agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState, context_schema=Context)
builder.add_node("agent", agent, metadata={"prehydrate": ["billing/refunds"]})
builder.add_node("tools", ToolNode([RequestContextTool()]))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", tools_condition)
builder.add_edge("tools", "agent")

engine = ph.Engine(
    sources=[ph.JsonlSource(ph.sample_sections_path())],
    traces=ph.TraceStore(os.environ.get("PREHYDRATE_TRACES", ".prehydrate/traces.jsonl")),
)
graph = prehydrate_graph(builder.compile(), engine)
