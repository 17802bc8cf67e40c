"""``prehydrate_graph``: compiled graphs run with a plain ``ainvoke``/``invoke``, as a user writes them.

Real compiled LangGraph graphs with ``InMemorySaver`` checkpointers, real ``ToolNode``s, LangGraph's
own ``interrupt()``/``Command(resume=...)``, subgraphs, and LangChain's ``create_agent``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import prehydrate as ph
from prehydrate.integrations.langgraph import (
    RequestContextTool,
    UndeclaredTargetsWarning,
    prehydrate_graph,
    workflow_dag,
)

from ._graphs import API, BILLING, TOOL, State, mock_source, noop, router, specialist, support_graph

ACCOUNTS = ["accounts/sso", "accounts/mfa"]
FILLER = ["intro/welcome", "intro/glossary", "intro/faq"]
IDS = FILLER + ACCOUNTS + BILLING + API + ["webhooks/retries"]
"""Filler first: before anything is learned, document order (the default's cold-start signal) bets on it."""


def build(billing: list[str] = BILLING, api: list[str] = API, think_s: float = 0.1) -> Any:
    """The user's graph: classify, a router with declared targets, two specialists, a checkpointer."""
    return support_graph(billing=billing, api=api, think_s=think_s, checkpointer=InMemorySaver())


def make_source(latency: float = 0.03) -> ph.MockSource:
    return mock_source(IDS, latency)


def make_engine(src: ph.Source | None = None, **kw: Any) -> ph.Engine:
    kw.setdefault("policy", ph.PrefetchPolicy(top_n=2, max_inflight=4))
    return ph.Engine(sources=[src or make_source()], **kw)  # the shipped default predictor


def config(thread: str, tenant: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread}
    if tenant is not None:
        configurable["tenant"] = tenant
    return {"configurable": configurable}


def collect(engine: ph.Engine) -> list[ph.TurnEnded | ph.TurnStarted | ph.Lookup]:
    events: list[Any] = []
    engine.subscribe(lambda e: events.append(e) if isinstance(e, ph.TurnEnded | ph.TurnStarted | ph.Lookup) else None)
    return events


def reports(events: list[Any]) -> list[ph.TurnReport]:
    return [e.report for e in events if isinstance(e, ph.TurnEnded)]


# -- the implicit lifecycle --------------------------------------------------------------------------


async def test_a_plain_ainvoke_is_a_turn_keyed_by_thread_with_tenant_and_query_from_the_run() -> None:
    engine = make_engine()
    events = collect(engine)
    app = prehydrate_graph(build(), engine)
    async with engine:
        for i in range(3):  # a new thread and tenant each time: only what was learned carries over
            out = await app.ainvoke(
                {"messages": [HumanMessage("can you help me?")], "route": "billing"}, config(f"t{i}", f"c{i}")
            )
            assert [m.artifact["section"] for m in out["messages"] if isinstance(m, ToolMessage)] == BILLING
        await app.ainvoke({"messages": [("user", "and the api?")], "route": "api"}, config("t0", "c0"))
        await app.prehydrate.aclose()
    started = [e for e in events if isinstance(e, ph.TurnStarted)]
    assert [(e.session, e.tenant) for e in started] == [("t0", "c0"), ("t1", "c1"), ("t2", "c2"), ("t0", "c0")]
    assert [e.query for e in started] == ["can you help me?"] * 3 + ["and the api?"]
    assert started[3].turn_id.startswith("t0/")  # the thread's second run is a turn of the same session
    first, _, third, _ = reports(events)
    assert first.misses >= 1 and third.hits == 2  # learned online from the finished runs
    assert app.checkpointer is not None and type(app).__name__ == "PrehydratedCompiledStateGraph"


async def test_a_run_without_thread_or_tenant_uses_a_session_of_its_own_and_the_default_tenant() -> None:
    engine = make_engine()
    events = collect(engine)
    app = prehydrate_graph(build(), engine, tenant="acme")
    async with engine:
        await app.ainvoke({"messages": [HumanMessage("q")], "route": "api"}, config("t"))
        g = StateGraph(State)
        g.add_node("api", specialist(API, 0.0))
        g.add_edge(START, "api")
        plain = prehydrate_graph(g.compile(), engine)  # no checkpointer, no thread id
        await plain.ainvoke({"messages": [HumanMessage("q")]})
    started = [e for e in events if isinstance(e, ph.TurnStarted)]
    assert started[0].tenant == "acme"
    assert started[1].tenant == ph.Scope().tenant and started[1].session.startswith("run-")
    assert reports(events)[1].calls == 2


# -- interrupts ------------------------------------------------------------------------------------


def build_with_approval(think_s: float = 0.05) -> Any:
    async def ask(state: State) -> dict[str, Any]:
        return {"approved": interrupt("approve the refund?")}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("billing", specialist(BILLING, think_s))
    g.add_edge(START, "ask")
    g.add_edge("ask", "billing")
    g.add_edge("billing", END)
    return g.compile(checkpointer=InMemorySaver())


async def test_an_interrupt_keeps_the_prefetch_and_the_resumed_run_uses_it() -> None:
    src = make_source(latency=0.03)
    engine = make_engine(src)
    events = collect(engine)
    app = prehydrate_graph(build_with_approval(), engine)
    async with engine:
        for tenant in ("learn", "new"):
            out = await app.ainvoke({"messages": [HumanMessage("hello")]}, config(tenant, tenant))
            assert "__interrupt__" in out
            assert not reports([e for e in events if getattr(e, "tenant", "") == tenant])  # paused, not ended
            await asyncio.sleep(0.1)  # the user takes a while to answer; the prefetches finish meanwhile
            await app.ainvoke(Command(resume="yes"), config(tenant, tenant))
        await app.prehydrate.aclose()
    new = [e for e in events if getattr(e, "tenant", "") == "new"]
    assert len([e for e in new if isinstance(e, ph.TurnStarted)]) == 1  # one turn across the pause
    (report,) = reports(new)
    assert report.hits == 2 and report.used == 2
    assert [c for c in src.calls if c in BILLING].count("billing/refunds") == 2  # once per tenant, never refetched


async def test_a_paused_thread_gives_its_turn_up_after_the_ttl() -> None:
    engine = make_engine()
    events = collect(engine)
    app = prehydrate_graph(build_with_approval(), engine, pause_ttl_s=0.05)
    async with engine:
        await app.ainvoke({"messages": [HumanMessage("hello")]}, config("t", "c"))
        assert not reports(events)
        await asyncio.sleep(0.2)
        assert len(reports(events)) == 1  # bailed out: the pause outlived its TTL
        out = await app.ainvoke(Command(resume="yes"), config("t", "c"))  # a late resume still runs, as a new turn
        assert [m.artifact["outcome"] for m in out["messages"] if isinstance(m, ToolMessage)][0] == "miss"
        started = [e for e in events if isinstance(e, ph.TurnStarted)]
        assert len(started) == 2
        await app.prehydrate.aclose()


# -- subgraphs -------------------------------------------------------------------------------------


def build_nested() -> Any:
    inner = StateGraph(State)
    inner.add_node("lookup", specialist(API, 0.05), metadata={"prehydrate": ["api/errors"]})
    inner.add_node("answer", noop)
    inner.add_edge(START, "lookup")
    inner.add_edge("lookup", "answer")
    g = StateGraph(State)
    g.add_node("classify", noop)
    g.add_node("desk", inner.compile())
    g.add_node("billing", specialist(BILLING, 0.05))
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", lambda s: s["route"], {"api": "desk", "billing": "billing"})
    g.add_edge("desk", END)
    g.add_edge("billing", END)
    return g.compile(checkpointer=InMemorySaver())


async def test_the_dag_expands_subgraphs_and_nested_nodes_drive_prediction() -> None:
    app = build_nested()
    dag = workflow_dag(app)
    assert {"desk:lookup", "desk:answer"} <= set(dag.nodes) and "desk" not in dag.nodes
    assert dag.nodes["desk:lookup"].sections == ("api/errors",)
    assert sorted(dag.conditional_sources()["classify"]) == ["billing", "desk:lookup"]
    engine = make_engine()
    events = collect(engine)
    wrapped = prehydrate_graph(app, engine)
    async with engine:
        for i in range(3):
            await wrapped.ainvoke({"messages": [HumanMessage("429s")], "route": "api"}, config(f"t{i}", f"c{i}"))
        await wrapped.prehydrate.aclose()
    lookups = [e for e in events if isinstance(e, ph.Lookup)]
    assert {e.node for e in lookups} == {"desk:lookup"}  # calls carry the nested node's qualified name
    first, _, third = reports(events)
    assert first.hits >= 1  # declared inside the subgraph: prefetched on the very first run
    assert third.hits == 2


# -- concurrency, two graphs, sync -----------------------------------------------------------------


async def test_concurrent_threads_do_not_cross_talk() -> None:
    engine = make_engine(make_source(latency=0.02))
    events = collect(engine)
    app = prehydrate_graph(build(think_s=0.02), engine)
    routes = ["billing", "api"] * 4
    async with engine:
        outs = await asyncio.gather(
            *(
                app.ainvoke({"messages": [HumanMessage(f"question {i}")], "route": r}, config(f"t{i}", f"c{i}"))
                for i, r in enumerate(routes)
            )
        )
        await app.prehydrate.aclose()
    for i, (route, out) in enumerate(zip(routes, outs, strict=True)):
        msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
        assert [m.artifact["section"] for m in msgs] == (BILLING if route == "billing" else API)
        assert all(f"for c{i}" in str(m.content) for m in msgs)  # each run got its own tenant's content
    by_session = {e.session: e for e in events if isinstance(e, ph.TurnStarted)}
    assert {s: e.query for s, e in by_session.items()} == {f"t{i}": f"question {i}" for i in range(len(routes))}
    for e in events:
        if isinstance(e, ph.Lookup):
            assert e.session == f"t{e.tenant[1:]}"


async def test_two_graphs_on_one_engine_keep_their_own_hit_rates() -> None:
    """Same node names, different sections: each graph's counts stay its own (issue #15)."""

    async def hit_rates(shared: bool) -> tuple[float, float]:
        graphs = [build(billing=BILLING), build(billing=ACCOUNTS)]
        engines = [make_engine()] if shared else [make_engine(), make_engine()]
        apps = [prehydrate_graph(g, engines[i % len(engines)]) for i, g in enumerate(graphs)]
        rates = []
        for e in engines:
            await e.start()
        per_app: list[list[ph.TurnReport]] = [[], []]
        for run in range(8):
            for k, app in enumerate(apps):
                thread = f"g{k}-{run}"
                await app.ainvoke({"messages": [HumanMessage("help")], "route": "billing"}, config(thread, thread))
                per_app[k].append(app.prehydrate.reports[(thread, thread)])
        for app in apps:
            await app.prehydrate.aclose()
        for e in engines:
            await e.aclose()
        for rs in per_app:
            rates.append(sum(r.hits for r in rs) / sum(r.calls for r in rs))
        return rates[0], rates[1]

    alone = await hit_rates(shared=False)
    together = await hit_rates(shared=True)
    assert alone[0] >= 0.8 and alone[1] >= 0.8
    assert together == alone


def test_sync_invoke_works_on_a_background_loop() -> None:
    def sync_specialist(sections: list[str]) -> Callable[..., Any]:
        def node(state: State, config: RunnableConfig) -> dict[str, Any]:
            out: list[BaseMessage] = []
            for i, sid in enumerate(sections):
                threading.Event().wait(0.1)  # the model thinks
                call = {"type": "tool_call", "id": f"c{i}", "name": "request_context", "args": {"section": sid}}
                out.append(TOOL.invoke(call, config))
            return {"messages": out}

        return node

    g = StateGraph(State)
    g.add_node("classify", lambda s: {})
    g.add_node("billing", sync_specialist(BILLING))
    g.add_node("api", sync_specialist(API))
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", router)
    engine = make_engine()
    app = prehydrate_graph(g.compile(checkpointer=InMemorySaver()), engine)
    outcomes = []
    for i in range(2):
        out = app.invoke({"messages": [HumanMessage("hello")], "route": "billing"}, config(f"t{i}", f"c{i}"))
        outcomes.append([m.artifact["outcome"] for m in out["messages"] if isinstance(m, ToolMessage)])
    app.prehydrate.close()
    assert outcomes[0][0] == "miss" and outcomes[1] == ["hit", "hit"]


async def test_the_sync_tool_inside_a_running_loop_says_what_to_call() -> None:
    engine = make_engine()
    app = prehydrate_graph(build(), engine)

    async def blocking(state: State, config: RunnableConfig) -> dict[str, Any]:
        TOOL.invoke({"section": "api/errors"}, config)  # a sync call inside the running loop
        return {}

    g = StateGraph(State)
    g.add_node("api", blocking)
    g.add_edge(START, "api")
    bad = prehydrate_graph(g.compile(), engine)
    async with engine:
        with pytest.raises(ph.ConfigError, match=r"^a synchronous prehydrate call .* use app.ainvoke / tool.ainvoke"):
            await bad.ainvoke({})
        await app.prehydrate.aclose()


# -- create_agent ----------------------------------------------------------------------------------


async def test_a_create_agent_app_with_the_middleware_opens_the_turn_before_the_first_model_call() -> None:
    from langchain.agents import create_agent
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult

    from prehydrate.integrations.agents import PrehydrateMiddleware

    class Model(BaseChatModel):
        """Thinks 100 ms, then asks for the refund sections one by one, then answers."""

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            raise NotImplementedError

        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
            await asyncio.sleep(0.1)
            done = sum(1 for m in messages if isinstance(m, ToolMessage))
            if done < len(BILLING):
                call = {"name": "request_context", "args": {"section": BILLING[done]}, "id": f"c{done}"}
                msg = AIMessage(content="", tool_calls=[call])
            else:
                msg = AIMessage(content="done")
            return ChatResult(generations=[ChatGeneration(message=msg)])

    engine = make_engine()
    events = collect(engine)
    middleware = PrehydrateMiddleware(engine)
    agent = create_agent(Model(), [RequestContextTool()], middleware=[middleware], checkpointer=InMemorySaver())
    async with engine:
        for i in range(3):
            await agent.ainvoke({"messages": [HumanMessage("hello")]}, config(f"t{i}", f"c{i}"))
        await middleware.aclose()
    first, _, third = reports(events)
    assert first.calls == 2 and first.misses >= 1
    assert third.hits == 2  # opened before the model thought, so its prefetches were ready
    assert {e.node for e in events if isinstance(e, ph.Lookup)} == {"tools"}


# -- small things ----------------------------------------------------------------------------------


def test_the_undeclared_router_warning_points_at_the_users_line() -> None:
    def untyped_router(state: State):  # type: ignore[no-untyped-def]  # no Literal: targets unknown
        return state["route"]

    g = StateGraph(State)
    g.add_node("classify", noop)
    g.add_node("billing", noop)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", untyped_router)
    with pytest.warns(UndeclaredTargetsWarning, match=r"classify \(untyped_router\)") as caught:
        prehydrate_graph(g.compile(), make_engine())
    assert caught[0].filename == __file__


async def test_a_first_call_that_opens_the_turn_and_joins_its_own_prefetch_is_a_miss() -> None:
    """"inflight" means the fetch started before the model asked; one launched by the call itself saved nothing."""
    engine = make_engine(make_source(latency=0.05))
    events = collect(engine)
    async with engine:
        async with engine.session("s") as session:
            turn = session.turn(expect=["billing/refunds"])  # not entered: the first request opens it
            first = await turn.request_context("billing/refunds")
            await turn.end()
        async with engine.session("s2", tenant="other") as session:
            async with session.turn(expect=["billing/refunds"]) as opened:  # opened before the model asks
                joined = await opened.request_context("billing/refunds")
    assert first.outcome == "miss" and first.waited_ms >= 40
    assert joined.outcome == "inflight"
    lookups = [e for e in events if isinstance(e, ph.Lookup)]
    assert [e.outcome for e in lookups] == ["miss", "inflight"]  # reports and spans see the same outcome
    (r1, r2) = reports(events)
    assert (r1.misses, r1.inflight, r1.used) == (1, 0, 1)  # the prefetch was used, not wasted
    assert (r2.inflight, r2.used) == (1, 1)


def test_a_turn_report_gives_the_mean_and_p95_wait() -> None:
    report = ph.TurnReport(turn_id="t", session="s", tenant="a", calls=20, wait_ms=tuple(float(i) for i in range(20)))
    assert report.wait_ms_mean == pytest.approx(9.5)
    assert report.wait_ms_p95 == 18.0  # nearest rank: the 19th of 20
    empty = ph.TurnReport(turn_id="t", session="s", tenant="a")
    assert (empty.wait_ms_mean, empty.wait_ms_p95) == (0.0, 0.0)
