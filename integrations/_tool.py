"""The ``request_context`` tool as a langchain-core ``BaseTool``.

The model sees two optional arguments, ``section`` (an id from the prompt's stubs) and ``query``
(free text resolved to the best section). The tool returns the section's content to the model and
an artifact for the program: ``{"section", "title", "outcome", "waited_ms", "version", "bytes"}``.

Inside a run (``ToolNode``, a node that invokes the tool, or a ``create_agent`` agent) the tool finds
the run's :class:`PrehydrateContext` (the one a prehydrated graph or the agent middleware opened, or
LangGraph's runtime context on the explicit path), so it shares the run's session and turn, and
records the running node (``outer:inner`` inside subgraphs) with each call. Anywhere else, bind a
context: ``RequestContextTool(context=ctx)``. ``invoke`` works too: the call is served on the
prehydrator's background loop.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

import prehydrate as ph
from prehydrate.integrations._graph import qualified_node
from prehydrate.integrations._run import (
    PrehydrateContext,
    context_in_config,
    context_of,
    current_context,
    runtime_context,
)

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

    def _resolve_context(self, config: RunnableConfig | None = None) -> PrehydrateContext:
        found = current_context() or context_in_config(config)
        if found is not None:
            return found
        runtime = runtime_context()
        if runtime is not None:
            try:
                return context_of(runtime)
            except ph.ConfigError:
                if self.context is None:
                    raise
        if self.context is not None:
            return self.context
        return context_of(None)

    def _run(
        self,
        section: str | None = None,
        query: str | None = None,
        *,
        config: RunnableConfig,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        ctx = self._resolve_context(config)
        return ctx.prehydrator.portal.call(self._serve(ctx, section, query, config, tool_call_id))

    async def _arun(
        self,
        section: str | None = None,
        query: str | None = None,
        *,
        config: RunnableConfig,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        return await self._serve(self._resolve_context(config), section, query, config, tool_call_id)

    async def _serve(
        self,
        ctx: PrehydrateContext,
        section: str | None,
        query: str | None,
        config: RunnableConfig,
        tool_call_id: str | None,
    ) -> tuple[str, dict[str, Any]]:
        node = qualified_node(config.get("metadata"))
        try:
            r = await ctx.request_context(section, query=query, tool_call_id=tool_call_id, node=node)
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
