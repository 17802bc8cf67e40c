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
from typing import Any

import numpy as np
import numpy.typing as npt

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
        self._queries: list[str] = []
        self._by_type: dict[str, npt.NDArray[np.intp]] = {}
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
        self._install(turns, queries)

    def fresh(self) -> NeighborPredictor:
        """An unfitted predictor configured like this one (another tenant's, see ``LearningPolicy``)."""
        return NeighborPredictor(k=self.k, type_bonus=self.type_bonus)

    def state_dict(self) -> dict[str, Any]:
        """The recorded turns (task type, calls, query) as JSON-able data; the index is rebuilt on load."""
        with self._lock:
            turns, queries = self._turns, self._queries
        return {"turns": [[t.task_type, list(t.keys), q] for t, q in zip(turns, queries, strict=True)]}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (validated before anything is replaced)."""
        turns: list[_Turn] = []
        queries: list[str] = []
        for ttype, keys, query in state["turns"]:
            if not isinstance(ttype, str) or not isinstance(query, str) or not all(isinstance(k, str) for k in keys):
                raise TypeError("a recorded turn must be [task type, [section ids], query]")
            turns.append(_Turn(task_type=ttype, keys=tuple(keys)))
            queries.append(query)
        self._install(turns, queries)

    def _install(self, turns: list[_Turn], queries: list[str]) -> None:
        index = TextIndex(queries)
        rows: dict[str, list[int]] = {}
        for i, t in enumerate(turns):
            rows.setdefault(t.task_type, []).append(i)
        by_type = {ttype: np.asarray(r, dtype=np.intp) for ttype, r in rows.items()}
        with self._lock:
            self._turns, self._queries, self._index, self._by_type = turns, queries, index, by_type
            self._similar = _LRU()
        self.fitted = bool(turns)

    def _neighbours(self, query: str, task_type: str) -> list[tuple[tuple[str, ...], float]]:
        """The ``k`` most similar recorded turns with their similarity (stable order on ties).

        Top-k retrieval: one vectorised pass selects the turns at or above the k-th similarity
        (``np.partition``), and only those are sorted, so a query costs O(turns) numpy work and
        no Python loop over the recorded turns (a fit asks this for every distinct query).
        """
        with self._lock:  # one consistent snapshot: a refit may swap everything in meanwhile
            turns, index, similar = self._turns, self._index, self._similar
            same = self._by_type.get(task_type) if task_type else None
        n = len(turns)

        def make() -> list[tuple[int, float]]:
            if n == 0:
                return []
            sim = np.asarray(index.scores(query), dtype=np.float64)
            top = float(sim.max())
            sim = sim / top if top > 0 else np.zeros(n)
            if same is not None:
                sim[same] += self.type_bonus
            k = min(self.k, n)
            kth = np.partition(sim, n - k)[n - k]
            cand = np.flatnonzero((sim >= kth) & (sim > 0))
            order = cand[np.lexsort((cand, -sim[cand]))][: self.k]
            return [(turns[i].keys, float(sim[i])) for i in order]

        found = similar.get((query, task_type), make)
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
        for keys, w in self._neighbours(state.request.query, state.request.task_type or ""):
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
