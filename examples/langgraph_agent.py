"""A support agent as a LangGraph graph, with prehydrate predicting and prefetching its context.

The graph (run offline: scripted chat models from langchain-core, no network, no weights)::

    START -> triage <-> tools (ToolNode: request_context)
               |
               +-> billing | accounts | api  (router with declared targets) -> END

``triage`` looks the user's question up (a free-text ``request_context`` call run by the ToolNode),
then routes to one of three specialists. Each specialist asks for the sections it needs with
``request_context`` (the model's tool calls, executed in the node), thinking between calls.

Each run replays one recorded conversation opening from the bundled sample traces (its question,
its task type and the sections the agent asked for, with the recorded think time scaled down) over
the bundled sample corpus, served by a source with simulated latency. Every run is a different
customer (tenant), so nothing one run hydrated is reused by another: a hit is a prefetch paying off.

The app is written as any LangGraph app (no prehydrate node, no context schema) and wrapped once with
``prehydrate_graph(app, engine)``; every run is a plain ``ainvoke`` with a thread id and a tenant in
its config. The engine uses the shipped default predictor, whose graph-aware signal starts knowing
nothing and learns branch probabilities and P(section | node, query words) from each finished run
of a tenant (learning is tenant-private, so here, a tenant per run, every run starts cold).
The same runs are then repeated without prehydration for comparison. See docs/langgraph.md.

    python examples/langgraph_agent.py --runs 100 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.integrations.langgraph import RequestContextTool, prehydrate_graph

Route = Literal["billing", "accounts", "api"]
ROUTES: dict[str, Route] = {
    "billing+refund": "billing",
    "billing+plan": "billing",
    "billing+payment-failure": "billing",
    "accounts+access": "accounts",
    "api+integration": "api",
    "webhooks+debug": "api",
}
"""Recorded task types and the specialist that handles them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """What the scripted models will do in one run (taken from a recorded session's first turn)."""

    session: str
    query: str
    route: Route
    task_type: str
    calls: tuple[tuple[str, float], ...]
    """(section id, think seconds) in order."""


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    route: Route
    scenario: Scenario
    triaged: bool


REQUEST_CONTEXT = RequestContextTool()


def _call(args: dict[str, str], call_id: str) -> dict[str, Any]:
    return {"name": "request_context", "args": args, "id": call_id, "type": "tool_call"}


TRIAGE_THINK_S = 0.74
"""Model time before triage's tool call (times --think-scale): the median think time before the
first call of a turn in the bundled recorded traces (739 ms), as the specialists' are recorded ones."""


async def triage(state: State, config: RunnableConfig) -> dict[str, Any]:
    """Look the question up once (through the ToolNode), then hand over to a specialist."""
    sc = state["scenario"]
    await asyncio.sleep(TRIAGE_THINK_S * config["configurable"].get("think_scale", 1.0))
    if not state.get("triaged"):
        script = [AIMessage(content="", tool_calls=[_call({"query": sc.query}, f"{sc.session}-triage")])]
        update: dict[str, Any] = {"triaged": True}
    else:
        script = [AIMessage(content=f"route: {sc.route}")]
        update = {"route": sc.route}
    model = GenericFakeChatModel(messages=iter(script))
    reply = await model.ainvoke(state["messages"])
    return {**update, "messages": [reply]}


def after_triage(state: State) -> Literal["tools", "billing", "accounts", "api"]:
    """The router: the ToolNode while triage has tool calls, else the specialist it chose."""
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls:
        return "tools"
    return state["route"]


async def specialist(state: State, config: RunnableConfig) -> dict[str, Any]:
    """A specialist agent: think, ask for a section, read it, repeat; then answer."""
    sc = state["scenario"]
    messages: list[AnyMessage] = list(state["messages"])
    new: list[AnyMessage] = []
    script: list[AIMessage] = [
        AIMessage(content="", tool_calls=[_call({"section": sid}, f"{sc.session}-{i}")])
        for i, (sid, _) in enumerate(sc.calls)
    ]
    script.append(AIMessage(content="Here is what I found."))
    model = GenericFakeChatModel(messages=iter(script))
    for think_s in [t for _, t in sc.calls] + [0.0]:
        await asyncio.sleep(think_s)  # the model's time before it asks (what a prefetch can hide)
        reply = await model.ainvoke(messages + new)
        new.append(reply)
        for call in reply.tool_calls:
            result = await REQUEST_CONTEXT.ainvoke({**call, "type": "tool_call"}, config)
            assert isinstance(result, ToolMessage)
            new.append(result)
    return {"messages": new}


def build_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The support agent: triage with its ToolNode, three specialists."""
    g = StateGraph(State)
    g.add_node("triage", triage)
    g.add_node("tools", ToolNode([REQUEST_CONTEXT]))
    for name in ("billing", "accounts", "api"):
        g.add_node(name, specialist)
        g.add_edge(name, END)
    g.add_edge(START, "triage")
    g.add_conditional_edges("triage", after_triage)
    g.add_edge("tools", "triage")
    return g.compile()


def scenarios(n: int, think_scale: float) -> list[Scenario]:
    """The first ``n`` recorded sessions handled by a specialist (cycling when ``n`` is larger)."""
    out: list[Scenario] = []
    for trace in ph.read_traces(ph.sample_traces_path("train")):
        route = ROUTES.get(trace.task.type)
        if route is None or not trace.turns or not trace.turns[0].calls:
            continue
        turn = trace.turns[0]
        calls = tuple((c.key, c.think_ms / 1000.0 * think_scale) for c in turn.calls)
        out.append(
            Scenario(session=trace.session, query=turn.query, route=route, task_type=trace.task.type, calls=calls)
        )
    if not out:
        raise SystemExit("no usable sessions in the sample traces")
    return [out[i % len(out)] for i in range(n)]


def make_engine(latency_s: float, *, prefetch: bool, traces: Path | None) -> ph.Engine:
    """The sample corpus behind a source with simulated latency; the default predictor and policy."""
    path = ph.sample_sections_path()
    corpus = {row["id"]: row["text"] for row in map(json.loads, path.read_text("utf-8").splitlines()) if row}
    sections = ph.JsonlSource(path).list_sections()
    source = ph.MockSource(lambda sid, scope: corpus[sid], sections, name="docs", latency_s=latency_s)
    return ph.Engine(
        sources=[source],
        policy=ph.PrefetchPolicy(top_n=4, max_inflight=4, budget_count=10, enabled=prefetch),
        traces=ph.TraceStore(traces) if traces is not None else None,
    )


async def run_all(
    items: Sequence[Scenario],
    *,
    latency_s: float,
    prefetch: bool,
    traces: Path | None,
    think_scale: float,
    use_task_type: bool = True,
) -> list[dict[str, Any]]:
    """Run every scenario through the graph (a plain ``ainvoke`` each); one result dict per run."""
    engine = make_engine(latency_s, prefetch=prefetch, traces=traces)
    app = prehydrate_graph(build_graph(), engine)
    results: list[dict[str, Any]] = []
    async with engine:
        for i, sc in enumerate(items):
            t0 = time.perf_counter()
            thread, tenant = f"run-{i}", f"customer-{i}"
            configurable: dict[str, Any] = {"thread_id": thread, "tenant": tenant, "think_scale": think_scale}
            if use_task_type:
                configurable["task_type"] = sc.task_type
            inputs: State = {"messages": [HumanMessage(sc.query)], "scenario": sc}
            await app.ainvoke(inputs, {"configurable": configurable})
            wall_ms = (time.perf_counter() - t0) * 1000.0
            r = app.prehydrate.reports[(tenant, thread)]
            results.append(
                {
                    "run": i,
                    "session": sc.session,
                    "route": sc.route,
                    "calls": r.calls,
                    "hits": r.hits,
                    "inflight": r.inflight,
                    "misses": r.misses,
                    "prefetched": r.prefetched,
                    "wasted": r.wasted,
                    "cancelled": r.cancelled,
                    "wait_ms": round(r.wait_ms_total, 1),
                    "wall_ms": round(wall_ms, 1),
                }
            )
        await app.prehydrate.aclose()
    return results


async def amain(args: argparse.Namespace) -> int:
    items = scenarios(args.runs, args.think_scale)
    latency_s = args.latency_ms / 1000.0
    scale = args.think_scale
    await run_all(items[:1], latency_s=latency_s, prefetch=False, traces=None, think_scale=scale)  # warm-up
    with tempfile.TemporaryDirectory(prefix="prehydrate-example-") as tmp:
        traces = Path(tmp) / "traces.jsonl"
        with_ = await run_all(
            items,
            latency_s=latency_s,
            prefetch=True,
            traces=traces,
            think_scale=scale,
            use_task_type=not args.no_task_type,
        )
    without = await run_all(items, latency_s=latency_s, prefetch=False, traces=None, think_scale=scale)
    for a, b in zip(with_, without, strict=True):
        row = {k: v for k, v in a.items() if k != "wall_ms"}
        row |= {"wait_ms_without": b["wait_ms"], "wall_ms_with": a["wall_ms"], "wall_ms_without": b["wall_ms"]}
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"run {row['run']:>3} {row['route']:<8} calls={row['calls']} hits={row['hits']} "
                f"inflight={row['inflight']} misses={row['misses']} wasted={row['wasted']} "
                f"wall {row['wall_ms_with']:.0f} ms (without: {row['wall_ms_without']:.0f} ms)"
            )
    calls = sum(r["calls"] for r in with_)
    hits = sum(r["hits"] for r in with_)
    summary = {
        "runs": len(with_),
        "hits": hits,
        "inflight": sum(r["inflight"] for r in with_),
        "misses": sum(r["misses"] for r in with_),
        "hit_rate": round(hits / calls, 4) if calls else 0.0,
        "wall_ms_with": round(sum(r["wall_ms"] for r in with_), 1),
        "wall_ms_without": round(sum(r["wall_ms"] for r in without), 1),
    }
    print(json.dumps(summary) if args.json else f"summary: {summary}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="graph runs (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON line per run, then a summary line")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="simulated source latency (default 100)")
    parser.add_argument(
        "--think-scale", type=float, default=0.2, help="factor on recorded think time (default 0.2: 600 ms -> 120 ms)"
    )
    parser.add_argument("--no-task-type", action="store_true", help="do not tell prehydrate the task type")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
