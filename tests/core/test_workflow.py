"""The core workflow predictor: per-graph counts, the graph as an input, a refit that never races."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from typing import overload

import pytest

import prehydrate as ph

IDS = ["a/1", "a/2", "b/1", "b/2"]
DAG = ph.WorkflowDAG.from_edges(
    [("__start__", "r"), ("r", "a", True), ("r", "b", True), ("a", "__end__"), ("b", "__end__")], name="g"
)


def catalog() -> ph.Catalog:
    return ph.Catalog(ph.MockSource(lambda sid, scope: sid, IDS).list_sections())


def state(cat: ph.Catalog, dag: ph.WorkflowDAG | None = DAG, query: str = "") -> ph.PredictionState:
    return ph.PredictionState(request=ph.ContextRequest(query=query), catalog=cat, workflow=dag)


def finished(key: str, node: str, dag: ph.WorkflowDAG | None = DAG, query: str = "") -> ph.FinishedTurn:
    return ph.FinishedTurn(request=ph.ContextRequest(query=query), calls=(ph.Call(key=key, node=node),), workflow=dag)


def test_the_graph_comes_with_the_prediction_and_each_graph_keeps_its_counts() -> None:
    cat = catalog()
    p = ph.WorkflowPredictor()
    other = ph.WorkflowDAG.from_edges(DAG_EDGES := [(e.source, e.target, e.conditional) for e in DAG.edges], name="h")
    assert DAG_EDGES and p.predict(state(cat, dag=None), 2) == []  # no graph: the signal stays silent
    for _ in range(3):
        p.observe_turn(finished("a/1", "a"))
        p.observe_turn(finished("b/2", "b", dag=other))
    assert [c.section_id for c in p.predict(state(cat), 1)] == ["a/1"]
    assert [c.section_id for c in p.predict(state(cat, dag=other), 1)] == ["b/2"]


def test_words_of_the_query_lead_the_branch_and_the_sections() -> None:
    cat = catalog()
    p = ph.WorkflowPredictor()
    for _ in range(2):
        p.observe_turn(finished("a/1", "a", query="refund my invoice"))
        p.observe_turn(finished("b/1", "b", query="webhook failing"))
    assert [c.section_id for c in p.predict(state(cat, query="webhook is down"), 1)] == ["b/1"]
    assert [c.section_id for c in p.predict(state(cat, query="a refund"), 1)] == ["a/1"]


class _Blocking(Sequence[ph.SessionTrace]):
    """Traces whose iteration stops halfway until released: a fit caught in the middle."""

    def __init__(self, traces: list[ph.SessionTrace]) -> None:
        self.traces = traces
        self.halfway = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[ph.SessionTrace]:
        for i, t in enumerate(self.traces):
            if i == 1:
                self.halfway.set()
                assert self.release.wait(10)
            yield t

    def __len__(self) -> int:
        return len(self.traces)

    @overload
    def __getitem__(self, i: int) -> ph.SessionTrace: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[ph.SessionTrace]: ...
    def __getitem__(self, i: int | slice) -> ph.SessionTrace | Sequence[ph.SessionTrace]:
        return self.traces[i]


def test_a_refit_in_a_worker_thread_neither_blanks_predictions_nor_loses_runs_observed_meanwhile() -> None:
    cat = catalog()
    p = ph.WorkflowPredictor(DAG, rate_smoothing=0.0)
    for _ in range(3):
        p.observe_turn(finished("a/1", "a"))
    trace = ph.SessionTrace(
        session="s", task=ph.TaskSpec(), turns=(ph.TurnTrace(calls=(ph.Call(key="a/2", node="a"),)),)
    )
    blocking = _Blocking([trace, trace])
    worker = threading.Thread(target=p.fit, args=(blocking, cat))
    worker.start()
    assert blocking.halfway.wait(10)
    assert [c.section_id for c in p.predict(state(cat), 1)] == ["a/1"]  # the old counts serve meanwhile
    p.observe_turn(finished("b/1", "b"))  # a run that ends during the fit
    blocking.release.set()
    worker.join(10)
    assert p.section_probabilities("b", dag=DAG) == {"b/1": 1.0}  # kept
    # What the traces teach (a/2, graph-less) is new; the graph runs observed online (a/1) are kept,
    # the graph's own level backing off to the traces' one: 3 runs, weight 3 / (3 + backoff 2).
    assert p.section_probabilities("a", dag=DAG) == {"a/1": 0.6, "a/2": 0.4}


def recorded(*runs: tuple[str, str]) -> list[ph.SessionTrace]:
    """The sessions of graph runs as the TraceStore records them: calls with their node, no graph."""
    return [
        ph.SessionTrace(session=f"s-{i}", turns=(ph.TurnTrace(calls=(ph.Call(key=key, node=node),)),))
        for i, (key, node) in enumerate(runs)
    ]


def test_graph_runs_learned_online_survive_refits_and_are_counted_once() -> None:
    """A refit on traces that hold the same runs keeps the online counts, however often it runs.

    The traces carry neither the graph nor the router's choices, so a fit cannot recount them: the
    branch probability comes from the runs observed online only, and refitting must not lose it nor
    add the recorded copies of those runs to it.
    """
    cat = catalog()
    runs = [("a/1", "a")] * 3 + [("b/1", "b")]
    fitted_first = ph.WorkflowPredictor()
    fitted_first.fit(recorded(*runs), cat)
    observed_first = ph.WorkflowPredictor()
    for key, node in runs:
        fitted_first.observe_turn(finished(key, node))
        observed_first.observe_turn(finished(key, node))
    for _ in range(2):  # a refit, then another: same counts each time
        observed_first.fit(recorded(*runs), cat)
        for p in (fitted_first, observed_first):
            assert p.branch_probability("r", "a", ["a", "b"], dag=DAG) == (3 + 0.5) / (4 + 1)
        assert observed_first.section_probabilities("a", dag=DAG) == fitted_first.section_probabilities("a", dag=DAG)
        assert observed_first.predict(state(cat), 4) == fitted_first.predict(state(cat), 4)
        assert observed_first.turns_learned == fitted_first.turns_learned == 4 + 4


def taught() -> ph.WorkflowPredictor:
    """A predictor that learned from traces (task-typed, with words) and from graph runs observed online."""
    p = ph.WorkflowPredictor()
    traces = recorded(("a/2", "a"), ("b/2", "b"))
    traces = [dataclasses.replace(t, task=ph.TaskSpec(type="billing")) for t in traces]
    p.fit(traces, catalog())
    for key, node, query in [("a/1", "a", "refund my invoice")] * 3 + [("b/1", "b", "webhook failing")]:
        p.observe_turn(
            ph.FinishedTurn(
                request=ph.ContextRequest(query=query, task_type="billing"),
                calls=(ph.Call(key=key, node=node), ph.Call(key="a/2", node=node)),
                workflow=DAG,
                visited=("r", node),
            )
        )
    return p


def test_a_saved_state_restores_the_online_graph_counts_exactly() -> None:
    """Per-graph counts learned online (no trace can teach them again) survive a JSON round trip."""
    cat = catalog()
    p = taught()
    state = json.loads(json.dumps(p.state_dict()))  # what a model file holds
    q = ph.WorkflowPredictor()
    q.load_state(state)
    assert q.turns_learned == p.turns_learned == 2 + 4
    for task, words in [(None, ()), ("billing", ()), ("billing", ("webhook",)), ("other", ("refund",))]:
        assert q.branch_probability("r", "b", ["a", "b"], task, dag=DAG, words=words) == p.branch_probability(
            "r", "b", ["a", "b"], task, dag=DAG, words=words
        )
        for node, last in [("a", None), ("a", "a/1"), ("b", "b/1")]:
            assert q.section_probabilities(node, last, task, dag=DAG, words=words) == p.section_probabilities(
                node, last, task, dag=DAG, words=words
            )
    for query in ["", "refund", "webhook is down"]:
        s = ph.PredictionState(request=ph.ContextRequest(query=query, task_type="billing"), catalog=cat, workflow=DAG)
        assert q.predict(s, 4) == p.predict(s, 4)
    assert q.branch_probability("r", "a", ["a", "b"], dag=DAG) == (3 + 0.5) / (4 + 1)  # learned, not uniform
    assert q.state_dict() == state
    q.observe_turn(finished("b/1", "b"))  # the restored counts go on learning
    assert q.turns_learned == p.turns_learned + 1


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"version": 99},
        {"version": 1, "traced": {}, "graphs": {}},
        {"version": 1, "traced": {"turns": -1}},
        "rows of the wrong length",
        "a scope that is not a string",
        "counts that are not integers",
    ],
)
def test_a_malformed_state_is_refused_and_changes_nothing(broken: object) -> None:
    p = taught()
    good = p.state_dict()
    if isinstance(broken, str):
        rows = good["graphs"]["branch"]
        row = {
            "rows of the wrong length": rows[0][1:],
            "a scope that is not a string": [7, *rows[0][1:]],
            "counts that are not integers": [*rows[0][:-1], {"a": "3"}],
        }[broken]
        broken = {**good, "graphs": {**good["graphs"], "branch": [row]}}
    before = p.state_dict()
    with pytest.raises(ValueError):
        p.load_state(broken)  # type: ignore[arg-type]
    assert p.state_dict() == before
