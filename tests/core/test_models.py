"""Persisted models: predictions identical after save and load; a bad file is refused, never half-loaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate._scoring import prediction_points

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "tau2"


@pytest.fixture(scope="module")
def catalog() -> ph.Catalog:
    return ph.Engine(sources=[ph.JsonlSource(DATA / "sections.jsonl")]).catalog


@pytest.fixture(scope="module")
def fitted(catalog: ph.Catalog) -> ph.EnsemblePredictor:
    p = ph.EnsemblePredictor()
    p.fit(ph.read_traces(DATA / "train.jsonl"), catalog)
    assert p.fitted
    return p


def predictions(p: ph.Predictor, catalog: ph.Catalog) -> list[list[tuple[str, float]]]:
    out = []
    for trace in ph.read_traces(DATA / "test.jsonl"):
        for point in prediction_points(trace, catalog):
            out.append([(c.section_id, c.probability) for c in p.predict(point.state, 5)])
    return out


def test_a_saved_model_predicts_exactly_the_same_after_loading(
    tmp_path: Path, catalog: ph.Catalog, fitted: ph.EnsemblePredictor
) -> None:
    path = tmp_path / "model.json.gz"
    ph.save_model(fitted, path, sessions=178)
    loaded = ph.EnsemblePredictor()
    assert ph.load_model(loaded, path) == 178
    assert loaded.fitted and loaded.fit_report == fitted.fit_report
    expected = predictions(fitted, catalog)
    assert sum(len(x) for x in expected) > 500
    assert predictions(loaded, catalog) == expected  # same ids, same probabilities, same order


def test_base_predictors_round_trip(tmp_path: Path, catalog: ph.Catalog) -> None:
    traces = ph.read_traces(DATA / "train.jsonl")
    for make in (ph.TracePredictor, ph.UsagePredictor, ph.NeighborPredictor):
        p = make()
        p.fit(traces, catalog)
        ph.save_model(p, tmp_path / "m.json.gz")
        q = make()
        ph.load_model(q, tmp_path / "m.json.gz")
        assert predictions(q, catalog) == predictions(p, catalog), make.__name__


def _doc(path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(gzip.decompress(path.read_bytes()))
    return doc


def _rewrite(path: Path, **changes: object) -> None:
    doc = _doc(path)
    doc.update(changes)
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot gzip at all"),
    "not-json": lambda p: p.write_bytes(gzip.compress(b"{nope")),
    "foreign": lambda p: p.write_bytes(gzip.compress(b'{"hello": 1}')),
    "version": lambda p: _rewrite(p, version=999),
    "predictor": lambda p: _rewrite(p, predictor="TracePredictor"),
    "features": lambda p: _rewrite(p, state={**_doc(p)["state"], "features": ["x"]}),  # type: ignore[dict-item]
    "weights": lambda p: _rewrite(
        p, state={**_doc(p)["state"], "model": {"mean": [1], "scale": [1], "used": [1], "next": [1]}}
    ),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_corrupt_or_incompatible_model_is_refused_in_one_sentence(
    tmp_path: Path, fitted: ph.EnsemblePredictor, how: str
) -> None:
    path = tmp_path / "model.json.gz"
    ph.save_model(fitted, path)
    CORRUPTIONS[how](path)
    fresh = ph.EnsemblePredictor()
    with pytest.raises(ph.ModelFileError) as info:
        ph.load_model(fresh, path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and len(message) < 300
    assert isinstance(info.value, ph.PrehydrateError)
    assert not fresh.fitted  # left as it was: nothing half-loaded


def test_saving_is_atomic_and_leaves_no_temporary_file(tmp_path: Path, fitted: ph.EnsemblePredictor) -> None:
    path = tmp_path / "models" / "model.json.gz"
    ph.save_model(fitted, path)
    ph.save_model(fitted, path)
    assert [p.name for p in path.parent.iterdir()] == ["model.json.gz"]


DAG = ph.WorkflowDAG.from_edges(
    [("__start__", "r"), ("r", "a", True), ("r", "b", True), ("a", "__end__"), ("b", "__end__")], name="g"
)


def graph_runs(p: ph.EnsemblePredictor, n: int) -> None:
    """Runs of a graph whose router always takes ``a``: what only online learning can know."""
    for _ in range(n):
        call = ph.Call(key="a/1", node="a")
        p.observe_turn(ph.FinishedTurn(request=ph.ContextRequest(), calls=(call,), workflow=DAG, visited=("r", "a")))


def branch_a(p: ph.EnsemblePredictor) -> float:
    [signal] = p.signals
    assert isinstance(signal, ph.WorkflowPredictor)
    return signal.branch_probability("r", "a", ["a", "b"], dag=DAG)


def test_the_ensemble_saves_what_its_workflow_signal_learned_online(tmp_path: Path) -> None:
    p = ph.EnsemblePredictor()
    graph_runs(p, 4)
    ph.save_model(p, tmp_path / "m.json.gz")
    loaded = ph.EnsemblePredictor()
    ph.load_model(loaded, tmp_path / "m.json.gz")
    assert branch_a(loaded) == branch_a(p) == (4 + 0.5) / (4 + 1)


def test_a_model_file_from_before_signals_were_saved_still_loads(
    tmp_path: Path, catalog: ph.Catalog, fitted: ph.EnsemblePredictor
) -> None:
    path = tmp_path / "old.json.gz"
    ph.save_model(fitted, path, sessions=178)
    state = _doc(path)["state"]
    assert isinstance(state, dict) and "signals" in state
    _rewrite(path, state={k: v for k, v in state.items() if k != "signals"})  # the layout older files have
    loaded = ph.EnsemblePredictor()
    graph_runs(loaded, 2)  # what its signal learned meanwhile is kept: the file has nothing to replace it with
    assert ph.load_model(loaded, path) == 178
    assert loaded.fitted and predictions(loaded, catalog) == predictions(fitted, catalog)
    assert branch_a(loaded) == (2 + 0.5) / (2 + 1)


def test_a_model_file_saved_with_other_signals_loads_without_them(tmp_path: Path) -> None:
    p = ph.EnsemblePredictor()
    graph_runs(p, 3)
    ph.save_model(p, tmp_path / "m.json.gz")
    other = ph.EnsemblePredictor(signals=[ph.LexicalPredictor()])
    ph.load_model(other, tmp_path / "m.json.gz")  # no error: the signals do not match, they are left alone
    none = ph.EnsemblePredictor(signals=[])
    ph.load_model(none, tmp_path / "m.json.gz")
    two = ph.EnsemblePredictor(signals=[ph.WorkflowPredictor(), ph.WorkflowPredictor()])
    ph.load_model(two, tmp_path / "m.json.gz")
    assert [branch_a(ph.EnsemblePredictor(signals=[s])) for s in two.signals] == [0.5, 0.5]


def test_a_damaged_signal_state_refuses_the_file_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "m.json.gz"
    p = ph.EnsemblePredictor()
    graph_runs(p, 3)
    ph.save_model(p, path)
    state = _doc(path)["state"]
    assert isinstance(state, dict)
    _rewrite(path, state={**state, "signals": [{"class": "WorkflowPredictor", "state": {"version": 1}}]})
    fresh = ph.EnsemblePredictor()
    with pytest.raises(ph.ModelFileError) as info:
        ph.load_model(fresh, path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert branch_a(fresh) == 0.5
