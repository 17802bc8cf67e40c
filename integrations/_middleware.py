"""``PrehydrateMiddleware``: prehydrate for LangChain 1.x ``create_agent`` apps, as agent middleware.

``create_agent(model, tools=[RequestContextTool(), ...], middleware=[PrehydrateMiddleware(engine)])``
opens the turn before the first model call (``before_agent``), re-aims the prediction before every
model call, serves the agent's ``request_context`` calls from that turn (``wrap_tool_call``) and
bails out after the agent's last step (``after_agent``). Sessions, tenants and queries follow the
same rules as :func:`~prehydrate.integrations.langgraph.prehydrate_graph` (thread id, ``tenant``
in ``configurable`` or the run context, the last human message).

Because the turn opens before the model thinks, a first ``request_context`` that joins a prefetch
is honestly ``inflight``: the fetch started before the model asked. The hooks are async: run the
agent with ``ainvoke``/``astream``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired
from uuid import uuid4

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command

import prehydrate as ph
from prehydrate.integrations._app import GraphLifecycle
from prehydrate.integrations._run import DEFAULT_TENANT, PrehydrateContext, Prehydrator, bind_context, unbind_context

__all__ = ["PrehydrateMiddleware", "PrehydrateState"]

RUN_KEY = "prehydrate_run"
"""Agent state key holding the run's token (the hooks of one run find its context by it)."""


class PrehydrateState(AgentState[Any]):
    """The agent state plus the prehydrate run token."""

    prehydrate_run: NotRequired[str]


def agent_dag(name: str = "create_agent") -> ph.WorkflowDAG:
    """The shape every ``create_agent`` graph has: the model and its tool node calling each other."""
    return ph.WorkflowDAG.from_edges(
        [("__start__", "model"), ("model", "tools", True), ("model", "__end__", True), ("tools", "model")],
        tool_nodes=["tools"],
        name=name,
    )


class PrehydrateMiddleware(AgentMiddleware[PrehydrateState, Any]):
    """Prehydrate around a ``create_agent`` run (see the module docstring)."""

    state_schema = PrehydrateState

    def __init__(
        self,
        engine: ph.Engine,
        *,
        tenant: str = DEFAULT_TENANT,
        name: str = "create_agent",
        run_ttl_s: float = 600.0,
        session_ttl_s: float = 1800.0,
    ) -> None:
        """Attach to ``engine``.

        Args:
            engine: the engine (started on the first run if it is not yet).
            tenant: the tenant of runs whose config and context name none.
            name: what this agent's learned counts are kept under.
            run_ttl_s: a run paused (``interrupt()``) or abandoned keeps its turn this long.
            session_ttl_s: how long a thread's session stays open after its last run.
        """
        super().__init__()
        self.engine = engine
        self.lifecycle = GraphLifecycle(
            Prehydrator(engine, dag=agent_dag(name)),
            tenant=tenant,
            pause_ttl_s=run_ttl_s,
            session_ttl_s=session_ttl_s,
        )
        self.run_ttl_s = run_ttl_s
        self._runs: dict[str, tuple[PrehydrateContext, float]] = {}

    def _context(self, state: Any) -> PrehydrateContext | None:
        token = state.get(RUN_KEY) if isinstance(state, dict) else None
        found = self._runs.get(token) if isinstance(token, str) else None
        return found[0] if found is not None else None

    async def _sweep(self) -> None:
        """Bail out of runs that never reached ``after_agent`` (failed, or paused past the TTL)."""
        now = time.monotonic()
        for token, (ctx, opened) in list(self._runs.items()):
            if now - opened > self.run_ttl_s:
                del self._runs[token]
                await self.lifecycle.end(ctx, ())

    async def abefore_agent(self, state: PrehydrateState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Open the turn: predict from the start of the agent and launch prefetches."""
        await self._sweep()

        async def nowhere() -> str | None:
            return None

        ctx = await self.lifecycle.begin(state, get_config(), runtime.context, nowhere)
        token = uuid4().hex
        self._runs[token] = (ctx, time.monotonic())
        return {RUN_KEY: token}

    async def abefore_model(self, state: PrehydrateState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Re-aim the prediction at the model call about to think."""
        ctx = self._context(state)
        if ctx is not None:
            ctx.node_started("model")
        return None

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Run the tool call inside the run's context, so ``request_context`` serves from its turn."""
        ctx = self._context(request.state)
        if ctx is None:
            return await handler(request)
        token = bind_context(ctx)
        try:
            return await handler(request)
        finally:
            unbind_context(token)

    async def aafter_agent(self, state: PrehydrateState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The bailout: end the turn (the agent answered)."""
        token = state.get(RUN_KEY)
        found = self._runs.pop(token, None) if isinstance(token, str) else None
        if found is not None:
            await self.lifecycle.end(found[0], ())
        return None

    async def aclose(self) -> None:
        """Bail out of open runs and close every thread's session (they are recorded)."""
        for ctx, _ in list(self._runs.values()):
            await ctx.aclose()
        self._runs.clear()
        await self.lifecycle.aclose()
