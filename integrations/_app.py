"""The implicit lifecycle: ``app = prehydrate_graph(app, engine)`` and ``ainvoke`` stays as it was.

A prehydrated graph is the compiled app itself (same class, same checkpointer, same ``get_graph``)
with its run entry points (``astream``, hence ``ainvoke``; ``stream``, hence ``invoke``) opening and
closing a prehydrate turn around the run:

* **session** = the run's ``thread_id`` (``config["configurable"]["thread_id"]``); runs of one
  thread are turns of one conversation. A run without a thread id is a session of its own.
* **tenant** = ``configurable["tenant"]``, else a ``tenant`` attribute or key of the run's
  ``context``, else the ``tenant=`` given to :func:`prehydrate_graph`, else ``"default"``.
* **query** = the last human message of the input (``messages``); **task type** =
  ``configurable["task_type"]`` when given.
* The turn opens before the first node runs (predicting from START), follows node starts (nested
  ones too) and ends when the run ends: the bailout.
* **Interrupts**: a run that stops at ``interrupt()`` keeps its turn and prefetches while the thread
  is paused (at most ``pause_ttl_s``); the resuming run (``Command(resume=...)``) continues that turn
  and predicts again from the node it resumes at.
* A thread's session is closed (and recorded in the TraceStore) after ``session_ttl_s`` without a
  run, or by ``await app.prehydrate.aclose()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from uuid import uuid4

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

import prehydrate as ph
from prehydrate.integrations._graph import qualified_node
from prehydrate.integrations._run import (
    DEFAULT_TENANT,
    PrehydrateCallbackHandler,
    PrehydrateContext,
    Prehydrator,
    bind_context,
    current_context,
    unbind_context,
)

__all__ = ["GraphLifecycle", "PrehydratedGraph", "last_human_message", "prehydrate_graph"]


def last_human_message(value: Any) -> str:
    """The text of the last human message in a graph input (``messages`` list, a list, or a string)."""
    if isinstance(value, str):
        return value
    messages = value.get("messages") if isinstance(value, Mapping) else value
    if isinstance(messages, BaseMessage | tuple | Mapping):
        messages = [messages]
    if not isinstance(messages, list | tuple):
        return ""
    for m in reversed(messages):
        if isinstance(m, BaseMessage) and m.type == "human":
            return m.text
        if isinstance(m, tuple) and len(m) == 2 and m[0] in ("user", "human") and isinstance(m[1], str):
            return m[1]
        if isinstance(m, Mapping) and m.get("role") in ("user", "human") and isinstance(m.get("content"), str):
            return str(m["content"])
    return ""


def _tenant(configurable: Mapping[str, Any], context: Any, default: str) -> str:
    tenant = configurable.get("tenant")
    if tenant is None and context is not None:
        tenant = getattr(context, "tenant", None)
        if tenant is None and isinstance(context, Mapping):
            tenant = context.get("tenant")
    return str(tenant) if tenant else default


class _SyncFollower(BaseCallbackHandler):
    """Node starts of a synchronous run, handed to the portal loop where the turn lives."""

    raise_error = False

    def __init__(self, ctx: PrehydrateContext, loop: asyncio.AbstractEventLoop) -> None:
        self.ctx, self.loop = ctx, loop

    @property
    def prehydrate_context(self) -> PrehydrateContext:
        """The run's context (found through the config's callbacks, see ``context_in_config``)."""
        return self.ctx

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        if kw.get("parent_run_id") is not None and isinstance(node, str) and kw.get("name") == node:
            qualified = qualified_node(metadata)
            if qualified is not None:
                self.loop.call_soon_threadsafe(self.ctx.node_started, qualified)


class GraphLifecycle:
    """Opens, pauses and closes the turns of one prehydrated graph's runs (see the module docstring)."""

    def __init__(
        self, prehydrator: Prehydrator, *, tenant: str = DEFAULT_TENANT, pause_ttl_s: float, session_ttl_s: float
    ) -> None:
        self.prehydrator = prehydrator
        self.tenant = tenant
        self.pause_ttl_s = pause_ttl_s
        self.session_ttl_s = session_ttl_s
        self._paused: dict[tuple[str, str], PrehydrateContext] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reports: dict[tuple[str, str], ph.TurnReport] = {}
        """The last report of each thread (tenant, thread id) whose session is still open."""

    @property
    def engine(self) -> ph.Engine:
        """The engine behind the graph."""
        return self.prehydrator.engine

    async def begin(self, input: Any, config: RunnableConfig | None, context: Any, resume_at: Any) -> PrehydrateContext:
        """Open (or, when resuming a paused thread, continue) the run's turn.

        ``resume_at`` is an awaitable giving the node a paused thread resumes at (read only then).
        """
        configurable = (config or {}).get("configurable") or {}
        thread = configurable.get("thread_id")
        tenant = _tenant(configurable, context, self.tenant)
        key = (tenant, str(thread)) if thread is not None else None
        resuming = key is not None and (input is None or type(input).__name__ == "Command")
        if key is not None:
            self._cancel_timer(key)
            paused = self._paused.pop(key, None)
            if paused is not None:
                if resuming:
                    paused.resume(await resume_at())
                    return paused
                await self._close(paused)
        task_type = configurable.get("task_type")
        ctx = self.prehydrator.context(
            key[1] if key is not None else f"run-{uuid4().hex[:12]}",
            tenant=tenant,
            query=last_human_message(input),
            task_type=task_type if isinstance(task_type, str) else None,
            keep_session=key is not None,
        )
        await ctx.start(await resume_at() if resuming else None)  # a late resume predicts from where it resumes
        return ctx

    async def end(self, ctx: PrehydrateContext, paused_at: tuple[str, ...]) -> None:
        """The run ended: pause the turn when the thread waits at an interrupt, else bail out."""
        key = (ctx.tenant, ctx.session_id) if ctx.keep_session else None
        if key is not None and paused_at and not ctx.closed:
            ctx.paused = True
            self._paused[key] = ctx
            self._schedule(key, self.pause_ttl_s)
            return
        report = await ctx.aclose()
        if key is not None:
            if report is not None:
                self.reports[key] = report
            self._schedule(key, self.session_ttl_s)

    def _schedule(self, key: tuple[str, str], delay: float) -> None:
        """Close the thread's paused turn and idle session after ``delay`` seconds without a run."""
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._expire, key)

    def _cancel_timer(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._expire_now(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire_now(self, key: tuple[str, str]) -> None:
        paused = self._paused.pop(key, None)
        if paused is not None:
            await self._close(paused)
        self.reports.pop(key, None)
        await self.prehydrator.end_session(key[1], tenant=key[0])

    async def _close(self, ctx: PrehydrateContext) -> None:
        ctx.keep_session = True  # the thread goes on: only its turn ends here
        await ctx.aclose()

    async def aclose(self) -> None:
        """Bail out of paused turns and close every thread's session (they are recorded)."""
        for key in list(self._timers):
            self._cancel_timer(key)
        for ctx in list(self._paused.values()):
            await self._close(ctx)
        self._paused.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.reports.clear()
        await self.prehydrator.aclose()

    def close(self) -> None:
        """The synchronous twin of :meth:`aclose` for graphs run with ``invoke``: also closes the engine.

        The engine of synchronous runs lives on the prehydrator's background loop, so it is closed
        there, and the loop is stopped.
        """

        async def close_all() -> None:
            await self.aclose()
            await self.engine.aclose()

        self.prehydrator.portal.call(close_all())
        self.prehydrator.close_portal()


class PrehydratedGraph:
    """Mixed into the compiled app's own class by :func:`prehydrate_graph`; ``prehydrate`` is its lifecycle."""

    prehydrate: GraphLifecycle

    def __init__(self, *args: Any, prehydrate: GraphLifecycle, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prehydrate = prehydrate

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        """LangGraph's ``astream`` (so also ``ainvoke``) inside a prehydrate turn."""
        parent: Any = super()
        if current_context() is not None:  # running as a subgraph of a prehydrated run: that run owns the turn
            async for chunk in parent.astream(input, config, **kwargs):
                yield chunk
            return
        life = self.prehydrate

        async def resume_at() -> str | None:
            return _first(await parent.aget_state(config))

        ctx = await life.begin(input, config, kwargs.get("context"), resume_at)
        token = bind_context(ctx)
        paused: tuple[str, ...] = ()
        try:
            run_config = merge_configs(config, {"callbacks": [PrehydrateCallbackHandler(ctx, owns_run=False)]})
            async for chunk in parent.astream(input, run_config, **kwargs):
                yield chunk
            paused = await _paused_at(parent, config)
        finally:
            unbind_context(token)
            await life.end(ctx, paused)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """LangGraph's ``stream`` (so also ``invoke``); prehydrate runs on a background loop meanwhile."""
        parent: Any = super()
        if current_context() is not None:
            yield from parent.stream(input, config, **kwargs)
            return
        life = self.prehydrate
        portal = life.prehydrator.portal

        async def resume_at() -> str | None:
            return _first(await asyncio.to_thread(parent.get_state, config))

        ctx = portal.call(life.begin(input, config, kwargs.get("context"), resume_at))
        token = bind_context(ctx)
        paused: tuple[str, ...] = ()
        try:
            run_config = merge_configs(config, {"callbacks": [_SyncFollower(ctx, portal.loop)]})
            yield from parent.stream(input, run_config, **kwargs)
            paused = _next_of(parent, config)
        finally:
            unbind_context(token)
            portal.call(life.end(ctx, paused))


def _first(snapshot: Any) -> str | None:
    nxt = getattr(snapshot, "next", ())
    return str(nxt[0]) if nxt else None


async def _paused_at(graph: Any, config: RunnableConfig | None) -> tuple[str, ...]:
    """The nodes a thread waits to run after this run (non-empty at an interrupt); () without a checkpointer."""
    if not ((config or {}).get("configurable") or {}).get("thread_id"):
        return ()
    try:
        snapshot = await graph.aget_state(config)
    except ValueError:  # no checkpointer: a run cannot pause
        return ()
    return tuple(getattr(snapshot, "next", ()))


def _next_of(graph: Any, config: RunnableConfig | None) -> tuple[str, ...]:
    if not ((config or {}).get("configurable") or {}).get("thread_id"):
        return ()
    try:
        snapshot = graph.get_state(config)
    except ValueError:
        return ()
    return tuple(getattr(snapshot, "next", ()))


_CLASSES: dict[type[Any], type[Any]] = {}


def prehydrate_graph(
    app: Any,
    engine: ph.Engine,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str = "",
    pause_ttl_s: float = 600.0,
    session_ttl_s: float = 1800.0,
) -> Any:
    """The compiled ``app`` with prehydrate around every run; call it exactly as before.

    Args:
        app: what ``StateGraph.compile()`` (or ``create_agent``) returned.
        engine: the engine; started on the first run if it is not yet. Several graphs may share it.
        tenant: the tenant of runs whose config and context name none.
        name: what the graph's learned counts are kept under (default: unique to the graph).
        pause_ttl_s: how long a thread paused at ``interrupt()`` keeps its turn and prefetches.
        session_ttl_s: how long a thread's session stays open after its last run.

    Returns:
        An instance of the app's own class (with :class:`PrehydratedGraph` mixed in), sharing its
        nodes, checkpointer and store; ``.prehydrate`` is its :class:`GraphLifecycle`.

    Example:
        >>> app = prehydrate_graph(builder.compile(checkpointer=InMemorySaver()), engine)  # doctest: +SKIP
        >>> await app.ainvoke({"messages": [("user", q)]}, {"configurable": {"thread_id": "t-1"}})  # doctest: +SKIP
    """
    base = type(app)
    if issubclass(base, PrehydratedGraph):
        raise ph.ConfigError("prehydrate_graph() was given a graph that is already prehydrated")
    if not callable(getattr(app, "get_graph", None)) or not callable(getattr(app, "copy", None)):
        raise ph.ConfigError(
            f"prehydrate_graph() needs the compiled app (what StateGraph.compile() returns), got {base.__name__}"
        )
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = type(f"Prehydrated{base.__name__}", (PrehydratedGraph, base), {"__module__": __name__})
    life = GraphLifecycle(
        Prehydrator(engine, app, name=name), tenant=tenant, pause_ttl_s=pause_ttl_s, session_ttl_s=session_ttl_s
    )
    attrs = {k: v for k, v in app.__dict__.items() if k != "__orig_class__"}
    return cls(**attrs, prehydrate=life)
