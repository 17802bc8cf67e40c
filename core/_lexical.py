"""Lexical predictors: what the words of the conversation point at.

- :class:`LexicalPredictor` (the "topic" predictor) scores sections with BM25 (bm25s, through
  :meth:`Catalog.scores`) against the turn's query, the task's query and the session's recent
  messages, then re-ranks by the task's tags.
- :class:`UsagePredictor` learns from recorded traces which words of a turn's query were followed by
  which sections. Users rarely name a section the way its text does ("can I get my money back" is
  the refund policy), so the words that *preceded* a section in real sessions are better evidence
  than the words *in* it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._predict import Candidate, PredictionState
from ._scoring import CatalogView, Vector, rank, request_tags, view_of
from ._traces import SessionTrace

__all__ = ["LexicalPredictor", "UsagePredictor"]


class LexicalPredictor:
    """BM25 of the conversation's words against section titles and text, narrowed by tags.

    Args:
        turn_weight: weight of the turn's own query.
        task_weight: weight of the task's query (the session's first message) in later turns.
        history_weight: weight of each of the last ``history_turns`` messages, halved per step back.
        history_turns: how many earlier messages count.
        off_tag: multiplier for sections sharing no tag with the request (when some section does).
    """

    name = "lexical"

    def __init__(
        self,
        *,
        turn_weight: float = 1.0,
        task_weight: float = 0.5,
        history_weight: float = 0.3,
        history_turns: int = 2,
        off_tag: float = 0.3,
    ) -> None:
        self.turn_weight = turn_weight
        self.task_weight = task_weight
        self.history_weight = history_weight
        self.history_turns = history_turns
        self.off_tag = off_tag

    def scores(self, state: PredictionState) -> Vector:
        """Combined BM25 score per section, normalised to sum 1 (zeros when nothing matches)."""
        view = view_of(state.catalog)
        req = state.request
        s = self.turn_weight * _unit(view.bm25(req.query))
        if req.task_query and req.task_query != req.query:
            s = s + self.task_weight * _unit(view.bm25(req.task_query))
        w = self.history_weight
        for q in reversed(state.history_queries[-self.history_turns :]):
            if q and q != req.query and q != req.task_query:
                s = s + w * _unit(view.bm25(q))
            w /= 2
        tags = request_tags(req)
        if tags:
            mask = view.tag_mask(tags)
            if mask.any():
                s = s * (mask + self.off_tag * (1.0 - mask))
        total = float(s.sum())
        return s / total if total > 0 else s

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Sections matching the conversation's words best, excluding those requested this turn."""
        view = view_of(state.catalog)
        return rank(self.scores(state), view, k, exclude=state.calls, reason="matches the conversation's words")


def _unit(x: Vector) -> Vector:
    """Scale so the best score is 1: queries of different lengths then weigh alike."""
    m = float(x.max()) if len(x) else 0.0
    return x / m if m > 0 else x


class UsagePredictor:
    """Which sections followed which query words in recorded sessions.

    For every training turn, each distinct (stemmed) word of the turn's query is counted towards
    every section called in that turn. A query then scores a section by averaging, over its known
    words weighted by inverse turn frequency, the smoothed P(section | word).

    Args:
        smoothing: pseudo-counts of the section prior mixed into each word's distribution.
        history_weight: weight of the previous turn's query (users say "and what about ...").
    """

    name = "usage"

    def __init__(self, *, smoothing: float = 1.0, history_weight: float = 0.25) -> None:
        self.smoothing = smoothing
        self.history_weight = history_weight
        self._words: dict[str, dict[str, float]] = {}
        self._turns = 0
        self._prior: dict[str, float] = {}
        self._compiled: tuple[CatalogView, dict[str, tuple[Vector, float]], Vector] | None = None
        self._lock = threading.Lock()
        self.fitted = False

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Count query words against the sections of the same turn; replaces what was learned."""
        view = view_of(catalog)
        words: dict[str, dict[str, float]] = {}
        prior: dict[str, float] = {}
        turns = 0
        for trace in traces:
            for turn in trace.turns:
                keys = list(dict.fromkeys(c.key for c in turn.calls))
                if not keys:
                    continue
                turns += 1
                for key in keys:
                    prior[key] = prior.get(key, 0.0) + 1.0
                for w in view.tokens(turn.query):
                    row = words.setdefault(w, {})
                    row["\x00turns"] = row.get("\x00turns", 0.0) + 1.0
                    for key in keys:
                        row[key] = row.get(key, 0.0) + 1.0
        with self._lock:
            self._words, self._prior, self._turns = words, prior, turns
            self._compiled = None
        self.fitted = turns > 0

    def fresh(self) -> UsagePredictor:
        """An unfitted predictor configured like this one (another tenant's, see ``LearningPolicy``)."""
        return UsagePredictor(smoothing=self.smoothing, history_weight=self.history_weight)

    def state_dict(self) -> dict[str, Any]:
        """The fitted word and prior counts as JSON-able data."""
        with self._lock:
            return {"words": self._words, "prior": self._prior, "turns": self._turns}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (validated before anything is replaced)."""
        words = {str(w): {str(k): float(c) for k, c in row.items()} for w, row in state["words"].items()}
        prior = {str(k): float(c) for k, c in state["prior"].items()}
        turns = int(state["turns"])
        with self._lock:
            self._words, self._prior, self._turns = words, prior, turns
            self._compiled = None
        self.fitted = turns > 0

    def _tables(self, view: CatalogView) -> tuple[dict[str, tuple[Vector, float]], Vector]:
        with self._lock:
            if self._compiled is not None and self._compiled[0] is view:
                return self._compiled[1], self._compiled[2]
            prior = np.zeros(view.n)
            for key, c in self._prior.items():
                if key in view.pos:
                    prior[view.pos[key]] = c
            total = float(prior.sum())
            prior = prior / total if total > 0 else prior
            table: dict[str, tuple[Vector, float]] = {}
            for w, row in self._words.items():
                n_turns = row["\x00turns"]
                vec = np.zeros(view.n)
                for key, c in row.items():
                    if key in view.pos:
                        vec[view.pos[key]] = c
                p = (vec + self.smoothing * prior) / (n_turns + self.smoothing)
                idf = math.log(1.0 + self._turns / n_turns)
                table[w] = (p, idf)
            self._compiled = (view, table, prior)
            return table, prior

    def _query_scores(self, view: CatalogView, table: dict[str, tuple[Vector, float]], query: str) -> Vector | None:
        acc: Vector | None = None
        weight = 0.0
        for w in view.tokens(query):
            found = table.get(w)
            if found is None:
                continue
            p, idf = found
            acc = idf * p if acc is None else acc + idf * p
            weight += idf
        return acc / weight if acc is not None and weight > 0 else None

    def scores(self, state: PredictionState) -> Vector:
        """P(section is used in this turn | the turn's words); zeros when no word is known."""
        view = view_of(state.catalog)
        if not self.fitted:
            return np.zeros(view.n)
        table, _ = self._tables(view)
        s = self._query_scores(view, table, state.request.query)
        if state.history_queries and self.history_weight > 0:
            h = self._query_scores(view, table, state.history_queries[-1])
            if h is not None:
                s = h * self.history_weight if s is None else s * (1 - self.history_weight) + h * self.history_weight
        return s if s is not None else np.zeros(view.n)

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Sections that followed these words in recorded sessions, excluding those requested this turn."""
        view = view_of(state.catalog)
        return rank(
            self.scores(state), view, k, exclude=state.calls, reason="recorded sessions with these words used it"
        )
