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
