"""Grouped validation: every fold used inside fitting keeps each task's sessions on one side."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import prehydrate as ph
from prehydrate._validation import group_of, grouped_folds


def _trace(i: int, ttype: str, query: str, group: str) -> ph.SessionTrace:
    return ph.SessionTrace(
        session=f"s{i}",
        task=ph.TaskSpec(type=ttype, query=query),
        turns=(ph.TurnTrace(query=query, calls=(ph.Call(key="a"),)),),
        group=group,
    )


_session = st.tuples(
    st.sampled_from(["billing", "api", ""]),
    st.sampled_from(["q1", "q2", "q3", ""]),
    st.sampled_from(["", "", "g1", "g2"]),
)


@settings(max_examples=200, deadline=None)
@given(sessions=st.lists(_session, max_size=60), folds=st.integers(1, 7), seed=st.integers(0, 2**32 - 1))
def test_grouped_folds_keep_every_group_on_one_side(
    sessions: list[tuple[str, str, str]], folds: int, seed: int
) -> None:
    traces = [_trace(i, *s) for i, s in enumerate(sessions)]
    fold_of = grouped_folds(traces, folds, seed)
    assert len(fold_of) == len(traces)
    assert all(0 <= f < folds for f in fold_of)
    side: dict[str, int] = {}
    for t, f in zip(traces, fold_of, strict=True):
        assert side.setdefault(group_of(t), int(f)) == f  # a group never straddles two folds
    # Balanced: no fold is short of sessions while another holds more than one group's worth extra.
    sizes = [int((fold_of == f).sum()) for f in range(folds)]
    largest = max((sum(1 for t in traces if group_of(t) == g) for g in side), default=0)
    assert max(sizes, default=0) - min(sizes, default=0) <= largest
    assert (grouped_folds(traces, folds, seed) == fold_of).all()  # seeded: the same deal again


def test_the_group_field_overrides_the_task_and_round_trips(tmp_path: Path) -> None:
    a, b = _trace(0, "billing", "q1", "family"), _trace(1, "api", "q2", "family")
    assert group_of(a) == group_of(b) != group_of(_trace(2, "billing", "q1", ""))
    assert group_of(_trace(3, "billing", "q1", "")) == group_of(_trace(4, "billing", "q1", ""))
    assert a.to_json()["group"] == "family" and "group" not in _trace(5, "x", "y", "").to_json()
    path = tmp_path / "traces.jsonl"
    ph.write_traces(path, [a, _trace(5, "x", "y", "")])
    assert ph.read_traces(path) == [a, _trace(5, "x", "y", "")]
    path.write_text('{"session": "s", "group": 3, "turns": []}\n', encoding="utf-8")
    try:
        ph.read_traces(path)
    except ph.MalformedInputError as exc:
        assert "group" in str(exc) and f"{path}:1" in str(exc)
    else:
        raise AssertionError("a non-string group was accepted")
