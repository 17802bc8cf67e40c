"""The trace predictor: a variable-order Markov model (PPM-style back-off) over recorded sessions.

Agents follow workflows: after looking a customer up they fetch the order, after the refund policy
they read how to request one. The model counts, in the training traces, which call followed which
context and blends the contexts from the most specific to the least (Witten-Bell interpolation, as
PPM does with escape probabilities), so a context seen rarely still borrows from broader ones:

1. task type, position (turn start or mid-turn), the last two sections of the session;
2. task type, position, the last section;
3. position, the last section (any task type);
4. task type, position; 5. position; 6. uniform.

"The last section" is the session's, not the turn's: at the start of a later turn it is the
previous turn's last call, a strong signal of where the user goes next. A symbol for "the turn
ends here" is modelled as well, so the predictor knows how likely another call is at all.

Besides the next call, :meth:`TracePredictor.later` gives an order-free view of the same traces:
how often a section was requested at some point after each section the session already used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._predict import Candidate, PredictionState
from ._scoring import CatalogView, Vector, rank, view_of
from ._traces import SessionTrace

__all__ = ["TracePredictor"]

END = "\x00end"
"""The symbol for "no further call in this turn"."""
BOS = "\x00bos"
"""The session's start, standing in for the last section before any call."""

Context = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Row:
    """The followers of one context, compiled against a catalog (END is position ``n``)."""

    idx: np.ndarray
    cnt: np.ndarray
    total: float
    distinct: float


def _contexts(task_type: str, start: bool, last2: str, last1: str) -> list[Context]:
    """Contexts from the broadest to the most specific (interpolation runs in this order)."""
    b = "start" if start else "mid"
    return [
        ("p", b),
        ("tp", task_type, b),
        ("l1", b, last1),
        ("tl1", task_type, b, last1),
        ("tl2", task_type, b, last2, last1),
    ]


class TracePredictor:
    """Predicts the next call from recorded sessions (see the module docstring for the model).

    Args:
        min_probability: candidates below this probability are not returned.

    Example:
        >>> import prehydrate as ph
        >>> catalog = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog
        >>> p = ph.TracePredictor()
        >>> p.fit(ph.read_traces(ph.sample_traces_path("train")), catalog)
        >>> state = ph.PredictionState(request=ph.ContextRequest(task_type="billing+refund"), catalog=catalog)
        >>> p.predict(state, 1)[0].section_id
        'billing/refunds'
    """

    name = "trace"

    def __init__(self, *, min_probability: float = 0.0) -> None:
        self.min_probability = min_probability
        self._counts: dict[Context, dict[str, int]] = {}
        self._after: dict[Context, dict[str, int]] = {}
        self._compiled: tuple[CatalogView, dict[Context, _Row]] | None = None
        self._lock = threading.Lock()
        self.fitted = False

    # -- learning ----------------------------------------------------------------------------------

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Count every (context, next call) pair of ``traces``; replaces what was learned."""
        counts: dict[Context, dict[str, int]] = {}
        after: dict[Context, dict[str, int]] = {}
        for trace in traces:
            ttype = trace.task.type
            keys_all = trace.keys
            for i, x in enumerate(keys_all):
                later = set(keys_all[i + 1 :]) - {x}
                after_contexts: tuple[Context, ...] = (("a", x), ("ta", ttype, x))
                for actx in after_contexts:
                    row = after.setdefault(actx, {})
                    row[END] = row.get(END, 0) + 1  # how many times x was seen: the denominator
                    for k in later:
                        row[k] = row.get(k, 0) + 1
            last2 = last1 = BOS
            for turn in trace.turns:
                keys = [c.key for c in turn.calls]
                for i, nxt in enumerate([*keys, END]):
                    for ctx in _contexts(ttype, i == 0, last2, last1):
                        row = counts.setdefault(ctx, {})
                        row[nxt] = row.get(nxt, 0) + 1
                    if nxt != END:
                        last2, last1 = last1, nxt
        with self._lock:
            self._counts = counts
            self._after = after
            self._compiled = None
        self.fitted = bool(counts)

    def _rows(self, view: CatalogView) -> dict[Context, _Row]:
        with self._lock:
            if self._compiled is not None and self._compiled[0] is view:
                return self._compiled[1]
            rows: dict[Context, _Row] = {}
            for ctx, followers in [*self._counts.items(), *self._after.items()]:
                pairs = [(view.pos.get(k, view.n if k == END else -1), c) for k, c in followers.items()]
                pairs = sorted(p for p in pairs if p[0] >= 0)
                if not pairs:
                    continue
                idx = np.array([p[0] for p in pairs], dtype=np.intp)
                cnt = np.array([p[1] for p in pairs], dtype=np.float64)
                rows[ctx] = _Row(idx=idx, cnt=cnt, total=float(cnt.sum()), distinct=float(len(pairs)))
            self._compiled = (view, rows)
            return rows

    # -- persistence -------------------------------------------------------------------------------

    def fresh(self) -> TracePredictor:
        """An unfitted predictor configured like this one (another tenant's, see ``LearningPolicy``)."""
        return TracePredictor(min_probability=self.min_probability)

    def state_dict(self) -> dict[str, Any]:
        """The fitted counts as JSON-able data (contexts become lists)."""
        with self._lock:
            counts, after = self._counts, self._after
        return {
            "counts": [[list(ctx), row] for ctx, row in counts.items()],
            "after": [[list(ctx), row] for ctx, row in after.items()],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (validated before anything is replaced)."""
        tables = []
        for name in ("counts", "after"):
            table: dict[Context, dict[str, int]] = {}
            for ctx, row in state[name]:
                if not isinstance(row, dict) or not all(isinstance(v, int) for v in row.values()):
                    raise TypeError(f"{name}: a row of counts must map ids to integers")
                table[tuple(str(c) for c in ctx)] = {str(k): v for k, v in row.items()}
            tables.append(table)
        with self._lock:
            self._counts, self._after = tables
            self._compiled = None
        self.fitted = bool(tables[0])

    # -- prediction --------------------------------------------------------------------------------

    def next_distribution(
        self, state: PredictionState, *, last: str | None = None, start: bool | None = None
    ) -> Vector:
        """P(next call) over the catalog in document order, with P(turn ends) as the last element.

        Args:
            state: the prediction state.
            last: pretend the session's last section is this one (for two-step look-ahead).
            start: pretend the turn is (or is not) at its start.
        """
        view = view_of(state.catalog)
        seq = [k for turn in state.history for k in turn] + list(state.calls)
        if last is not None:
            seq.append(last)
        last1 = seq[-1] if seq else BOS
        last2 = seq[-2] if len(seq) > 1 else BOS
        at_start = (not state.calls and last is None) if start is None else start
        return self._interpolate(view, _contexts(state.request.task_type or "", at_start, last2, last1))

    def _interpolate(self, view: CatalogView, contexts: list[Context]) -> Vector:
        rows = self._rows(view)
        p = np.full(view.n + 1, 1.0 / (view.n + 1))
        for ctx in contexts:
            row = rows.get(ctx)
            if row is None:
                continue
            denom = row.total + row.distinct
            p *= row.distinct / denom
            p[row.idx] += row.cnt / denom
        return p

    def reach(self, state: PredictionState, next_p: Vector, *, fanout: int = 5) -> Vector:
        """P(section is requested within the next two calls), a look-ahead for slow sources.

        Follows the ``fanout`` likeliest next calls one step further; cost is ``fanout`` vector
        interpolations, independent of the catalog's size in Python operations.
        """
        n = len(next_p) - 1
        out = np.array(next_p[:n], copy=True)
        seen = state.seen
        order = np.lexsort((np.arange(n), -next_p[:n]))[:fanout]
        view = view_of(state.catalog)
        for i in order:
            pi = float(next_p[i])
            if pi <= 0.0:
                break
            step = self.next_distribution(state, last=view.ids[i], start=False)
            out += pi * step[:n] * (1.0 - out)
            del step
        if seen:
            out[view.positions(list(seen))] = 0.0
        return np.minimum(out, 1.0)

    def later(self, state: PredictionState) -> Vector:
        """P(section is requested later in the session | each section already requested), noisy-or.

        Order-free workflow structure: "after an order lookup, an exchange comes at some point",
        which still holds when the exact previous call never preceded it in the training traces.
        """
        view = view_of(state.catalog)
        rows = self._rows(view)
        seen = list(dict.fromkeys([k for turn in state.history for k in turn] + list(state.calls)))
        miss = np.ones(view.n)
        ttype = state.request.task_type or ""
        for x in seen:
            row = rows.get(("ta", ttype, x)) or rows.get(("a", x))
            if row is None:
                continue
            keep = row.idx < view.n
            total = float(row.cnt[~keep].sum())  # the END slot holds how often ``x`` was seen
            p = np.zeros(view.n)
            p[row.idx[keep]] = row.cnt[keep] / (total + 1.0)
            miss *= 1.0 - p
        return 1.0 - miss

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """The likeliest next calls, excluding sections already requested in this turn."""
        view = view_of(state.catalog)
        p = self.next_distribution(state)[: view.n]
        if self.min_probability > 0:
            p = np.where(p >= self.min_probability, p, 0.0)
        ttype = state.request.task_type or "any task"
        return rank(p, view, k, exclude=state.calls, reason=f"recorded sessions ({ttype}) continue here")
