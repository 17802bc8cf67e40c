"""Tenant-private learning on the LangGraph path: one tenant's graph runs never shape another's prefetches.

A compiled graph routes each run to a specialist node that asks for its sections. The workflow
signal learns those runs online (which branch the router took, which sections the node asked for);
under tenant-private learning (the default, with a TraceStore) each tenant learns only its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import prehydrate as ph
from prehydrate.integrations.langgraph import Prehydrator, WorkflowDAG, WorkflowPredictor
from tests.integrations.test_langgraph import build, make_source

NO_REFIT = ph.LearningPolicy(refit_delay_s=3600)
"""Only online learning from the graph runs acts during a test (no background refit from traces)."""


def engine_on(
    tmp_path: Path, predictor: ph.Predictor, *, learning: ph.LearningPolicy = NO_REFIT, top_n: int = 4
) -> ph.Engine:
    return ph.Engine(
        sources=[make_source(latency=0.05)],
        predictor=predictor,
        policy=ph.PrefetchPolicy(top_n=top_n, max_inflight=top_n),
        traces=ph.TraceStore(tmp_path / "traces.jsonl"),
        learning=learning,
    )


async def run_as(prehydrator: Prehydrator, app: Any, tenant: str, n: int) -> ph.TurnReport:
    async with prehydrator.run(f"{tenant}-{n}", tenant=tenant, query="zebra") as ctx:
        await app.ainvoke({"route": "billing"}, context=ctx)
    assert ctx.report is not None
    return ctx.report


def workflow_signal(predictor: ph.Predictor) -> WorkflowPredictor:
    found = predictor if isinstance(predictor, WorkflowPredictor) else getattr(predictor, "signals", ())[0]
    assert isinstance(found, WorkflowPredictor)
    return found


async def test_tenant_b_gets_no_hit_from_a_graph_path_only_tenant_a_ran(tmp_path: Path) -> None:
    app = build()
    engine = engine_on(tmp_path, WorkflowPredictor())
    prehydrator = Prehydrator(engine, app)
    async with engine:
        a = [await run_as(prehydrator, app, "A", n) for n in range(3)]
        b = await run_as(prehydrator, app, "B", 0)
    assert a[0].misses == 2 and a[1].hits == 2  # A learned its path (the second run's sections were prefetched)
    assert (b.prefetched, b.hits, b.misses) == (0, 0, 2)  # B starts from nothing of A's
    assert workflow_signal(engine.predictor_for("A")).turns_learned == 3
    assert workflow_signal(engine.predictor_for("B")).turns_learned == 1  # its own run only


async def test_the_default_ensemble_keeps_each_tenants_graph_runs_apart(tmp_path: Path) -> None:
    app = build()
    engine = engine_on(tmp_path, ph.default_predictor())
    prehydrator = Prehydrator(engine, app)
    async with engine:
        for n in range(3):
            await run_as(prehydrator, app, "A", n)
        await run_as(prehydrator, app, "B", 0)
    assert workflow_signal(engine.predictor_for("A")).turns_learned == 3
    assert workflow_signal(engine.predictor_for("B")).turns_learned == 1
    assert workflow_signal(engine.predictor).turns_learned == 0  # nor the default tenant's


def test_fresh_copies_carry_fresh_signals_configured_alike() -> None:
    dag = WorkflowDAG.from_edges([("__start__", "a"), ("a", "__end__")], name="g")
    usage = ph.UsagePredictor()
    signal = WorkflowPredictor(dag, fallback=usage, discount=0.7, rate_smoothing=2.0)
    signal.observe_turn(ph.FinishedTurn(request=ph.ContextRequest(), calls=(ph.Call(key="x", node="a"),)))
    ensemble = ph.EnsemblePredictor(signals=[signal], signal_base_weight=0.3)
    copy = ensemble.fresh()
    [fresh] = copy.signals
    assert isinstance(fresh, WorkflowPredictor) and fresh is not signal
    assert (fresh.dag, fresh.discount, fresh.rate_smoothing) == (dag, 0.7, 2.0)
    assert isinstance(fresh.fallback, ph.UsagePredictor) and fresh.fallback is not usage
    assert fresh.turns_learned == 0 and signal.turns_learned == 1
    assert copy.signal_base_weight == 0.3


@pytest.mark.parametrize("tenant", ["A", "default"], ids=["tenant", "default-tenant"])
async def test_graph_runs_learned_online_survive_a_refit(tmp_path: Path, tenant: str) -> None:
    """Runs of a compiled graph teach the router's choice online; a refit from the traces keeps it.

    The recorded sessions hold the calls and their nodes but not the graph nor the branch the
    router took, so a refit that replaced the online counts would forget the learned path.
    """
    app = build()
    engine = engine_on(tmp_path, ph.default_predictor())
    prehydrator = Prehydrator(engine, app)
    dag = prehydrator.dag
    assert dag is not None
    async with engine:
        for n in range(4):
            await run_as(prehydrator, app, tenant, n)
        learned = workflow_signal(engine.predictor_for(tenant))
        before = learned.branch_probability("classify", "billing", ["billing", "api"], dag=dag)
        assert before == (4 + 0.5) / (4 + 1)  # four runs, all to billing
        assert await engine.learn() == 4  # the refit reads the four recorded sessions
        assert engine.learning.fits >= 1
        refitted = workflow_signal(engine.predictor_for(tenant))
        assert refitted.branch_probability("classify", "billing", ["billing", "api"], dag=dag) == before
        assert refitted.turns_learned == 4 + 4  # each run once online (per graph) and once from its trace
        report = await run_as(prehydrator, app, tenant, 9)
    assert (report.hits, report.misses) == (2, 0)  # the learned path still predicts


@pytest.mark.parametrize("refit", [False, True], ids=["saved-at-close", "saved-by-a-refit"])
async def test_a_restart_predicts_the_branch_graph_runs_taught_before_it(tmp_path: Path, refit: bool) -> None:
    """Graph runs learned online are in the persisted model: a restarted engine predicts the learned path.

    The restarted engine never fits (only the model file may act): the recorded sessions could not
    teach it the router's branch anyway, since a trace holds neither the graph nor the branch taken.
    """
    app = build()
    models = tmp_path / "models"

    def engine(policy: ph.LearningPolicy) -> ph.Engine:
        return engine_on(tmp_path, ph.default_predictor(), learning=policy, top_n=2)

    first = engine(ph.LearningPolicy(model_dir=models, refit_delay_s=3600))
    prehydrator = Prehydrator(first, app)
    dag = prehydrator.dag
    assert dag is not None
    async with first:
        for n in range(4):
            await run_as(prehydrator, app, "A", n)
        if refit:
            assert await first.learn() == 4
    assert (models / "A.model.json.gz").exists()

    restarted = engine(ph.LearningPolicy(model_dir=models, wait_at_start=False, online=False))
    restarted.learning.fit = lambda *a, **k: 0  # type: ignore[method-assign]  # only the persisted model may act
    again = Prehydrator(restarted, app)
    async with restarted:
        deadline = asyncio.get_running_loop().time() + 30
        while "A" not in restarted.learning.resident() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        signal = workflow_signal(restarted.predictor_for("A"))
        assert signal.branch_probability("classify", "billing", ["billing", "api"], dag=dag) == (4 + 0.5) / (4 + 1)
        report = await run_as(again, app, "A", 9)
    assert (report.hits, report.misses) == (2, 0)  # the billing path was prefetched, not the api one


async def wait_resident(engine: ph.Engine, tenant: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while tenant not in engine.learning.resident() and asyncio.get_running_loop().time() < deadline:
        engine.predictor_for(tenant)  # a request of the tenant brings its model back
        await asyncio.sleep(0.02)
    assert tenant in engine.learning.resident(), f"{tenant}'s model never came back"


def learned_runs(engine: ph.Engine, tenant: str, dag: WorkflowDAG) -> float:
    """How many runs of ``tenant`` took the billing branch, read back from the branch probability."""
    p = workflow_signal(engine.predictor_for(tenant)).branch_probability(
        "classify", "billing", ["billing", "api"], dag=dag
    )
    return round((p - 0.5) / (1 - p), 6)  # p = (n + 0.5) / (n + 1) after n runs, all to billing


@pytest.mark.parametrize("saved", [False, True], ids=["evicted-unsaved", "evicted-after-a-save"])
async def test_an_evicted_tenant_keeps_its_graph_runs_and_learns_one_that_ends_while_it_is_away(
    tmp_path: Path, saved: bool
) -> None:
    """One model in memory, two tenants: A's graph learning survives eviction, and a run of A while
    its model is away is learned once the model is back (not dropped, not given to a new empty model)."""
    app = build()
    policy = ph.LearningPolicy(model_dir=tmp_path / "models", max_tenant_models=1, refit_delay_s=3600)
    engine = engine_on(tmp_path, ph.default_predictor(), learning=policy, top_n=2)
    prehydrator = Prehydrator(engine, app)
    dag = prehydrator.dag
    assert dag is not None
    async with engine:
        for n in range(2):
            await run_as(prehydrator, app, "A", n)
        if saved:
            await engine.learn()  # A's file now holds its two runs
        await run_as(prehydrator, app, "B", 0)  # B's model evicts A's
        assert engine.learning.resident() == ["B"]
        # A run of A ends while its model is away: the worker brings it back, then it learns the run.
        run = ph.FinishedTurn(
            request=ph.ContextRequest(query="zebra"), calls=(), workflow=dag, visited=("classify", "billing")
        )
        engine.learning.observe("A", run)
        await wait_resident(engine, "A")
        assert learned_runs(engine, "A", dag) == 3
        await wait_resident(engine, "B")  # evicts A again; then A's next fit reads its file first
        assert await engine.learn() >= 3  # fits A (from its file and sessions), then B: A is evicted again
        await wait_resident(engine, "A")
        assert learned_runs(engine, "A", dag) == 3
    loaded = ph.default_predictor()
    ph.load_model(loaded, tmp_path / "models" / "A.model.json.gz")
    [signal] = loaded.signals
    assert isinstance(signal, WorkflowPredictor)
    assert signal.branch_probability("classify", "billing", ["billing", "api"], dag=dag) == (3 + 0.5) / (3 + 1)
