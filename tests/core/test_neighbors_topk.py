"""The neighbour predictor's top-k retrieval ranks exactly like scoring and sorting every recorded turn."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import prehydrate as ph
from prehydrate._catalog import TextIndex

WORDS = ["refund", "invoice", "plan", "seat", "login", "export", "alert", "team", "card", "api"]


def brute_force(turns: list[tuple[str, str]], query: str, task_type: str, k: int, bonus: float) -> list[int]:
    """The former algorithm: score every turn, add the type bonus, lexsort all of them."""
    n = len(turns)
    bm = np.asarray(TextIndex([q for q, _ in turns]).scores(query), dtype=np.float64)
    sim = np.zeros(n)
    top = float(bm.max()) if n else 0.0
    if top > 0:
        sim += bm / top
    if task_type:
        sim += bonus * np.array([t == task_type for _, t in turns], dtype=np.float64)
    order = np.lexsort((np.arange(n), -sim))[:k]
    return [int(i) for i in order if sim[i] > 0]


turn = st.tuples(st.lists(st.sampled_from(WORDS), min_size=0, max_size=4).map(" ".join), st.sampled_from("abc"))


@settings(max_examples=60, deadline=None)
@given(
    turns=st.lists(turn, min_size=1, max_size=40),
    query=st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join),
    task_type=st.sampled_from(["", "a", "b", "z"]),
    k=st.integers(1, 12),
)
def test_top_k_neighbours_equal_the_full_sort(turns: list[tuple[str, str]], query: str, task_type: str, k: int) -> None:
    catalog = ph.Catalog([ph.Section(id=f"s{i}", title=f"S{i}") for i in range(len(turns))])
    traces = [
        ph.SessionTrace(
            session=f"t{i}",
            task=ph.TaskSpec(type=ttype),
            turns=(ph.TurnTrace(query=q, calls=(ph.Call(key=f"s{i}"),)),),
        )
        for i, (q, ttype) in enumerate(turns)
    ]
    p = ph.NeighborPredictor(k=k)
    p.fit(traces, catalog)
    got = [keys[0] for keys, _ in p._neighbours(query, task_type)]
    assert got == [f"s{i}" for i in brute_force(turns, query, task_type, k, p.type_bonus)]
