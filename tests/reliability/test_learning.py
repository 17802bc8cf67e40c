"""Learning: tenant-private predictors, persisted models, online refits swapped in while serving."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

import prehydrate as ph
import prehydrate._learning as learning_module

SECTIONS = [ph.Section(id=f"doc/{i}", title=f"Document {i}", version="v1", order=i) for i in range(30)]
SEQUENCE = ("doc/17", "doc/3", "doc/25")
"""A workflow only tenant A follows: neither document order nor the words of the query lead to it."""
QUERY = "zebra quantum"


def source() -> ph.MockSource:
    return ph.MockSource(lambda sid, scope: f"{scope.tenant}:{sid}", SECTIONS, latency_s=0.005)


def engine_on(store: Path, **kw: object) -> ph.Engine:
    return ph.Engine(
        sources=[source()],
        predictor=ph.default_predictor(),
        policy=ph.PrefetchPolicy(top_n=3),
        traces=ph.TraceStore(store),
        **kw,  # type: ignore[arg-type]
    )


async def record_a(engine: ph.Engine, n: int, prefix: str = "a") -> None:
    for i in range(n):
        async with engine.session(f"{prefix}-{i}", tenant="A", task_type="ops") as session:
            async with session.turn(query=f"{QUERY} {i}") as turn:
                for key in SEQUENCE:
                    await turn.request_context(key)


async def outcomes(engine: ph.Engine, tenant: str, name: str) -> list[str]:
    """Run A's sequence as ``tenant``, giving prefetches time to land between calls."""
    async with engine.session(name, tenant=tenant, task_type="ops", record=False) as session:
        async with session.turn(query=QUERY) as turn:
            out = []
            for key in SEQUENCE:
                await asyncio.sleep(0.1)
                out.append((await turn.request_context(key)).outcome)
    return out


async def test_tenant_b_gets_no_hit_from_a_sequence_only_tenant_a_made(tmp_path: Path) -> None:
    store = tmp_path / "traces.jsonl"
    async with engine_on(store) as first:
        await record_a(first, 30)
    # A's sessions (and queries) are stored apart from everyone else's.
    assert ph.TraceStore(store).tenants() == ["A"]
    assert not store.exists() or QUERY not in store.read_text()

    async with engine_on(store) as restarted:  # a restart fits each tenant on its own sessions
        a = await outcomes(restarted, "A", "a-after")
        b = await outcomes(restarted, "B", "b-after")
        shared = engine_on(tmp_path / "other.jsonl", learning=ph.LearningPolicy(private=False))
    assert a[1:] == ["hit", "hit"]  # A learned its workflow
    assert b[1:] == ["miss", "miss"]  # B gets nothing of it
    assert restarted.predictor_for("B") is not restarted.predictor_for("A")
    assert shared.predictor_for("B") is shared.predictor_for("A")  # opt-out: one predictor for all


async def test_a_shared_corpus_is_learned_by_every_tenant(tmp_path: Path) -> None:
    corpus = [
        ph.SessionTrace(
            session=f"c-{i}",
            task=ph.TaskSpec(type="ops"),
            turns=(ph.TurnTrace(query=f"{QUERY} {i}", calls=tuple(ph.Call(key=k, think_ms=400) for k in SEQUENCE)),),
        )
        for i in range(30)
    ]
    engine = engine_on(tmp_path / "traces.jsonl")
    engine.learning.share(corpus)
    async with engine:
        assert (await outcomes(engine, "B", "b"))[1:] == ["hit", "hit"]


async def test_online_refit_swaps_in_while_serving(tmp_path: Path) -> None:
    engine = engine_on(tmp_path / "traces.jsonl", learning=ph.LearningPolicy(refit_delay_s=0.2))
    async with engine:
        before = engine.predictor_for("A")
        assert (await outcomes(engine, "A", "cold"))[1:] == ["miss", "miss"]
        await record_a(engine, 30)
        deadline = time.monotonic() + 60
        while engine.learning.fits == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert engine.learning.fits >= 1  # one debounced refit for a burst of 30 sessions
        assert engine.predictor_for("A") is not before  # a new model, swapped in whole
        assert (await outcomes(engine, "A", "warm"))[1:] == ["hit", "hit"]
        assert (await outcomes(engine, "B", "other"))[1:] == ["miss", "miss"]


async def test_a_restart_serves_the_persisted_model_at_once(tmp_path: Path) -> None:
    store, models = tmp_path / "traces.jsonl", tmp_path / "models"
    async with engine_on(store, learning=ph.LearningPolicy(model_dir=models)) as first:
        await record_a(first, 30)
        await first.learn()
    assert sorted(p.name for p in models.iterdir()) == ["A.model.json.gz"]

    restarted = engine_on(store, learning=ph.LearningPolicy(model_dir=models, wait_at_start=False, online=False))
    restarted.learning.fit = lambda *a, **k: 0  # type: ignore[method-assign]  # only the persisted model may act
    async with restarted:
        deadline = time.monotonic() + 30
        while not getattr(restarted.predictor_for("A"), "fitted", False) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert (await outcomes(restarted, "A", "a"))[1:] == ["hit", "hit"]


async def test_a_corrupt_model_file_is_refused_with_a_warning_and_refitted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, models = tmp_path / "traces.jsonl", tmp_path / "models"
    async with engine_on(store, learning=ph.LearningPolicy(model_dir=models)) as first:
        await record_a(first, 30)
        await first.learn()
    path = models / "A.model.json.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)  # a gzip header, then nothing that decompresses

    restarted = engine_on(store, learning=ph.LearningPolicy(model_dir=models, wait_at_start=False, online=False))
    with caplog.at_level(logging.WARNING, "prehydrate.learning"):
        async with restarted:
            deadline = time.monotonic() + 60
            while restarted.learning.fits == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert (await outcomes(restarted, "A", "a"))[1:] == ["hit", "hit"]  # refitted
    [warning] = [r.getMessage() for r in caplog.records if r.name == "prehydrate.learning"]
    assert str(path) in warning and "damaged" in warning and "refitting" in warning and "\n" not in warning
    loaded = ph.default_predictor()
    ph.load_model(loaded, path)  # the refit wrote a good file again
    assert loaded.fitted


async def test_serve_answers_before_its_first_fit_has_finished(tmp_path: Path) -> None:
    """The port opens and requests are served while the recorded sessions are still being fitted."""
    from mcp import Client

    from tests.mcp_server.conftest import http_server

    train = ph.read_traces(ph.sample_traces_path("train"))
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    store.extend(
        [ph.SessionTrace(session=f"s-{i}", task=t.task, turns=t.turns) for i, t in enumerate(train * 200)][:5000]
    )
    model = tmp_path / "traces.models" / "default.model.json.gz"
    with http_server(tmp_path) as (url, _):
        async with Client(url) as client:
            out = await client.call_tool("request_context", {"section": "billing/refunds"})
            assert not out.is_error
        assert not model.exists()  # answered while the fit of 5,000 sessions was still running


WORKFLOWS = {"A": SEQUENCE, "B": ("doc/22", "doc/9", "doc/28"), "C": ("doc/14", "doc/27", "doc/6")}
"""Each tenant's own workflow: what its model, and only its model, prefetches."""


async def record(engine: ph.Engine, tenant: str, n: int) -> None:
    for i in range(n):
        async with engine.session(f"{tenant}-{i}", tenant=tenant, task_type="ops") as session:
            async with session.turn(query=f"{QUERY} {i}") as turn:
                for key in WORKFLOWS[tenant]:
                    await turn.request_context(key)


async def tenant_outcomes(engine: ph.Engine, tenant: str, name: str) -> list[str]:
    async with engine.session(name, tenant=tenant, task_type="ops", record=False) as session:
        async with session.turn(query=QUERY) as turn:
            out = []
            for key in WORKFLOWS[tenant]:
                await asyncio.sleep(0.1)
                out.append((await turn.request_context(key)).outcome)
    return out


async def wait_resident(engine: ph.Engine, tenant: str) -> None:
    deadline = time.monotonic() + 60
    while tenant not in engine.learning.resident() and time.monotonic() < deadline:
        engine.predictor_for(tenant)  # a request of the tenant brings its model back
        await asyncio.sleep(0.02)
    assert tenant in engine.learning.resident(), f"{tenant}'s model never came back"


@pytest.mark.parametrize("persisted", [True, False], ids=["from-model-file", "refitted"])
async def test_tenant_models_are_bounded_and_an_evicted_one_comes_back(tmp_path: Path, persisted: bool) -> None:
    """N + 1 tenants with N = 2 models in memory: the least recently used goes, and returns on its next use."""
    policy = ph.LearningPolicy(
        max_tenant_models=2, refit_delay_s=3600, model_dir=tmp_path / "models" if persisted else None
    )
    async with engine_on(tmp_path / "traces.jsonl", learning=policy) as engine:
        for tenant in WORKFLOWS:
            await record(engine, tenant, 30)
        await engine.learn()  # fits A, B, C in turn: A is evicted
        assert engine.learning.resident() == ["B", "C"]
        fits = engine.learning.fits
        # A graph run of A while evicted must not replace A's fitted model with a new, empty one.
        engine.learning.observe("A", ph.FinishedTurn(request=ph.ContextRequest(task_type="ops"), calls=()))
        assert not getattr(engine.predictor_for("A"), "fitted", True)  # unfitted until the worker brings it back
        await wait_resident(engine, "A")
        assert engine.learning.resident() == ["C", "A"]  # B was the least recently used
        assert (await tenant_outcomes(engine, "A", "a-back"))[1:] == ["hit", "hit"]
        assert engine.learning.fits == fits + (0 if persisted else 1)  # a model file is loaded, not refitted
        assert (await tenant_outcomes(engine, "C", "c"))[1:] == ["hit", "hit"]


async def test_a_start_reads_only_the_newest_max_tenant_models_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cap + N model files: the cap newest are loaded at start, another only on its tenant's first use."""
    store, models = tmp_path / "traces.jsonl", tmp_path / "models"
    async with engine_on(store, learning=ph.LearningPolicy(model_dir=models, refit_delay_s=3600)) as first:
        for tenant in WORKFLOWS:
            await record(first, tenant, 30)
        await first.learn()
    now = time.time()
    for age, tenant in enumerate(["A", "C", "B"]):  # A saved last, then C, then B: not the order of the fits
        os.utime(models / f"{tenant}.model.json.gz", (now - 60 * age, now - 60 * age))
    loaded: list[str] = []
    load = learning_module.load_model

    def counted(predictor: Any, path: str | Path) -> int:
        loaded.append(Path(path).name.split(".")[0])
        return load(predictor, path)

    monkeypatch.setattr(learning_module, "load_model", counted)
    fitted: list[str] = []
    policy = ph.LearningPolicy(model_dir=models, max_tenant_models=1, wait_at_start=False, online=False)
    restarted = engine_on(store, learning=policy)
    restarted.learning.fit = lambda catalog, tenant="default": fitted.append(tenant) or 0  # type: ignore[method-assign]
    async with restarted:
        await wait_resident(restarted, "A")
        assert loaded == ["A"] and restarted.learning.resident() == ["A"]  # B's and C's files are not read
        assert (await tenant_outcomes(restarted, "A", "a"))[1:] == ["hit", "hit"]
        assert fitted == ["A"]  # the start's fit of every tenant: only of the one in memory
        await wait_resident(restarted, "B")  # B's first use loads its file, then fits it (its start fit)
        assert loaded == ["A", "B"] and restarted.learning.resident() == ["B"]
        assert (await tenant_outcomes(restarted, "B", "b"))[1:] == ["hit", "hit"]
        deadline = time.monotonic() + 30
        while fitted != ["A", "B"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert fitted == ["A", "B"] and "C" not in loaded  # C was never used: its file never read


async def test_a_graph_run_that_ends_before_the_restore_is_learned_by_the_loaded_model(tmp_path: Path) -> None:
    """A run that ends before the start's restore keeps what it taught: the loaded model learns it."""
    store, models = tmp_path / "traces.jsonl", tmp_path / "models"
    async with engine_on(store, learning=ph.LearningPolicy(model_dir=models, refit_delay_s=3600)) as first:
        await record(first, "A", 30)
        await first.learn()
    restarted = engine_on(store, learning=ph.LearningPolicy(model_dir=models, wait_at_start=False))
    dag = ph.WorkflowDAG.from_edges([("__start__", "desk"), ("desk", "__end__")], name="g")
    run = ph.FinishedTurn(request=ph.ContextRequest(), calls=(ph.Call(key="doc/17", node="desk"),), workflow=dag)
    restarted.learning.observe("A", run)  # kept: a new model now would be replaced by the file's
    assert not getattr(restarted.predictor_for("A"), "fitted", True)
    assert restarted.learning.restore() == ["A"]
    model = restarted.predictor_for("A")
    assert getattr(model, "fitted", False)  # the persisted fit
    [signal] = getattr(model, "signals", ())
    assert isinstance(signal, ph.WorkflowPredictor) and signal.turns_learned == 1  # the run is not lost


def test_max_tenant_models_must_be_positive() -> None:
    with pytest.raises(ph.ConfigError, match="max_tenant_models"):
        ph.LearningPolicy(max_tenant_models=0)


async def test_a_default_tenant_run_before_the_restore_is_learned_again_after_it(tmp_path: Path) -> None:
    """The default tenant learns a run at once; loading its file replaces that, so the run is applied again."""
    store, models = tmp_path / "traces.jsonl", tmp_path / "models"
    dag = ph.WorkflowDAG.from_edges([("__start__", "desk"), ("desk", "__end__")], name="g")
    run = ph.FinishedTurn(request=ph.ContextRequest(), calls=(ph.Call(key="doc/17", node="desk"),), workflow=dag)
    async with engine_on(store, learning=ph.LearningPolicy(model_dir=models, refit_delay_s=3600)) as first:
        first.learning.observe("default", run)
    assert (models / "default.model.json.gz").exists()  # saved at close: it learned a graph run
    restarted = engine_on(store, learning=ph.LearningPolicy(model_dir=models, wait_at_start=False))
    restarted.learning.observe("default", run)
    [signal] = getattr(restarted.predictor, "signals", ())
    assert isinstance(signal, ph.WorkflowPredictor) and signal.turns_learned == 1  # learned at once
    assert restarted.learning.restore() == ["default"]
    assert signal.turns_learned == 2  # the file's run, and this one again after the load replaced it
