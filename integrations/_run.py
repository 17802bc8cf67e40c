"""One graph run as one prehydrate turn: who opens it, who finds it, and who bails out.

A :class:`Prehydrator` owns, for one engine and one graph, the sessions of the graph's threads and
the graph's DAG (an input of each prediction: the engine's predictor is never replaced, so several
graphs share one engine). A :class:`PrehydrateContext` is one run's handle, shared by whatever opens
the turn (the prehydrated graph, the entry node, the first tool call, the agent middleware), the
``request_context`` tool, the node-start callback and the bailout.

Code inside a run finds its context, in order: the context variable the prehydrated graph and the
middleware set (:func:`current_context`), then LangGraph's run context (``context=ctx``, or a
``prehydrate`` attribute or key of the user's own context).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableConfig, RunnableLambda

import prehydrate as ph
from prehydrate.integrations._graph import qualified_node, workflow_dag

if TYPE_CHECKING:
    from prehydrate.integrations._sync import Portal

__all__ = [
    "PrehydrateCallbackHandler",
    "PrehydrateContext",
    "Prehydrator",
    "bind_context",
    "context_of",
    "context_in_config",
    "current_context",
    "find_context",
    "prehydrate_entry",
    "unbind_context",
]

logger = logging.getLogger("prehydrate.integrations.langgraph")

DEFAULT_TENANT = ph.Scope().tenant
"""The tenant of runs that name none (the core's default)."""

_CURRENT: ContextVar[PrehydrateContext | None] = ContextVar("prehydrate_run", default=None)


def current_context() -> PrehydrateContext | None:
    """The context of the run this code runs in, when a prehydrated graph or the middleware opened it."""
    return _CURRENT.get()


def bind_context(ctx: PrehydrateContext) -> Token[PrehydrateContext | None]:
    """Make ``ctx`` the current run's context for this task and the tasks it starts."""
    return _CURRENT.set(ctx)


def unbind_context(token: Token[PrehydrateContext | None]) -> None:
    """Undo :func:`bind_context` (a no-op when finalised in another context, e.g. an abandoned generator)."""
    try:
        _CURRENT.reset(token)
    except ValueError:
        pass


def _node_name(node: str | None) -> str | None:
    """A node's name as the core keeps it in a graph (:class:`~prehydrate.WorkflowDAG`) and a turn:
    lone surrogates made U+FFFD, so the run's visits and calls match the graph's nodes."""
    return ph.clean_text(node) if isinstance(node, str) else node


class PrehydrateContext:
    """The per-run handle shared by the entry node, the ``request_context`` tool and the bailout.

    Pass it as LangGraph's run context on the explicit path (``Prehydrator.run``). If the graph
    already has its own context type, give that type a ``prehydrate`` attribute (or key) holding
    this object: :func:`context_of` finds it there. A graph wrapped by ``prehydrate_graph`` needs
    neither: it opens a context per run itself.
    """

    def __init__(
        self,
        prehydrator: Prehydrator,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        query: str = "",
        task_type: str | None = None,
        tags: Iterable[str] = (),
        keep_session: bool = False,
    ) -> None:
        self.prehydrator = prehydrator
        self.session_id = session_id
        self.tenant = tenant
        self.query = query
        self.task_type = task_type
        self.tags = tuple(tags)
        self.keep_session = keep_session
        self.session: ph.Session | None = None
        self.turn: ph.Turn | None = None
        self.report: ph.TurnReport | None = None
        self.visited: list[str] = []
        """Nodes seen in this run, in order (entry node, nodes that called the tool, callback starts)."""
        self.closed = False
        self.paused = False
        """True while the thread waits at an ``interrupt()``: the turn and its prefetches are kept."""
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PrehydrateContext(session={self.session_id!r}, tenant={self.tenant!r}, closed={self.closed})"

    @property
    def engine(self) -> ph.Engine:
        """The engine behind the run."""
        return self.prehydrator.engine

    @property
    def callbacks(self) -> list[PrehydrateCallbackHandler]:
        """Callbacks that follow node starts (pass as ``config={"callbacks": ctx.callbacks}``).

        Optional with :meth:`Prehydrator.run`, which owns the bailout: they let the predictor re-aim
        at each node as it starts, so its sections are fetched while the node's model thinks.
        """
        return [PrehydrateCallbackHandler(self, owns_run=False)]

    def visit(self, node: str | None) -> None:
        """Note that ``node`` ran in this run (used to learn branch probabilities)."""
        if node and node not in self.visited:
            self.visited.append(node)

    async def start(self, node: str | None = None) -> ph.Turn:
        """Open the turn if it is not open yet: predict from ``node`` and launch prefetches.

        Returns at once; hydration runs in the background until the run ends.

        Raises:
            InputError: the run is already over.
        """
        async with self._lock:
            if self.closed:
                raise ph.InputError(f"the prehydrate run of session {self.session_id!r} is already over")
            node = _node_name(node)
            self.visit(node)
            if self.turn is None:
                session = await self.prehydrator.open_session(self)
                self.session = session
                turn = session.turn(query=self.query, task_type=self.task_type, tags=self.tags, node=node)
                turn.workflow = self.prehydrator.dag
                await turn.start()
                self.turn = turn
            return self.turn

    def node_started(self, node: str) -> None:
        """A node began: remember it and re-aim the prediction at it (when the turn is open)."""
        node = ph.clean_text(node)  # as the graph's node names are (see WorkflowDAG)
        self.visit(node)
        dag = self.prehydrator.dag
        if self.turn is not None and not self.closed and (dag is None or node in dag.nodes):
            self.turn.node = node
            self.turn.repredict()

    def resume(self, node: str | None) -> None:
        """The paused thread runs again from ``node``: keep the turn and predict from there."""
        self.paused = False
        if node is not None:
            self.node_started(node)

    async def request_context(
        self,
        key: str | None = None,
        *,
        query: str | None = None,
        tool_call_id: str | None = None,
        node: str | None = None,
    ) -> ph.ContextResult:
        """``Turn.request_context`` on this run's turn, recording the calling node.

        Raises:
            InputError: the run is already over (or the errors of :meth:`prehydrate.Turn.request_context`).
        """
        if self.closed:
            raise ph.InputError(f"the prehydrate run of session {self.session_id!r} is already over")
        node = _node_name(node)
        turn = self.turn if self.turn is not None else await self.start(node)
        if node is not None:
            self.visit(node)
            turn.node = node  # so the re-prediction after this call starts from the calling node
        return await turn.request_context(key, query=query, tool_call_id=tool_call_id, node=node)

    async def aclose(self) -> ph.TurnReport | None:
        """The bailout: end the turn (cancel and discard unused speculation), learn, release the session.

        Safe to call more than once and from a cancelled task; returns the turn's report (None when
        the run never opened a turn).
        """
        async with self._lock:
            if self.closed:
                return self.report
            self.closed = True
            self.paused = False
            turn = self.turn
            try:
                if turn is not None:
                    self.report = await turn.end()
                    self.prehydrator.learn(turn, self.visited)
            finally:
                if self.session is not None and not self.keep_session:
                    await self.prehydrator.close_session(self.session)
            return self.report


def context_of(obj: object) -> PrehydrateContext:
    """Find the :class:`PrehydrateContext` in a run context (itself, ``.prehydrate`` or ``["prehydrate"]``).

    Raises:
        ConfigError: no prehydrate context is there (with how to pass one).
    """
    if isinstance(obj, PrehydrateContext):
        return obj
    inner = getattr(obj, "prehydrate", None)
    if inner is None and isinstance(obj, Mapping):
        inner = obj.get("prehydrate")
    if isinstance(inner, PrehydrateContext):
        return inner
    raise ph.ConfigError(
        "no prehydrate run here: wrap the compiled graph with prehydrate_graph(app, engine), or build it "
        "with StateGraph(..., context_schema=PrehydrateContext) and call app.ainvoke(..., context=ctx) "
        "inside `async with prehydrator.run(...) as ctx`" + (f" (got context {type(obj).__name__})" if obj else "")
    )


def context_in_config(config: RunnableConfig | None) -> PrehydrateContext | None:
    """The context a prehydrated run put in its config, found through the node-start callback it added.

    Callbacks travel with the config into every node, tool and subgraph, even where a server runs
    each step of the stream in a task of its own (LangGraph Platform does), which a context
    variable set when the run started would not reach.
    """
    callbacks = (config or {}).get("callbacks")
    handlers = getattr(callbacks, "handlers", callbacks)
    if isinstance(handlers, list):
        for h in handlers:
            found = getattr(h, "prehydrate_context", None)
            if isinstance(found, PrehydrateContext):
                return found
    return None


def find_context(config: RunnableConfig | None = None) -> PrehydrateContext:
    """The context of the current run: the context variable, the run's config, then LangGraph's run context."""
    found = current_context() or context_in_config(config)
    if found is not None:
        return found
    return context_of(runtime_context())


def runtime_context() -> Any:
    """The LangGraph run context of the current call, or None outside a graph run."""
    try:
        from langgraph.runtime import get_runtime

        runtime = get_runtime()
    except (ImportError, RuntimeError, KeyError):
        return None
    return getattr(runtime, "context", None) if runtime is not None else None


async def _entry(state: Any, config: RunnableConfig) -> dict[str, Any]:
    ctx = find_context(config)
    await ctx.start(node=qualified_node(config.get("metadata")))
    return {}


def _entry_sync(state: Any, config: RunnableConfig) -> dict[str, Any]:
    ctx = find_context(config)
    ctx.prehydrator.portal.call(ctx.start(node=qualified_node(config.get("metadata"))))
    return {}


prehydrate_entry: RunnableLambda[Any, dict[str, Any]] = RunnableLambda(_entry_sync, afunc=_entry, name="prehydrate")
"""The entry node of the explicit path: add it right after START (a prehydrated graph needs none).

It predicts from the graph and launches prefetches, then returns at once with no state update;
hydration continues in the background while the rest of the graph runs, and the end of the run
bails out of whatever was not used. Works under ``ainvoke`` and ``invoke``.

Example:
    >>> g.add_node("prehydrate", prehydrate_entry)  # doctest: +SKIP
    >>> g.add_edge(START, "prehydrate")  # doctest: +SKIP
"""


class PrehydrateCallbackHandler(AsyncCallbackHandler):
    """Follows node starts (nested ones too); when it owns the run, bails out when the root run ends.

    Pass it with the context: ``await app.ainvoke(x, context=h.context, config={"callbacks": [h]})``.
    A handler serves one run. Node starts re-aim the prediction at the node that starts, so its
    likely sections are fetched while its model is thinking.
    """

    raise_error = False
    run_inline = True

    def __init__(self, context: PrehydrateContext, *, owns_run: bool = True) -> None:
        """Watch one run.

        Args:
            context: the run's context.
            owns_run: bail out when the root run ends (False when something else owns the run).
        """
        super().__init__()
        self.context = context
        self.owns_run = owns_run
        self.root: UUID | None = None

    @property
    def prehydrate_context(self) -> PrehydrateContext:
        """The run's context (how code inside the run finds it through the config's callbacks)."""
        return self.context

    async def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is None:
            if self.root is None:
                self.root = run_id
            return
        node = (metadata or {}).get("langgraph_node")
        if isinstance(node, str) and kwargs.get("name") == node:
            qualified = qualified_node(metadata)
            if qualified is not None:
                self.context.node_started(qualified)

    async def _finished(self, run_id: UUID) -> None:
        if run_id == self.root and self.owns_run:
            await self.context.aclose()

    async def on_chain_end(
        self, outputs: dict[str, Any] | Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        await self._finished(run_id)

    async def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        await self._finished(run_id)


class Prehydrator:
    """Connects an :class:`~prehydrate.Engine` to a compiled LangGraph app.

    It reads the app's DAG once (:func:`workflow_dag`, subgraphs expanded) and gives it to every turn
    it opens; the engine's predictor is left as it is (the default predictor's workflow signal reads
    the DAG from the turn), so several graphs can share one engine. Each run is one turn; sessions
    are keyed by tenant and id.

    Example:
        >>> prehydrator = Prehydrator(engine, app)  # doctest: +SKIP
        >>> async with prehydrator.run("conv-1", tenant="acme", query=q) as ctx:  # doctest: +SKIP
        ...     await app.ainvoke({"messages": [("user", q)]}, context=ctx)
    """

    def __init__(
        self, engine: ph.Engine, graph: Any = None, *, dag: ph.WorkflowDAG | None = None, name: str = ""
    ) -> None:
        """Attach to ``engine``.

        Args:
            engine: the engine (its sources, cache, predictor, policy and traces).
            graph: the compiled app; its DAG is read with :func:`workflow_dag`.
            dag: a DAG built by hand instead of ``graph``.
            name: what the graph's learned counts are kept under (default: unique to the graph).
        """
        self.engine = engine
        if dag is None and graph is not None:
            dag = workflow_dag(graph, name=name)
        self.dag = dag
        if not isinstance(engine.predictor, ph.TurnObserver):
            logger.info(
                "prehydrate: the engine's predictor %s has no graph-aware signal; ph.default_predictor() has one",
                type(engine.predictor).__name__,
            )
        self._sessions: dict[tuple[str, str], ph.Session] = {}
        self._start_lock: asyncio.Lock | None = None
        self._portal: Portal | None = None

    @property
    def portal(self) -> Portal:
        """The background event loop that serves synchronous runs (``invoke``), started on first use."""
        if self._portal is None:
            from prehydrate.integrations._sync import Portal

            self._portal = Portal()
        return self._portal

    def context(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        query: str = "",
        task_type: str | None = None,
        tags: Iterable[str] = (),
        keep_session: bool = False,
    ) -> PrehydrateContext:
        """A run context not yet started (the entry node or the first tool call starts it).

        ``keep_session=True`` keeps the session open after the run, so the next run with the same
        ``session_id`` is the next turn of one conversation (close it with :meth:`end_session`).
        """
        return PrehydrateContext(
            self,
            session_id,
            tenant=tenant,
            query=query,
            task_type=task_type,
            tags=tags,
            keep_session=keep_session,
        )

    @asynccontextmanager
    async def run(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        query: str = "",
        task_type: str | None = None,
        tags: Iterable[str] = (),
        keep_session: bool = False,
    ) -> AsyncIterator[PrehydrateContext]:
        """Own one run: leaving the block bails out, whether the run succeeded, failed or was cancelled."""
        ctx = self.context(
            session_id, tenant=tenant, query=query, task_type=task_type, tags=tags, keep_session=keep_session
        )
        try:
            yield ctx
        finally:
            await ctx.aclose()

    def handler(
        self,
        session_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        query: str = "",
        task_type: str | None = None,
        tags: Iterable[str] = (),
        keep_session: bool = False,
    ) -> PrehydrateCallbackHandler:
        """A callback handler owning one run (pass ``handler.context`` as the run's context)."""
        ctx = self.context(
            session_id, tenant=tenant, query=query, task_type=task_type, tags=tags, keep_session=keep_session
        )
        return PrehydrateCallbackHandler(ctx)

    async def open_session(self, ctx: PrehydrateContext) -> ph.Session:
        """The open session of ``ctx``'s tenant and id, or a new one (starting the engine on first use).

        Sessions live in the engine's registry (``engine.conversations``, keyed by tenant and id), so a
        conversation kept by one front end is the same conversation for every other.
        """
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await self.engine.start()  # idempotent: a graph run may be the engine's first use
        session = self.engine.conversations.open(
            ctx.session_id, tenant=ctx.tenant, task_type=ctx.task_type, tags=ctx.tags
        )
        self._sessions[ctx.tenant, ctx.session_id] = session
        return session

    async def close_session(self, session: ph.Session) -> None:
        """Close ``session`` (recording it in the TraceStore) and forget it."""
        self._sessions.pop((session.tenant, session.session_id), None)
        await self.engine.conversations.close(session)

    def learn(self, turn: ph.Turn, visited: Iterable[str]) -> None:
        """Tell the predictor of the run's tenant about the finished run (when it learns online)."""
        predictor = self.engine.predictor
        if not isinstance(predictor, ph.TurnObserver):
            return
        finished = ph.FinishedTurn(
            request=turn.request, calls=tuple(turn.calls), workflow=self.dag, visited=tuple(visited)
        )
        try:  # to the tenant's own predictor: one tenant's runs never shape another's prefetches
            self.engine.learning.observe(turn.scope.tenant, finished)
        except Exception:  # learning must never break a run that already finished
            logger.exception("prehydrate: learning from the finished run failed")

    async def end_session(self, session_id: str, *, tenant: str = DEFAULT_TENANT) -> None:
        """Close a kept session (it is recorded in the TraceStore)."""
        session = self.engine.conversations.get(session_id, tenant=tenant)
        if session is not None:
            await self.close_session(session)

    async def aclose(self) -> None:
        """Close every kept session."""
        for session in list(self._sessions.values()):
            await self.close_session(session)

    def close_portal(self) -> None:
        """Stop the background loop of synchronous runs (call it from outside that loop)."""
        if self._portal is not None:
            self._portal.close()
            self._portal = None
