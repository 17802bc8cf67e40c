"""One graph run as one prehydrate turn: the entry node starts it, the end of the run bails out.

LangGraph has no graph start or end hook, so the lifecycle is owned in two ways:

* ``async with prehydrator.run(session_id, tenant=..., query=...) as ctx`` around ``ainvoke``
  (the robust path, also right for subgraphs and streaming): leaving the block is the bailout.
* ``handler = prehydrator.handler(session_id, ...)`` passed as a LangChain callback: it watches the
  root run and bails out when the run ends, fails or is cancelled (the convenience path for a plain
  ``ainvoke``). It also follows nodes as they start, which lets the predictor re-aim at each node.

Either way the :class:`PrehydrateContext` travels as the run's LangGraph context
(``StateGraph(..., context_schema=PrehydrateContext)`` and ``ainvoke(..., context=ctx)``), where the
entry node and the ``request_context`` tool find the shared session and turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

import prehydrate as ph
from prehydrate.integrations._workflow import WorkflowDAG, WorkflowPredictor

__all__ = [
    "PrehydrateCallbackHandler",
    "PrehydrateContext",
    "Prehydrator",
    "context_of",
    "prehydrate_entry",
]

logger = logging.getLogger("prehydrate.integrations.langgraph")

NODE_KEY = "langgraph_node"
"""Config metadata key under which LangGraph names the running node."""


def _repredict(turn: ph.Turn, node: str | None) -> None:
    """Point the turn at ``node`` and queue what the predictor expects from there.

    ``Turn.repredict`` is the turn's own predict-and-schedule step (the one ``request_context``
    runs after a call), so the prefetcher's limits, budget and de-duplication apply unchanged.
    """
    turn.node = node
    turn.repredict()


class PrehydrateContext:
    """The per-run handle shared by the entry node, the ``request_context`` tool and the bailout.

    Pass it as LangGraph's run context. If the graph already has its own context type, give that
    type a ``prehydrate`` attribute (or key) holding this object: :func:`context_of` finds it there.
    """

    def __init__(
        self,
        prehydrator: Prehydrator,
        session_id: str,
        *,
        tenant: str = "default",
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
            self.visit(node)
            if self.turn is None:
                session = await self.prehydrator._session(self)
                self.session = session
                turn = session.turn(query=self.query, task_type=self.task_type, tags=self.tags, node=node)
                await turn.start()
                self.turn = turn
            return self.turn

    def node_started(self, node: str) -> None:
        """A node began: remember it and re-aim the prediction at it (when the turn is open)."""
        self.visit(node)
        if self.turn is not None and not self.closed:
            _repredict(self.turn, node)

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
        turn = self.turn if self.turn is not None else await self.start(node)
        if node is not None:
            self.visit(node)
            turn.node = node  # so the re-prediction after this call starts from the calling node
        return await turn.request_context(key, query=query, tool_call_id=tool_call_id, node=node)

    async def aclose(self) -> ph.TurnReport | None:
        """The bailout: end the turn (cancel and discard unused speculation), learn, close the session.

        Safe to call more than once and from a cancelled task; returns the turn's report (None when
        the run never opened a turn).
        """
        async with self._lock:
            if self.closed:
                return self.report
            self.closed = True
            turn = self.turn
            try:
                if turn is not None:
                    self.report = await turn.end()
                    self.prehydrator._learn(turn, self.visited)
            finally:
                if self.session is not None and not self.keep_session:
                    await self.prehydrator._close_session(self.session)
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
        "no prehydrate context in this run: build the graph with StateGraph(..., context_schema=PrehydrateContext) "
        "and call app.ainvoke(..., context=ctx) with ctx from `async with prehydrator.run(...) as ctx`"
        + (f" (got context {type(obj).__name__})" if obj is not None else "")
    )


async def prehydrate_entry(state: Any, runtime: Runtime[Any], config: RunnableConfig) -> dict[str, Any]:
    """The entry node: add it right after START. It predicts from the graph and launches prefetches.

    It returns at once with no state update; hydration continues in the background while the rest
    of the graph runs, and the end of the run bails out of whatever was not used.

    Example:
        >>> g.add_node("prehydrate", prehydrate_entry)  # doctest: +SKIP
        >>> g.add_edge(START, "prehydrate")  # doctest: +SKIP
    """
    ctx = context_of(runtime.context)
    node = config.get("metadata", {}).get(NODE_KEY)
    await ctx.start(node=node if isinstance(node, str) else None)
    return {}


class PrehydrateCallbackHandler(AsyncCallbackHandler):
    """Bails out when the root run ends (success, error or cancellation); follows node starts.

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
            owns_run: bail out when the root run ends (False when ``Prehydrator.run`` owns it).
        """
        super().__init__()
        self.context = context
        self.owns_run = owns_run
        self.root: UUID | None = None

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
        if parent_run_id == self.root and metadata:
            node = metadata.get(NODE_KEY)
            if isinstance(node, str) and kwargs.get("name") == node:
                self.context.node_started(node)

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

    It reads the app's DAG once and hands it to the engine's :class:`WorkflowPredictor` (an engine
    with another predictor gets it wrapped as the workflow predictor's fallback). Each run is one turn.

    Example:
        >>> prehydrator = Prehydrator(engine, app)  # doctest: +SKIP
        >>> async with prehydrator.run("conv-1", tenant="acme", query=q) as ctx:  # doctest: +SKIP
        ...     await app.ainvoke({"messages": [("user", q)]}, context=ctx)
    """

    def __init__(self, engine: ph.Engine, graph: Any = None, *, dag: WorkflowDAG | None = None) -> None:
        """Attach to ``engine``.

        Args:
            engine: the engine (its sources, cache, policy and traces).
            graph: the compiled app; its DAG is read with :meth:`WorkflowDAG.from_graph`.
            dag: a DAG built by hand instead of ``graph``.
        """
        self.engine = engine
        if dag is None and graph is not None:
            dag = WorkflowDAG.from_graph(graph)
        self.dag = dag
        predictor = engine.predictor
        if not isinstance(predictor, WorkflowPredictor):
            predictor = WorkflowPredictor(dag, fallback=predictor)
            engine.predictor = predictor
            logger.info("prehydrate: engine predictor wrapped as the fallback of a WorkflowPredictor")
        elif dag is not None:
            predictor.attach(dag)
        self.predictor: WorkflowPredictor = predictor
        self._sessions: dict[str, ph.Session] = {}

    def context(
        self,
        session_id: str,
        *,
        tenant: str = "default",
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
        tenant: str = "default",
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
        tenant: str = "default",
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

    async def _session(self, ctx: PrehydrateContext) -> ph.Session:
        session = self._sessions.get(ctx.session_id)
        if session is not None and not session.closed:
            if session.tenant != ctx.tenant:
                raise ph.InputError(f"session {ctx.session_id!r} belongs to another tenant")
            return session
        session = self.engine.session(ctx.session_id, tenant=ctx.tenant, task_type=ctx.task_type, tags=ctx.tags)
        await session.__aenter__()
        self._sessions[ctx.session_id] = session
        return session

    async def _close_session(self, session: ph.Session) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
        await session.aclose()

    def _learn(self, turn: ph.Turn, visited: Iterable[str]) -> None:
        try:
            self.predictor.observe(turn.calls, visited, task_type=turn.request.task_type)
        except Exception:  # learning must never break a run that already finished
            logger.exception("prehydrate: learning from the finished run failed")

    async def end_session(self, session_id: str) -> None:
        """Close a kept session (it is recorded in the TraceStore)."""
        session = self._sessions.get(session_id)
        if session is not None:
            await self._close_session(session)

    async def aclose(self) -> None:
        """Close every kept session."""
        for session in list(self._sessions.values()):
            await self._close_session(session)
