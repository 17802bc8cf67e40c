"""The contract every predictor keeps, as a test base class users subclass.

A predictor test subclasses :class:`PredictorConformance` and provides the ``make_predictor``
fixture (a factory of fresh, unfitted predictors). The tests play the bundled sample sessions'
prediction points (turn starts and after each call) through ``predict`` and check the shape of
the answer: at most ``k`` candidates, ids the catalog holds, no duplicates, probabilities in
[0, 1], the same answer twice (the list's order is the rank: a predictor may rank by more than the
probability, as ReferencePredictor puts task-tagged sections first); a predictor that also learns
(:class:`~prehydrate.Learner`) is fitted on the sample training sessions, and fitting again replaces rather than adds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

import prehydrate as ph

__all__ = ["PredictorConformance"]


def sample_catalog() -> ph.Catalog:
    """The bundled sample corpus as a catalog (what an engine over its JSONL file would hold)."""
    return ph.Catalog(ph.JsonlSource(ph.sample_sections_path()).list_sections())


def prediction_points(catalog: ph.Catalog, traces: list[ph.SessionTrace], limit: int) -> Iterator[ph.PredictionState]:
    """The states a live turn asks about: each turn's start and the moment after each of its calls."""
    made = 0
    for trace in traces:
        history: list[tuple[str, ...]] = []
        queries: list[str] = []
        for turn in trace.turns:
            request = ph.ContextRequest(
                query=turn.query, task_type=trace.task.type or None, task_query=trace.task.query, tags=trace.task.tags
            )
            keys = tuple(c.key for c in turn.calls)
            for n in range(len(keys) + 1):
                yield ph.PredictionState(
                    request=request,
                    catalog=catalog,
                    calls=keys[:n],
                    history=tuple(history),
                    history_queries=tuple(queries),
                )
                made += 1
                if made >= limit:
                    return
            history.append(keys)
            queries.append(turn.query)


class PredictorConformance:
    """Inherit, then provide ``make_predictor``; every test here runs for the subclass."""

    points: int = 60
    """How many prediction points of the sample test sessions each test plays."""

    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        """A factory of fresh, unfitted predictors; subclasses override it."""
        raise NotImplementedError("a PredictorConformance subclass provides the make_predictor fixture")

    @pytest.fixture(scope="class")
    def catalog(self) -> ph.Catalog:
        return sample_catalog()

    @pytest.fixture(scope="class")
    def train(self) -> list[ph.SessionTrace]:
        return ph.read_traces(ph.sample_traces_path("train"))

    @pytest.fixture(scope="class")
    def test_points(self, catalog: ph.Catalog) -> list[ph.PredictionState]:
        return list(prediction_points(catalog, ph.read_traces(ph.sample_traces_path("test")), self.points))

    @pytest.fixture
    def fitted(
        self, make_predictor: Callable[[], ph.Predictor], catalog: ph.Catalog, train: list[ph.SessionTrace]
    ) -> ph.Predictor:
        predictor = make_predictor()
        if isinstance(predictor, ph.Learner):
            predictor.fit(train, catalog)
        return predictor

    def check_answer(self, cands: list[ph.Candidate], state: ph.PredictionState, k: int) -> None:
        """One answer of ``predict(state, k)`` keeps the shape every caller relies on."""
        assert isinstance(cands, list), f"predict must return a list, got {type(cands).__name__}"
        assert len(cands) <= k, f"predict returned {len(cands)} candidates for k={k}"
        ids = [c.section_id for c in cands]
        assert len(ids) == len(set(ids)), f"duplicate candidates: {ids}"
        for c in cands:
            assert isinstance(c, ph.Candidate), f"predict must return Candidate objects, got {type(c).__name__}"
            assert c.section_id in state.catalog, f"{c.section_id!r} is not in the catalog"
            assert math.isfinite(c.probability) and 0.0 <= c.probability <= 1.0, (
                f"{c.section_id}: probability {c.probability} is not in [0, 1]"
            )

    def test_implements_the_predictor_protocol(self, make_predictor: Callable[[], ph.Predictor]) -> None:
        assert isinstance(make_predictor(), ph.Predictor), "does not implement the Predictor protocol"

    def test_predicts_before_any_fitting(
        self, make_predictor: Callable[[], ph.Predictor], test_points: list[ph.PredictionState]
    ) -> None:
        predictor = make_predictor()  # a cold start: an engine predicts before its first fit
        for state in test_points[:10]:
            self.check_answer(predictor.predict(state, 3), state, 3)

    @pytest.mark.parametrize("k", [1, 3, 10])
    def test_answers_keep_their_shape_for_every_k(
        self, fitted: ph.Predictor, test_points: list[ph.PredictionState], k: int
    ) -> None:
        for state in test_points:
            self.check_answer(fitted.predict(state, k), state, k)

    def test_k_zero_asks_for_nothing(self, fitted: ph.Predictor, test_points: list[ph.PredictionState]) -> None:
        assert fitted.predict(test_points[0], 0) == []

    def test_the_same_state_gets_the_same_answer(
        self, fitted: ph.Predictor, test_points: list[ph.PredictionState]
    ) -> None:
        for state in test_points:
            assert fitted.predict(state, 3) == fitted.predict(state, 3), "predict must be deterministic"

    def test_an_empty_catalog_gets_no_candidates(self, fitted: ph.Predictor) -> None:
        state = ph.PredictionState(request=ph.ContextRequest(query="refund"), catalog=ph.Catalog([]))
        assert fitted.predict(state, 3) == []

    def test_fitting_again_replaces_what_was_learned(
        self,
        make_predictor: Callable[[], ph.Predictor],
        fitted: ph.Predictor,
        catalog: ph.Catalog,
        train: list[ph.SessionTrace],
        test_points: list[ph.PredictionState],
    ) -> None:
        if not isinstance(fitted, ph.Learner):
            return  # nothing to fit
        fitted.fit(train, catalog)  # a second fit on the same sessions: the same model, not counts doubled
        once = make_predictor()
        assert isinstance(once, ph.Learner)
        once.fit(train, catalog)
        assert isinstance(once, ph.Predictor)
        for state in test_points:
            assert fitted.predict(state, 3) == once.predict(state, 3), "fit must replace what was learned"
