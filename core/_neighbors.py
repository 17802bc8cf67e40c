"""The neighbour predictor: what recorded turns that read like this one did next.

Tasks come in families: "return the speaker and exchange the laptop" and "return all your orders"
are different sentences with the same workflow. The trace predictor knows the workflow only
through the task type and the last calls; this predictor also looks at the words. It finds the
recorded turns whose query is most like the current one (BM25 via bm25s over the training turns'
queries, a bonus for the same task type), lines each up with the calls made so far (the matching
occurrence of the last call), and lets each vote, weighted by similarity, for the call that came
next there and for every call that came after.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._catalog import Catalog, TextIndex
from ._predict import Candidate, PredictionState
from ._scoring import _LRU, Vector, rank, view_of
from ._traces import SessionTrace

__all__ = ["NeighborPredictor"]


@dataclass(frozen=True, slots=True)
class _Turn:
    task_type: str
    keys: tuple[str, ...]


class NeighborPredictor:
    """The next calls of the most similar recorded turns (see the module docstring).

    Args:
        k: how many similar turns vote.
        type_bonus: similarity added for a turn of the same task type (BM25 scores are scaled so
            the best match is 1).

    Example:
        >>> import prehydrate as ph
        >>> catalog = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog
        >>> p = ph.NeighborPredictor()
        >>> p.fit(ph.read_traces(ph.sample_traces_path("train")), catalog)
        >>> request = ph.ContextRequest(query="How do I get a refund?", task_type="billing+refund")
        >>> p.predict(ph.PredictionState(request=request, catalog=catalog), 1)[0].section_id
        'billing/refunds'
    """

    name = "neighbor"

    def __init__(self, *, k: int = 40, type_bonus: float = 0.5) -> None:
        self.k = k
        self.type_bonus = type_bonus
        self._turns: list[_Turn] = []
        self._index = TextIndex([])
        self._lock = threading.Lock()
        self._similar = _LRU()
        self.fitted = False

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Index the queries of the recorded turns that made calls; replaces what was learned."""
        del catalog  # votes are section ids, aligned with whatever catalog a prediction uses
        turns: list[_Turn] = []
        queries: list[str] = []
        for trace in traces:
            for turn in trace.turns:
                keys = tuple(c.key for c in turn.calls)
                if keys:
                    turns.append(_Turn(task_type=trace.task.type, keys=keys))
                    queries.append(turn.query)
        index = TextIndex(queries)
        with self._lock:
            self._turns, self._index = turns, index
            self._similar = _LRU()
        self.fitted = bool(turns)

    def _neighbours(self, query: str, task_type: str) -> list[tuple[int, float]]:
        """The ``k`` most similar recorded turns with their similarity (stable order on ties)."""
        with self._lock:
            turns, index = self._turns, self._index

        def make() -> list[tuple[int, float]]:
            n = len(turns)
            sim = np.zeros(n)
            bm = np.asarray(index.scores(query), dtype=np.float64)
            top = float(bm.max()) if n else 0.0
            if top > 0:
                sim += bm / top
            if task_type:
                sim += self.type_bonus * np.array([t.task_type == task_type for t in turns], dtype=np.float64)
            order = np.lexsort((np.arange(n), -sim))[: self.k]
            return [(int(i), float(sim[i])) for i in order if sim[i] > 0]

        found = self._similar.get((query, task_type), make)
        assert isinstance(found, list)
        return found

    def scores(self, state: PredictionState) -> tuple[Vector, Vector]:
        """Similarity-weighted votes for the next call and for any later call of this turn.

        Both are normalised by the total similarity of the turns that lined up, so they read as
        shares of the neighbours (zeros when none did).
        """
        view = view_of(state.catalog)
        nxt, later = np.zeros(view.n), np.zeros(view.n)
        if not self.fitted:
            return nxt, later
        calls = state.calls
        total = 0.0
        votes_next: dict[int, float] = {}
        votes_later: dict[int, float] = {}  # summed in Python: a few dozen votes, not a numpy op each
        for i, w in self._neighbours(state.request.query, state.request.task_type or ""):
            keys = self._turns[i].keys
            if calls:
                last = calls[-1]
                where = [j for j, key in enumerate(keys) if key == last]
                if not where:
                    continue
                at = where[min(calls.count(last), len(where)) - 1] + 1
            else:
                at = 0
            total += w
            rest = [view.pos[key] for key in keys[at:] if key in view.pos]
            if rest:
                votes_next[rest[0]] = votes_next.get(rest[0], 0.0) + w
                for p in dict.fromkeys(rest):
                    votes_later[p] = votes_later.get(p, 0.0) + w
        if total > 0:
            for out, votes in ((nxt, votes_next), (later, votes_later)):
                if votes:
                    out[list(votes)] = np.fromiter(votes.values(), dtype=np.float64, count=len(votes)) / total
        return nxt, later

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """What the most similar recorded turns called next, excluding sections requested this turn."""
        view = view_of(state.catalog)
        nxt, _ = self.scores(state)
        return rank(nxt, view, k, exclude=state.calls, reason="similar recorded turns called it next")
