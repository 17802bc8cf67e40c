"""The reference predictor: the simple baseline every default must beat on every dataset.

It is deliberately small and fitted with counts only, so that a learned predictor that loses to it
is plainly mis-fitted rather than short of data:

1. an order-1 Markov model: the session's previous section -> the next one, counted per task type,
   backing off to the counts of all task types when the task type never saw that previous section
   (at a session's start the previous section is a start symbol);
2. BM25 of the turn's query plus the task's query over the section texts, as a distribution;
3. the blend ``markov_weight * P(next | previous) + (1 - markov_weight) * bm25 / sum(bm25)``;
4. candidates sharing a tag with the task's tags are ranked first, then by the blend, then by
   document order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ._catalog import Catalog
from ._predict import Candidate, PredictionState
from ._scoring import Vector, view_of
from ._traces import SessionTrace

__all__ = ["ReferencePredictor"]

START = "\x00start"
"""The previous section of a session's first call."""


class ReferencePredictor:
    """Order-1 Markov per task type (back-off to all types) + BM25, task tags first; counts only.

    Args:
        markov_weight: the Markov share of the blend (the BM25 share is the rest).

    Example:
        >>> import prehydrate as ph
        >>> catalog = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog
        >>> p = ph.ReferencePredictor()
        >>> p.fit(ph.read_traces(ph.sample_traces_path("train")), catalog)
        >>> request = ph.ContextRequest(query="How do I get a refund?", task_type="billing+refund")
        >>> p.predict(ph.PredictionState(request=request, catalog=catalog), 1)[0].section_id
        'billing/refunds'
    """

    name = "reference"

    def __init__(self, *, markov_weight: float = 0.5) -> None:
        self.markov_weight = markov_weight
        self._typed: dict[tuple[str, str], dict[str, int]] = {}
        self._any: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Count (previous section, next section) pairs per task type and overall."""
        typed: dict[tuple[str, str], dict[str, int]] = {}
        overall: dict[str, dict[str, int]] = {}
        for trace in traces:
            prev = START
            for key in trace.keys:
                for row in (typed.setdefault((trace.task.type, prev), {}), overall.setdefault(prev, {})):
                    row[key] = row.get(key, 0) + 1
                prev = key
        with self._lock:
            self._typed, self._any = typed, overall

    def markov(self, state: PredictionState) -> Vector:
        """P(next section | the session's previous one), per task type or else over all types."""
        view = view_of(state.catalog)
        prev = state.last if state.last is not None else START
        with self._lock:
            row = self._typed.get((state.request.task_type or "", prev)) or self._any.get(prev) or {}
        p = np.zeros(view.n)
        for key, count in row.items():
            if key in view.pos:
                p[view.pos[key]] = count
        total = float(p.sum())
        return p / total if total > 0 else p

    def lexical(self, state: PredictionState) -> Vector:
        """BM25 of the turn's query plus the task's query, normalised to sum 1."""
        view = view_of(state.catalog)
        req = state.request
        text = req.query if req.task_query in ("", req.query) else f"{req.query} {req.task_query}"
        s = view.bm25(text)
        total = float(s.sum())
        return s / total if total > 0 else np.zeros(view.n)

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """The blend's best sections not yet requested in this turn, the task's tags first."""
        view = view_of(state.catalog)
        if k <= 0 or view.n == 0:
            return []
        score = self.markov_weight * self.markov(state) + (1.0 - self.markov_weight) * self.lexical(state)
        drop = view.positions(state.calls)
        if drop:
            score[drop] = 0.0
        tag = view.tag_mask(state.request.tags) if state.request.tags else np.zeros(view.n)
        order = np.lexsort((np.arange(view.n), -score, -tag))  # tag match, then score, then document order
        out: list[Candidate] = []
        for i in order:
            if len(out) >= k:
                break
            if score[i] > 0.0:
                reason = "reference: Markov + BM25" + (", task tag" if tag[i] else "")
                out.append(Candidate(section_id=view.ids[i], probability=float(min(score[i], 1.0)), reason=reason))
        return out
