"""prehydrate on compiled LangGraph graphs: learning, hits, waste, bailout, single-flight, the tool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode

import prehydrate as ph
from prehydrate.integrations.langgraph import (
    PrehydrateContext,
    Prehydrator,
    RequestContextTool,
    UndeclaredTargetsWarning,
    WorkflowDAG,
    WorkflowPredictor,
    prehydrate_entry,
    workflow_dag,
)

from ._graphs import API, BILLING, TOOL, State, mock_source, noop, specialist, support_graph

IDS = BILLING + API + ["accounts/sso", "accounts/mfa", "webhooks/retries"]


def build(metadata: dict[str, list[str]] | None = None, think_s: float = 0.1) -> Any:
    """The graph with prehydrate's entry node first; ``metadata``: the sections each specialist declares."""
    return support_graph(declared=metadata, think_s=think_s, entry=True)


def make_source(latency: float | Callable[[str], float] = 0.05, gate: asyncio.Event | None = None) -> ph.MockSource:
    return mock_source(IDS, latency, gate)


def make_engine(src: ph.Source, **kw: Any) -> ph.Engine:
    kw.setdefault("policy", ph.PrefetchPolicy(top_n=4, max_inflight=4))
    return ph.Engine(sources=[src], predictor=WorkflowPredictor(), **kw)


def leftover_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


# -- reading the graph -------------------------------------------------------------------------------


def test_dag_reads_nodes_edges_routers_and_declared_sections() -> None:
    app = build({"billing": ["billing/refunds"]})
    dag = workflow_dag(app)
    assert {"prehydrate", "classify", "billing", "api"} <= set(dag.nodes)
    assert dag.nodes["billing"].sections == ("billing/refunds",)
    assert dag.nodes["api"].sections == ()
    assert dag.conditional_sources() == {"classify": ["billing", "api"]} or dag.conditional_sources() == {
        "classify": ["api", "billing"]
    }
    assert dag.distances("__start__")["billing"] == 3
    p = WorkflowPredictor(dag)
    reach = dag.reach("prehydrate", p.branch_probability)
    assert reach["classify"] == (1.0, 1)
    assert reach["billing"] == (0.5, 2) and reach["api"] == (0.5, 2)  # uniform before any run


def test_a_router_without_declared_targets_warns_clearly() -> None:
    def untyped_router(state: State):  # type: ignore[no-untyped-def]  # no Literal: targets unknown
        return state["route"]

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("classify", noop)
    g.add_node("billing", noop)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", untyped_router)
    with pytest.warns(UndeclaredTargetsWarning, match=r"classify \(untyped_router\).*Literal"):
        dag = workflow_dag(g.compile())
    assert dag.undeclared == ("classify (untyped_router)",)


def test_tool_nodes_are_recognised() -> None:
    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("tools", ToolNode([TOOL]))
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    assert workflow_dag(g.compile()).nodes["tools"].tool_node


def test_branch_probabilities_are_learned_per_run_and_per_task_type() -> None:
    dag = WorkflowDAG.from_edges(
        [("__start__", "r"), ("r", "a", True), ("r", "b", True), ("a", "__end__"), ("b", "__end__")],
        sections={"b": ["accounts/sso"]},
    )
    p = WorkflowPredictor(dag, smoothing=1.0, backoff=2.0, rate_smoothing=0.0)

    def observe(key: str, node: str, task_type: str) -> None:
        request = ph.ContextRequest(task_type=task_type)
        p.observe_turn(ph.FinishedTurn(request=request, calls=(ph.Call(key=key, node=node),)))

    for _ in range(3):
        observe("billing/refunds", "a", "refund")
    observe("api/errors", "b", "api")
    general = (3 + 0.5) / (4 + 1)  # all runs, smoothed toward uniform
    assert p.branch_probability("r", "a", ["a", "b"]) == pytest.approx(general)
    assert p.branch_probability("r", "a", ["a", "b"], "refund") == pytest.approx((3 + 2 * general) / (3 + 2))
    assert p.section_probabilities("a") == {"billing/refunds": 1.0}
    assert p.section_probabilities("b")["accounts/sso"] == 0.9  # declared in metadata


# -- runs --------------------------------------------------------------------------------------------


async def test_first_run_learns_and_later_runs_hit() -> None:
    app = build()
    src = make_source(latency=0.05)
    engine = make_engine(src)
    prehydrator = Prehydrator(engine, app)
    reports = []
    async with engine:
        for i in range(3):  # every run is another tenant: nothing is reused except what was learned
            async with prehydrator.run(f"s{i}", tenant=f"t{i}", query="refund please") as ctx:
                await app.ainvoke({"route": "billing"}, context=ctx)
            reports.append(ctx.report)
    first, second, third = reports
    assert first is not None and second is not None and third is not None
    assert (first.prefetched, first.hits, first.misses) == (0, 0, 2)  # nothing known yet
    assert second.hits == 2 and second.misses == 0
    assert third.hits == 2
    predictor = engine.predictor
    assert isinstance(predictor, WorkflowPredictor)
    assert predictor.branch_probability("classify", "billing", ["billing", "api"], dag=prehydrator.dag) > 0.5


async def test_declared_sections_are_prefetched_on_the_very_first_run() -> None:
    app = build({"billing": BILLING})
    engine = make_engine(make_source(latency=0.05))
    async with engine:
        async with Prehydrator(engine, app).run("s", query="q") as ctx:
            await app.ainvoke({"route": "billing"}, context=ctx)
    assert ctx.report is not None and ctx.report.hits == 2


async def test_a_branch_not_taken_leaves_its_prefetches_wasted_and_cancelled() -> None:
    slow_api = {sid: 30.0 for sid in API}  # the api branch's sections take long: still running at the end
    src = make_source(latency=lambda sid: slow_api.get(sid, 0.01))
    app = build({"billing": BILLING, "api": API}, think_s=0.05)
    engine = make_engine(src)
    settled: list[ph.PrefetchSettled] = []
    engine.subscribe(lambda e: settled.append(e) if isinstance(e, ph.PrefetchSettled) else None)
    async with engine:
        async with Prehydrator(engine, app).run("s", query="q") as ctx:
            await app.ainvoke({"route": "billing"}, context=ctx)
        report = ctx.report
        assert report is not None
        assert report.hits == 2 and report.used == 2
        assert report.wasted == 2 and report.cancelled == 2
        assert {e.section_id: e.outcome for e in settled} == {
            "billing/refunds": "used",
            "refunds/request": "used",
            "api/errors": "cancelled",
            "api/rate-limits": "cancelled",
        }
        assert leftover_tasks() == set()


async def test_the_entry_node_returns_while_prefetches_still_run() -> None:
    gate = asyncio.Event()
    seen: list[str] = []

    async def observe(state: State, runtime: Any) -> dict[str, Any]:
        ctx = runtime.context
        seen.extend(r.status for r in ctx.turn.prefetches)
        gate.set()  # let hydration finish only now
        return {}

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("prehydrate", prehydrate_entry)
    g.add_node("observe", observe)
    g.add_node("billing", specialist(BILLING, 0.0), metadata={"prehydrate": BILLING})
    g.add_edge(START, "prehydrate")
    g.add_edge("prehydrate", "observe")
    g.add_edge("observe", "billing")
    app = g.compile()
    engine = make_engine(make_source(latency=0.0, gate=gate))
    async with engine:
        async with Prehydrator(engine, app).run("s", query="q") as ctx:
            await app.ainvoke({}, context=ctx)
    assert seen == ["running", "running"]
    assert ctx.report is not None and ctx.report.covered_rate == 1.0


@pytest.mark.parametrize("path", ["context_manager", "callback"])
@pytest.mark.parametrize("ending", ["returns", "raises", "cancelled"])
async def test_no_task_survives_the_run(path: str, ending: str) -> None:
    src = make_source(latency=lambda sid: 30.0 if sid in API else 0.01)  # api prefetches never finish
    app = build({"billing": BILLING, "api": API}, think_s=0.05)
    engine = make_engine(src)
    prehydrator = Prehydrator(engine, app)
    inputs: State = {"route": "billing", "fail": ending == "raises"}
    async with engine:
        if path == "context_manager":

            async def go() -> PrehydrateContext:
                async with prehydrator.run("s", query="q") as ctx:
                    await app.ainvoke(inputs, context=ctx)
                return ctx

            coro = go()
        else:
            handler = prehydrator.handler("s", query="q")
            ctx = handler.context

            async def go() -> PrehydrateContext:
                await app.ainvoke(inputs, context=ctx, config={"callbacks": [handler]})
                return ctx

            coro = go()
        if ending == "returns":
            ctx = await coro
        elif ending == "raises":
            with pytest.raises(ValueError, match="crashed"):
                await coro
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(coro, timeout=0.03)  # while the specialist thinks
        assert leftover_tasks() == set()
        assert engine.fetches_running == 0
    assert isinstance(engine.predictor, WorkflowPredictor)
    assert engine.predictor.turns_learned == 1  # the run was learned from even when it failed


async def test_parallel_tool_calls_in_one_toolnode_step_share_single_flight() -> None:
    gate = asyncio.Event()
    src = make_source(latency=0.0, gate=gate)

    async def agent(state: State) -> dict[str, Any]:
        calls = [
            {"name": "request_context", "args": {"section": "billing/refunds"}, "id": "call_a", "type": "tool_call"},
            {"name": "request_context", "args": {"section": "billing/refunds"}, "id": "call_b", "type": "tool_call"},
            {"name": "request_context", "args": {"query": "refund policy"}, "id": "call_c", "type": "tool_call"},
        ]
        return {"messages": [AIMessage(content="", tool_calls=calls)]}

    async def release(state: State) -> dict[str, Any]:
        return {}

    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("prehydrate", prehydrate_entry)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([TOOL]))
    g.add_edge(START, "prehydrate")
    g.add_edge("prehydrate", "agent")
    g.add_edge("agent", "tools")
    g.add_edge("tools", END)
    app = g.compile()
    engine = make_engine(src)
    lookups: list[ph.Lookup] = []
    engine.subscribe(lambda e: lookups.append(e) if isinstance(e, ph.Lookup) else None)

    async def open_gate_when_all_wait() -> None:
        while src.active < 1 or engine.fetches_running < 1:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # let the other two calls join the running fetch
        gate.set()

    async with engine:
        async with Prehydrator(engine, app).run("s", query="refund") as ctx:
            opener = asyncio.create_task(open_gate_when_all_wait())
            out = await app.ainvoke({}, context=ctx)
            await opener
    msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert sorted(m.tool_call_id for m in msgs) == ["call_a", "call_b", "call_c"]
    assert {m.artifact["section"] for m in msgs} == {"billing/refunds"}
    assert sorted(m.artifact["outcome"] for m in msgs) == ["inflight", "inflight", "miss"]
    assert src.calls == ["billing/refunds"]  # one hydration for three calls
    assert sorted(e.tool_call_id or "" for e in lookups) == ["call_a", "call_b", "call_c"]
    assert {e.node for e in lookups} == {"tools"}
    assert ctx.turn is not None and {c.node for c in ctx.turn.calls} == {"tools"}


async def test_traces_record_the_node_and_a_restarted_engine_predicts_from_them(tmp_path: Path) -> None:
    store = tmp_path / "traces.jsonl"
    app = build()
    engine = make_engine(make_source(latency=0.05), traces=ph.TraceStore(store))
    async with engine:
        async with Prehydrator(engine, app).run("s1", tenant="a", query="q") as ctx:
            await app.ainvoke({"route": "api"}, context=ctx)
    recorded = [t.to_json() for t in ph.TraceStore(store).load("a")]  # tenant a's own file
    assert [c["node"] for c in recorded[0]["turns"][0]["calls"]] == ["api", "api"]

    engine2 = make_engine(make_source(latency=0.05), traces=ph.TraceStore(store))  # a new process
    prehydrator2 = Prehydrator(engine2, app)
    async with engine2:
        async with prehydrator2.run("s2", tenant="a", query="q") as ctx2:  # tenant a learns from its own runs
            await app.ainvoke({"route": "api"}, context=ctx2)
    assert ctx2.report is not None and ctx2.report.hits == 2


async def test_tool_errors_go_back_to_the_model_with_suggestions() -> None:
    engine = make_engine(make_source(latency=0.0))
    prehydrator = Prehydrator(engine, build())
    async with engine:
        async with prehydrator.run("s", query="q") as ctx:
            tool = RequestContextTool(context=ctx)  # bound: usable outside any graph
            call = {"type": "tool_call", "id": "c1", "name": "request_context", "args": {"section": "billing/refund"}}
            msg = await tool.ainvoke(call)
            ok = await tool.ainvoke({**call, "id": "c2", "args": {"section": "billing/refunds"}})
            plain = await tool.ainvoke({"section": "api/errors"})  # plain input: content only
    assert isinstance(msg, ToolMessage) and msg.status == "error"
    assert "billing/refunds" in str(msg.content)
    assert isinstance(ok, ToolMessage) and ok.status == "success"
    assert ok.artifact["outcome"] == "miss" and ok.artifact["section"] == "billing/refunds"
    assert set(ok.artifact) >= {"outcome", "waited_ms", "section"}
    assert plain == "# api/errors\n\ncontent of api/errors for default"


async def test_the_tool_without_any_context_says_how_to_pass_one() -> None:
    with pytest.raises(ph.ConfigError, match="context_schema=PrehydrateContext"):
        await RequestContextTool().ainvoke({"section": "billing/refunds"})


def test_the_model_sees_only_section_and_query() -> None:
    schema = TOOL.tool_call_schema.model_json_schema()
    assert set(schema["properties"]) == {"section", "query"}
    assert TOOL.name == "request_context" and TOOL.response_format == "content_and_artifact"


async def test_the_engines_predictor_is_never_replaced() -> None:
    predictor = ph.SequentialPredictor()
    engine = ph.Engine(sources=[make_source()], predictor=predictor)
    Prehydrator(engine, build())
    Prehydrator(engine, build({"billing": BILLING}))
    assert engine.predictor is predictor


async def test_kept_sessions_make_runs_turns_of_one_conversation(tmp_path: Path) -> None:
    store = tmp_path / "t.jsonl"
    app = build()
    engine = make_engine(make_source(latency=0.0), traces=ph.TraceStore(store))
    prehydrator = Prehydrator(engine, app)
    async with engine:
        for route in ("billing", "api"):
            async with prehydrator.run("conv", query=route, keep_session=True) as ctx:
                await app.ainvoke({"route": route}, context=ctx)
        assert not store.exists()
        await prehydrator.end_session("conv")
    recorded = json.loads(store.read_text())
    assert [t["query"] for t in recorded["turns"]] == ["billing", "api"]


def test_workflow_predictor_follows_the_core_protocols() -> None:
    p = WorkflowPredictor()
    assert isinstance(p, ph.Predictor) and isinstance(p, ph.Learner)
    catalog = ph.Catalog(make_source().list_sections())
    state = ph.PredictionState(request=ph.ContextRequest(), catalog=catalog)
    assert p.predict(state, 3) == []  # no DAG, nothing learned, no fallback: no guesses
    trace = ph.SessionTrace(
        session="s",
        task=ph.TaskSpec(type="refund"),
        turns=(ph.TurnTrace(calls=(ph.Call(key="billing/refunds", node="billing"),)),),
    )
    p.attach(workflow_dag(build()))
    p.fit([trace], catalog)
    top = p.predict(ph.PredictionState(request=ph.ContextRequest(task_type="refund"), catalog=catalog), 1)
    assert [c.section_id for c in top] == ["billing/refunds"]
    assert "node 'billing'" in top[0].reason


async def learned_runs(name: str) -> list[tuple[list[str], int, int]]:
    """Each run's prefetched sections, hits and misses, on a graph whose billing node is ``name``.

    The graph is described by hand, as a workflow engine other than LangGraph describes it (LangGraph
    itself cannot run a node named ``"plan\\ud800"``); the runs go through the integration's context as
    a compiled app's runs do: node starts, then the node's calls. Other tenants' runs teach the workflow.
    """
    dag = WorkflowDAG.from_edges(
        [("__start__", "classify"), ("classify", name, True), ("classify", "api", True)]
        + [(name, "__end__"), ("api", "__end__")]
    )
    engine = make_engine(make_source(latency=0.02), policy=ph.PrefetchPolicy(top_n=2, max_inflight=2))
    prehydrator = Prehydrator(engine, dag=dag)
    out = []
    async with engine:
        for i, (node, sections) in enumerate([(name, BILLING), ("api", API), (name, BILLING), (name, BILLING)]):
            async with prehydrator.run(f"s{i}", tenant=f"t{i}", query="q") as ctx:
                await ctx.start()
                for started in ("classify", node):
                    ctx.node_started(started)
                    await asyncio.sleep(0.05)  # the node's model thinks
                for sid in sections:
                    await ctx.request_context(sid, node=node)
            assert ctx.turn is not None and ctx.report is not None
            out.append(([p.section_id for p in ctx.turn.prefetches], ctx.report.hits, ctx.report.misses))
    return out


async def test_a_node_name_that_is_not_unicode_text_is_predicted_like_a_plain_one() -> None:
    """The graph's node names and a run's node names are cleaned alike (a lone surrogate -> U+FFFD):
    what runs of ``"plan\\ud800"`` requested is found again for that node of the graph (it was not)."""
    plain = await learned_runs("plan")
    odd = await learned_runs("plan\ud800")
    assert plain[-1] == (BILLING, 2, 0)  # the plain graph learned the branch and its sections
    assert odd == plain


def test_a_compiled_graph_with_a_node_name_that_is_not_unicode_text_is_refused_in_one_sentence() -> None:
    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("plan\ud800", noop)  # LangGraph accepts the name here, then fails to draw or run the graph
    g.add_edge(START, "plan\ud800")
    with pytest.raises(ph.ConfigError, match=r"^the graph has a name that is not Unicode text \('plan\\ud800'\)"):
        Prehydrator(make_engine(make_source()), g.compile())


@pytest.mark.parametrize("follow_nodes", [False, True])
async def test_following_node_starts_prefetches_for_the_node_that_just_started(follow_nodes: bool) -> None:
    app = support_graph(billing=["billing/refunds"], api=["api/errors"], entry=True)  # one section each
    engine = make_engine(make_source(latency=0.02), policy=ph.PrefetchPolicy(top_n=1, max_inflight=1))
    prehydrator = Prehydrator(engine, app)
    async with engine:
        for i, route in enumerate(["billing", "api", "billing"]):  # learn both branches; billing is likelier
            async with prehydrator.run(f"learn{i}", tenant=f"l{i}") as ctx:
                await app.ainvoke({"route": route}, context=ctx)
        async with prehydrator.run("s", tenant="new") as ctx:
            config: RunnableConfig = {"callbacks": ctx.callbacks} if follow_nodes else {}
            await app.ainvoke({"route": "api"}, context=ctx, config=config)
    assert ctx.turn is not None
    assert ctx.turn.prefetches[0].section_id == "billing/refunds"  # the entry node bets on the likelier branch
    assert ctx.report is not None
    assert ctx.report.hits == (1 if follow_nodes else 0)
    assert ("api" in ctx.visited) and (("classify" in ctx.visited) == follow_nodes)


async def test_without_an_entry_node_the_first_tool_call_opens_the_turn() -> None:
    g = StateGraph(State, context_schema=PrehydrateContext)
    g.add_node("billing", specialist(BILLING, 0.0))
    g.add_edge(START, "billing")
    app = g.compile()
    engine = make_engine(make_source(latency=0.0))
    async with engine:
        async with Prehydrator(engine, app).run("s", query="q") as ctx:
            await app.ainvoke({}, context=ctx)
    assert ctx.turn is not None and ctx.turn.node == "billing"
    assert ctx.report is not None and ctx.report.calls == 2


async def test_a_tool_call_after_the_run_is_refused_to_the_model() -> None:
    engine = make_engine(make_source(latency=0.0))
    async with engine:
        async with Prehydrator(engine, build()).run("s", query="q") as ctx:
            pass
        tool = RequestContextTool(context=ctx)
        msg = await tool.ainvoke(
            {"type": "tool_call", "id": "late", "name": "request_context", "args": {"section": "api/errors"}}
        )
    assert isinstance(msg, ToolMessage) and msg.status == "error" and "already over" in str(msg.content)
    assert ctx.report is None  # the run never opened a turn


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")  # LangGraph's own prebuilt agent
async def test_the_tool_works_in_langgraphs_prebuilt_agent() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langgraph.prebuilt import create_react_agent

    class ScriptedModel(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:  # the script already holds the tool calls
            return self

    call = {"name": "request_context", "args": {"section": "billing/refunds"}, "id": "c1", "type": "tool_call"}
    model = ScriptedModel(messages=iter([AIMessage(content="", tool_calls=[call]), AIMessage(content="done")]))
    agent = create_react_agent(model, [RequestContextTool()], context_schema=PrehydrateContext)
    engine = make_engine(make_source(latency=0.0))
    async with engine:
        async with Prehydrator(engine, agent).run("s", query="refunds?") as ctx:
            out = await agent.ainvoke({"messages": [("user", "refunds?")]}, context=ctx)
    tool_msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.artifact["section"] for m in tool_msgs] == ["billing/refunds"]
    assert ctx.turn is not None and [(c.key, c.node) for c in ctx.turn.calls] == [("billing/refunds", "tools")]
