"""The ``request_context`` tool as a langchain-core ``BaseTool``.

The model sees two optional arguments, ``section`` (an id from the prompt's stubs) and ``query``
(free text resolved to the best section). The tool returns the section's content to the model and
an artifact for the program: ``{"section", "title", "outcome", "waited_ms", "version", "bytes"}``.

Inside a LangGraph run (``ToolNode``, a node that invokes the tool, or a LangChain agent built on
LangGraph) the tool finds the run's :class:`PrehydrateContext` through LangGraph's runtime context
(``get_runtime()``), so it shares the session and turn the entry node opened, and records the
running node (config metadata ``langgraph_node``) with each call. Anywhere else, bind a context:
``RequestContextTool(context=ctx)``.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

import prehydrate as ph
from prehydrate.integrations._run import NODE_KEY, PrehydrateContext, context_of

__all__ = ["RequestContextArgs", "RequestContextTool"]

DESCRIPTION = (
    "Fetch the full text of a context section listed in your instructions. Pass `section` with the "
    "section id when you know it, or `query` with a few words describing what you need. Ask only for "
    "sections you need to answer."
)


class RequestContextArgs(BaseModel):
    """The model-facing arguments: exactly one of ``section`` and ``query``."""

    section: str | None = Field(default=None, description="Section id, e.g. 'billing/refunds'.")
    query: str | None = Field(default=None, description="What you need, in a few words, when you lack the id.")


def _runtime_context() -> Any:
    """The LangGraph run context of the current call, or None outside a graph run."""
    try:
        from langgraph.runtime import get_runtime

        runtime = get_runtime()
    except (ImportError, RuntimeError, KeyError):
        return None
    return getattr(runtime, "context", None) if runtime is not None else None


class RequestContextTool(BaseTool):
    """``request_context``: context sections for the model, from prehydrate's warm cache.

    ``response_format`` is ``content_and_artifact``: the model gets the content; the
    ``ToolMessage.artifact`` carries outcome, waited_ms and section. Expected failures (unknown
    section, no match, a source error) come back to the model as an error ``ToolMessage`` naming
    close matches, so it can correct itself.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "request_context"
    description: str = DESCRIPTION
    args_schema: type[BaseModel] = RequestContextArgs
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True
    context: PrehydrateContext | None = None
    """A context bound at construction (outside LangGraph); a graph run's own context wins."""

    def _to_args_and_kwargs(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        # The model's tool call id is not an argument the model may set, so it travels beside the
        # parsed arguments (an InjectedToolCallId field would forbid plain-dict invocation).
        args, kwargs = super()._to_args_and_kwargs(tool_input, tool_call_id)
        kwargs["tool_call_id"] = tool_call_id
        return args, kwargs

    def _resolve_context(self) -> PrehydrateContext:
        found = _runtime_context()
        if found is not None:
            try:
                return context_of(found)
            except ph.ConfigError:
                if self.context is None:
                    raise
        if self.context is not None:
            return self.context
        return context_of(None)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("request_context is async: use ainvoke (LangGraph runs async tools with ainvoke)")

    async def _arun(
        self,
        section: str | None = None,
        query: str | None = None,
        *,
        config: RunnableConfig,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        ctx = self._resolve_context()
        node = (config.get("metadata") or {}).get(NODE_KEY)
        try:
            r = await ctx.request_context(
                section, query=query, tool_call_id=tool_call_id, node=node if isinstance(node, str) else None
            )
        except (ph.UnknownSectionError, ph.NoMatchError, ph.InputError, ph.SourceError) as exc:
            # Expected failures go back to the model (the message names close matches) so it can retry.
            raise ToolException(str(exc)) from exc
        artifact = {
            "section": r.section_id,
            "title": r.title,
            "outcome": r.outcome,
            "waited_ms": round(r.waited_ms, 3),
            "version": r.version,
            "bytes": r.bytes,
        }
        return r.content, artifact
