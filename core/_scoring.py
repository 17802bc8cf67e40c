"""Shared machinery of the learned predictors: catalog arrays, cached signals and stable ranking.

Every learned predictor scores the whole catalog as one numpy vector (document order), so a
prediction costs a few vector operations instead of a Python loop over sections. The per-catalog
arrays (ids, positions, tag masks) and the per-query signals (BM25 scores, tokens) are cached on a
:class:`CatalogView`, one per catalog object, because the engine predicts again after every call
of a turn with the same queries.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._catalog import Catalog, tokenize
from ._predict import Candidate, ContextRequest, PredictionState
from ._traces import SessionTrace

__all__ = [
    "CatalogView",
    "Point",
    "Vector",
    "prediction_points",
    "rank",
    "request_tags",
    "view_of",
]

Vector = npt.NDArray[np.float64]

_CACHE_SIZE = 256


class _LRU:
    """A small bounded memo (the same few queries are scored again after every call of a turn)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._data: OrderedDict[object, object] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: object, make: Callable[[], object]) -> object:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


class CatalogView:
    """Numpy views of one catalog: ids, positions, tag masks, and cached BM25 scores and tokens."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.ids: tuple[str, ...] = tuple(s.id for s in catalog.sections)
        self.pos: dict[str, int] = {sid: i for i, sid in enumerate(self.ids)}
        self.n = len(self.ids)
        tag_rows: dict[str, list[int]] = {}
        for i, s in enumerate(catalog.sections):
            for t in s.tags:
                tag_rows.setdefault(t.lower(), []).append(i)
        self._tag_masks = {t: _mask(self.n, rows) for t, rows in tag_rows.items()}
        self._bm25 = _LRU()
        self._tags = _LRU()
        self._tokens = _LRU()

    def bm25(self, query: str) -> Vector:
        """BM25 score of every section for ``query`` (document order; zeros when nothing matches)."""
        if not query.strip():
            return np.zeros(self.n)
        out = self._bm25.get(query, lambda: np.asarray(self.catalog.score_array(query), dtype=np.float64))
        assert isinstance(out, np.ndarray)
        return out

    def tag_mask(self, tags: Sequence[str]) -> Vector:
        """1.0 for sections sharing a tag with ``tags`` (compared case-insensitively), else 0.0."""
        key = tuple(tags)

        def make() -> Vector:
            m = np.zeros(self.n)
            for t in key:
                found = self._tag_masks.get(t.lower())
                if found is not None:
                    m = np.maximum(m, found)
            return m

        out = self._tags.get(key, make)
        assert isinstance(out, np.ndarray)
        return out

    def tokens(self, text: str) -> tuple[str, ...]:
        """The distinct index tokens of ``text`` (stemmed, stopwords removed), in first-seen order."""
        if not text.strip():
            return ()
        out = self._tokens.get(text, lambda: tuple(dict.fromkeys(tokenize([text])[0])))
        assert isinstance(out, tuple)
        return out

    def positions(self, ids: Sequence[str]) -> list[int]:
        """Positions of the ids that are in the catalog (others are skipped)."""
        return [self.pos[s] for s in ids if s in self.pos]


def _mask(n: int, rows: list[int]) -> Vector:
    m = np.zeros(n)
    m[rows] = 1.0
    return m


_VIEWS: weakref.WeakKeyDictionary[Catalog, CatalogView] = weakref.WeakKeyDictionary()
_VIEWS_LOCK = threading.Lock()


def view_of(catalog: Catalog) -> CatalogView:
    """The (cached) view of a catalog; a refreshed catalog is a new object and gets a new view."""
    with _VIEWS_LOCK:
        view = _VIEWS.get(catalog)
        if view is None or view.n != len(catalog):
            view = CatalogView(catalog)
            _VIEWS[catalog] = view
        return view


def request_tags(request: ContextRequest) -> tuple[str, ...]:
    """The tags that narrow a request: its own tags plus the parts of its task type.

    A task type like ``billing+refund`` names areas the way tags do, so its ``+``-separated parts
    count as tags too.
    """
    parts = tuple(p for p in (request.task_type or "").replace("+", " ").split() if p)
    return tuple(dict.fromkeys((*request.tags, *parts)))


def rank(
    scores: Vector,
    view: CatalogView,
    k: int,
    *,
    exclude: Sequence[str] = (),
    reason: str | Callable[[int], str] = "",
    scale: float = 1.0,
) -> list[Candidate]:
    """The best ``k`` positive scores as candidates, ties broken by document order.

    Args:
        scores: one score per catalog section; used as the probability after multiplying by ``scale``.
        view: the catalog view the scores are aligned with.
        k: how many candidates at most.
        exclude: section ids never returned (already requested in this turn).
        reason: the candidates' reason, or a function of the section position that makes one.
        scale: multiplier turning scores into probabilities (clipped to [0, 1]).
    """
    if k <= 0 or view.n == 0:
        return []
    s = np.array(scores, dtype=np.float64, copy=True)
    drop = view.positions(exclude)
    if drop:
        s[drop] = 0.0
    order = np.lexsort((np.arange(view.n), -s))  # by score descending, then document order
    out: list[Candidate] = []
    for i in order[: k + len(drop)]:
        p = float(s[i])
        if p <= 0.0 or len(out) >= k:
            break
        why = reason(int(i)) if callable(reason) else reason
        out.append(Candidate(section_id=view.ids[i], probability=min(1.0, max(0.0, p * scale)), reason=why))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One prediction point of a recorded session, as the engine would have seen it."""

    state: PredictionState
    next_key: str | None
    """The call that followed (None: the turn ended)."""
    remaining: tuple[str, ...]
    """Every call left in the turn, in order (the prefetch is useful if its section is among them)."""


def prediction_points(trace: SessionTrace, catalog: Catalog) -> Iterator[Point]:
    """Replay a recorded session as the engine's sequence of predictions (turn start, after each call).

    The state matches what :class:`~prehydrate.Turn` builds: the task query is the first turn's
    query, tags are the task's, history holds the earlier turns' calls and queries.
    """
    task_query = trace.turns[0].query if trace.turns else trace.task.query
    history: list[tuple[str, ...]] = []
    queries: list[str] = []
    for turn in trace.turns:
        request = ContextRequest(
            query=turn.query,
            task_type=trace.task.type or None,
            task_query=task_query,
            tags=trace.task.tags,
        )
        keys = tuple(c.key for c in turn.calls)
        for i in range(len(keys) + 1):
            state = PredictionState(
                request=request,
                catalog=catalog,
                calls=keys[:i],
                history=tuple(history),
                history_queries=tuple(queries),
            )
            yield Point(state=state, next_key=keys[i] if i < len(keys) else None, remaining=keys[i:])
        history.append(keys)
        queries.append(turn.query)
