"""The ensemble: a learned ranker over every predictor's signal, calibrated to mean "will be used".

Each candidate section gets a small feature vector: the trace model's next-call, two-step and
"requested later after what the session used" probabilities, the learned query-word score, the
BM25 topic score (split by whether the turn has started calling, because the query matters most
for the first call), document-order proximity, a tag match with the task, whether the session
already used the section, and how likely the turn is to go on at all. Two logistic regressions
share these features: one estimates P(the section is the next call), which orders the candidates
(the next call is the urgent one: a later call can still be prefetched after the next one), the
other P(the section is requested later in this turn), which is the candidate's probability,
exactly what decides whether a prefetch is used or wasted, and what a probability threshold is
compared with.

Fitting is stacked, so the ranker never trains on signals that saw the same task: the training
traces are split into folds **grouped by task** (``_validation.grouped_folds``: the trace's
``group``, else task type + task query), and each fold's features come from base predictors fitted
on the other folds. A grouped validation split carved from the training traces chooses the L2
strength and measures calibration. The same folds then decide whether the fit is kept at all:
ranking each fold with weights fitted on the others, if the unfitted ranking puts the next call in
its top 3 at least as often over every recorded session, the fit learned nothing that carries over
to new tasks and the fallback ranks instead (on NESTFUL's 36-session subset it does). Test data is
never needed. Until fitted (or with fewer
than ``min_sessions`` traces) the ensemble ranks with fixed weights over the lexical and sequential
signals, so a fresh engine still prefetches sensibly; with some traces but too few to fit, those
scores are shrunk towards the trace model's counted P(next call) by ``n / (n + min_sessions)``
for ``n`` recorded sessions, so the first sessions count at once (no fitted constant: the counts
weigh half when the ranker would take over).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ._catalog import Catalog
from ._lexical import LexicalPredictor, UsagePredictor
from ._markov import TracePredictor
from ._models import Persistable
from ._neighbors import NeighborPredictor
from ._predict import Candidate, Learner, PredictionState, Predictor, constructor_options, fresh_like
from ._scoring import CatalogView, Vector, prediction_points, request_tags, view_of
from ._traces import SessionTrace
from ._validation import grouped_folds
from ._workflow import FinishedTurn, TurnObserver, WorkflowPredictor, blend_signals

__all__ = ["EnsembleFit", "EnsemblePredictor", "FEATURES"]

FEATURES: tuple[str, ...] = (
    "log_next",
    "next",
    "log_reach",
    "usage_start",
    "usage_mid",
    "lexical_start",
    "lexical_mid",
    "sequential",
    "tag",
    "history",
    "log_continue",
    "log_calls",
    "later",
    "neighbor_next",
    "neighbor_later",
)
"""The ranker's features, in the order of the weight vector (the intercept comes last)."""

_EPS = 1e-4
_SEED = 20260301

_FALLBACK = {"lexical_start": 5.0, "lexical_mid": 3.0, "sequential": 1.5, "tag": 0.5, "log_calls": -0.5}
_FALLBACK_BIAS = -3.0
"""Weights before fitting: topic words first, document order second (lexical + sequential)."""

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsembleFit:
    """What fitting chose and how well it did on the validation split (all from training traces)."""

    sessions: int = 0
    train_sessions: int = 0
    validation_sessions: int = 0
    l2: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    validation_log_loss: float = 0.0
    validation_ece: float = 0.0
    """Expected calibration error of P(used) on the validation split (10 bins)."""
    validation_hit: float = 0.0
    """Share of all prediction points whose next call is in the ranker's top 3, each fold ranked by
    weights fitted on the other folds (grouped cross-validation)."""
    fallback_hit: float = 0.0
    """The same share for the unfitted (lexical and sequential) ranking."""
    fallback_chosen: bool = False
    """The fallback ranked at least as well in that cross-validation, so it ranks instead of the fit."""


@dataclass(frozen=True, slots=True)
class _Model:
    """Standardisation and the two heads' weights (intercept last)."""

    mean: Vector
    scale: Vector
    used: Vector
    next: Vector

    def proba_used(self, x: Matrix) -> Vector:
        """P(used later in the turn) for each row of ``x``."""
        return _sigmoid(((x - self.mean) / self.scale) @ self.used[:-1] + self.used[-1])

    def proba(self, x: Matrix) -> tuple[Vector, Vector]:
        """P(used later in the turn) and P(next call) for each row of ``x``."""
        xs = (x - self.mean) / self.scale
        return self.proba_used(x), _sigmoid(xs @ self.next[:-1] + self.next[-1])


def _fallback_model() -> _Model:
    """The ranking before (or instead of) a fit: fixed weights over raw lexical and sequential signals."""
    w = np.zeros(len(FEATURES) + 1)
    for name, v in _FALLBACK.items():
        w[FEATURES.index(name)] = v
    w[-1] = _FALLBACK_BIAS
    return _Model(mean=np.zeros(len(FEATURES)), scale=np.ones(len(FEATURES)), used=w, next=w)


def _sigmoid(z: Vector) -> Vector:
    out: Vector = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


class _Fitted(NamedTuple):
    """The base predictors whose signals the ranker reads, fitted on the same traces."""

    trace: TracePredictor
    usage: UsagePredictor
    neighbor: NeighborPredictor

    @classmethod
    def on(cls, traces: Sequence[SessionTrace], catalog: Catalog) -> _Fitted:
        out = cls(TracePredictor(), UsagePredictor(), NeighborPredictor())
        for p in out:
            p.fit(traces, catalog)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Signals:
    """One prediction point's signals: vectors over the catalog, and the per-point scalars.

    Candidates are chosen from the vectors; :meth:`features` then builds the ranker's feature rows
    for the candidates only, so a large catalog costs a few vector operations, not a matrix.
    """

    nxt: Vector
    reach: Vector
    use: Vector
    lex: Vector
    later: Vector
    nb_next: Vector
    nb_later: Vector
    tag: Vector | None
    earlier: list[int]
    last_pos: int
    """Position of the session's last section; -1 before any call, -2 if it left the catalog."""
    seq_decay: float
    start: float
    cont: float
    calls: float

    def sources(self) -> tuple[Vector, ...]:
        """The signals that nominate candidates (document order is added by position).

        The two-step ``reach`` is a feature, not a source: its likely sections are the next call's
        likely followers, which ``later`` and the neighbours already nominate (nominating them too
        changed no hit rate in cross-validation on the tau2 train split).
        """
        return (self.nxt, self.use, self.lex, self.later, self.nb_next, self.nb_later)

    def features(self, pos: npt.NDArray[np.intp]) -> Matrix:
        """The rows of :data:`FEATURES` for the candidates at ``pos``."""
        k = len(pos)
        nxt, use, lex = self.nxt[pos], self.use[pos], self.lex[pos]
        after = pos - self.last_pos
        if self.last_pos == -2:
            seq = np.zeros(k)
        else:
            seq = np.where(after >= 1, self.seq_decay ** np.maximum(after - 1, 0), 0.0)
        hist = np.isin(pos, self.earlier).astype(np.float64) if self.earlier else np.zeros(k)
        cols = [
            np.log(nxt + _EPS),
            nxt,
            np.log(self.reach[pos] + _EPS),
            use * self.start,
            use * (1.0 - self.start),
            lex * self.start,
            lex * (1.0 - self.start),
            seq,
            self.tag[pos] if self.tag is not None else np.zeros(k),
            hist,
            np.full(k, self.cont),
            np.full(k, self.calls),
            self.later[pos],
            self.nb_next[pos],
            self.nb_later[pos],
        ]
        out: Matrix = np.column_stack(cols) if k else np.zeros((0, len(FEATURES)))
        return out


@dataclass(slots=True)
class _Rows:
    """Candidate rows of one prediction point: positions, features and (when known) labels."""

    pos: npt.NDArray[np.intp]
    x: Matrix
    y: Vector
    y_next: Vector


class EnsemblePredictor:
    """The default predictor: trace, usage, lexical and sequential signals through a fitted ranker.

    Args:
        folds: folds of the stacked fit (grouped by task).
        validation: share of training sessions (whole groups) held out to choose the L2 strength and
            measure calibration.
        candidates: how many top sections each signal contributes to the candidate set.
        min_sessions: below this many training sessions the ranker keeps its fallback weights, shrunk
            towards the trace counts as sessions accrue.
        seed: seeds the grouped fold assignment (the only randomness).
        signals: extra predictors whose candidates are blended in when they speak; fitted and told of
            finished turns with it. Default: the graph-aware :class:`WorkflowPredictor`, which speaks
            only when a turn knows its graph (the LangGraph integration), so plain turns are unchanged.
        signal_base_weight: weight of the ensemble's own probability when a signal speaks.
        max_stacked_sessions: the ranker (a dozen weights) is fitted on at most this many of the
            most recent sessions; the base predictors still learn from all of them. Bounds the
            cost of the stacked fit, which replays every session once per fold.
    """

    name = "ensemble"

    def __init__(
        self,
        *,
        folds: int = 5,
        validation: float = 0.2,
        candidates: int = 12,
        min_sessions: int = 20,
        seed: int = _SEED,
        signals: Sequence[Predictor] | None = None,
        signal_base_weight: float = 0.5,
        max_stacked_sessions: int = 2000,
    ) -> None:
        self.folds = folds
        self.signals: tuple[Predictor, ...] = (WorkflowPredictor(),) if signals is None else tuple(signals)
        self.signal_base_weight = signal_base_weight
        self.validation = validation
        self.candidates = candidates
        self.min_sessions = min_sessions
        self.seed = seed
        self.max_stacked_sessions = max_stacked_sessions
        self.trace = TracePredictor()
        self.usage = UsagePredictor()
        self.lexical = LexicalPredictor()
        self.neighbor = NeighborPredictor()
        self.seq_decay = 0.5
        self._lock = threading.Lock()
        self._model = _fallback_model()
        self.fitted = False
        self.fit_report = EnsembleFit()

    # -- features ----------------------------------------------------------------------------------

    def _signals(self, state: PredictionState, view: CatalogView, fitted: _Fitted, learned: bool) -> _Signals:
        """Every signal over the whole catalog (the features are built for the candidates only)."""
        n = view.n
        if learned:
            trace = fitted.trace
            tp = trace.next_distribution(state)
            nxt, p_end = tp[:n], float(tp[n])
            reach = trace.reach(state, tp)
            use = fitted.usage.scores(state)
            later = trace.later(state)
            nb_next, nb_later = fitted.neighbor.scores(state)
        else:
            zero = np.zeros(n)
            nxt, p_end, reach, use, later, nb_next, nb_later = zero, 0.0, zero, zero, zero, zero, zero
        lex = self.lexical.scores(state)
        m = float(lex.max()) if n else 0.0
        lex = lex / m if m > 0 else lex
        last = state.last
        tags = request_tags(state.request)
        return _Signals(
            nxt=nxt,
            reach=reach,
            use=use,
            lex=lex,
            later=later,
            nb_next=nb_next,
            nb_later=nb_later,
            tag=view.tag_mask(tags) if tags else None,
            earlier=view.positions([k for turn in state.history for k in turn]),
            last_pos=view.pos.get(last, -2) if last is not None else -1,
            seq_decay=self.seq_decay,
            start=0.0 if state.calls else 1.0,
            cont=math.log(max(1.0 - p_end, _EPS)),
            calls=math.log1p(len(state.calls)),
        )

    def _candidates(self, state: PredictionState, view: CatalogView, sig: _Signals) -> npt.NDArray[np.intp]:
        """Union of each signal's top sections, minus those already requested in this turn."""
        n = view.n
        m = min(self.candidates, n)
        chosen = np.zeros(n, dtype=bool)
        for v in sig.sources():
            if not v.any():
                continue
            top = np.argpartition(-v, m - 1)[:m] if m < n else np.arange(n)
            chosen[top[v[top] > 0]] = True
        # Document order: the sections right after the last one (or the first ones, before any call).
        if sig.last_pos != -2:
            chosen[sig.last_pos + 1 : sig.last_pos + 1 + m] = True
        drop = view.positions(state.calls)
        if drop:
            chosen[drop] = False
        return np.flatnonzero(chosen)

    def _rows(
        self, state: PredictionState, fitted: _Fitted, learned: bool
    ) -> tuple[CatalogView, npt.NDArray[np.intp], Matrix]:
        view = view_of(state.catalog)
        sig = self._signals(state, view, fitted, learned)
        pos = self._candidates(state, view, sig)
        return view, pos, sig.features(pos)

    # -- prediction --------------------------------------------------------------------------------

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Candidates with P(requested later in this turn), the likeliest next call first.

        Ties are broken by P(used), then document order. Extra ``signals`` that speak (see
        :func:`blend_signals`) are blended in; when none does the ranking is the ensemble's own.
        """
        own = self._predict(state, k)
        if not self.signals or k <= 0:
            return own
        return blend_signals(own, [s.predict(state, k) for s in self.signals], state, k, self.signal_base_weight)

    def observe_turn(self, turn: FinishedTurn) -> None:
        """Tell the signals that learn online about a finished turn (the ranker refits on traces)."""
        for s in self.signals:
            if isinstance(s, TurnObserver):
                s.observe_turn(turn)

    def _predict(self, state: PredictionState, k: int) -> list[Candidate]:
        with self._lock:
            learned, model = self.fitted, self._model
            fitted = _Fitted(self.trace, self.usage, self.neighbor)
            sessions = self.fit_report.sessions
            chosen = self.fit_report.fallback_chosen
        counts = not learned and sessions > 0 and not chosen
        view, pos, x = self._rows(state, fitted, learned or counts)
        if len(pos) == 0 or k <= 0:
            return []
        p_used, p_next = model.proba(x)
        if counts:
            # Too few sessions to fit the ranker: shrink the fallback towards the counted P(next).
            share = sessions / (sessions + self.min_sessions)
            nxt = x[:, FEATURES.index("next")]
            p_used = (1.0 - share) * p_used + share * nxt
            p_next = (1.0 - share) * p_next + share * nxt
        order = np.lexsort((pos, -p_used, -p_next))[:k]
        reason = (
            "learned ranker over trace, usage, lexical and sequential signals"
            if learned
            else "lexical and sequential signals blended with trace counts (too few sessions to fit)"
            if counts
            else "lexical and sequential signals (not fitted yet)"
        )
        return [Candidate(section_id=view.ids[pos[j]], probability=float(p_used[j]), reason=reason) for j in order]

    # -- learning ----------------------------------------------------------------------------------

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Stacked fit on ``traces`` (see the module docstring); replaces what was learned."""
        traces = list(traces)
        for s in self.signals:
            if isinstance(s, Learner):
                s.fit(traces, catalog)
        whole = _Fitted.on(traces, catalog)
        recent = traces[-self.max_stacked_sessions :]
        model, report = None, EnsembleFit(sessions=len(recent))
        if len(traces) >= self.min_sessions:
            model, report = self._fit_ranker(recent, catalog)
        with self._lock:
            self.trace, self.usage, self.neighbor = whole
            self._model = model if model is not None else _fallback_model()
            self.fitted = model is not None
            self.fit_report = report

    def _fit_ranker(self, traces: list[SessionTrace], catalog: Catalog) -> tuple[_Model | None, EnsembleFit]:
        """The fitted ranker, or None when the fallback ranks as well in grouped cross-validation."""
        rows_of, fold_of = self._stacked_rows(traces, catalog)
        # The validation split is grouped too: a task's variants never sit on both sides of it.
        val_of = grouped_folds(traces, max(2, round(1 / self.validation)), self.seed + 1)
        val_idx = set(int(i) for i in np.flatnonzero(val_of == 0))
        train_rows = [r for i in range(len(traces)) if i not in val_idx for r in rows_of[i]]
        val_rows = [r for i in sorted(val_idx) for r in rows_of[i]]
        x_tr, y_tr, n_tr = _stack(train_rows)
        if y_tr.sum() < 5 or y_tr.sum() == len(y_tr) or n_tr.sum() < 5:
            return None, EnsembleFit(sessions=len(traces))
        mean, scale = _standardise(x_tr)
        x_va, y_va, _ = _stack(val_rows)
        val_loss, l2, w_used = _choose_l2(x_tr, y_tr, x_va, y_va, mean, scale)
        report = EnsembleFit(
            sessions=len(traces),
            train_sessions=len(traces) - len(val_idx),
            validation_sessions=len(val_idx),
            l2=l2,
            validation_log_loss=round(val_loss, 4),
            validation_ece=round(_ece(_apply(x_va, mean, scale, w_used), y_va), 4) if len(y_va) else 0.0,
            validation_hit=round(_cross_validated_hit(rows_of, fold_of, l2), 4),
            fallback_hit=round(_hit_at([r for rows in rows_of for r in rows], _fallback_model().proba_used), 4),
        )
        if report.fallback_hit >= report.validation_hit:
            return None, dataclasses.replace(report, fallback_chosen=True)
        x_all, y_all, n_all = _stack(train_rows + val_rows)
        mean_all, scale_all = _standardise(x_all)
        model = _Model(
            mean=mean_all,
            scale=scale_all,
            used=_logistic(x_all, y_all, mean_all, scale_all, l2),
            next=_logistic(x_all, n_all, mean_all, scale_all, l2),
        )
        weights = {name: round(float(v), 4) for name, v in zip((*FEATURES, "bias"), model.used, strict=True)}
        return model, dataclasses.replace(report, weights=weights)

    def _stacked_rows(
        self, traces: list[SessionTrace], catalog: Catalog
    ) -> tuple[list[list[_Rows]], npt.NDArray[np.intp]]:
        """Every session's labelled rows, its features from base predictors fitted on the other
        folds, and each session's (grouped) fold."""
        fold_of = grouped_folds(traces, self.folds, self.seed)
        rows_of: list[list[_Rows]] = [[] for _ in traces]
        for f in range(self.folds):
            inside = _Fitted.on([t for i, t in enumerate(traces) if fold_of[i] != f], catalog)
            for i, t in enumerate(traces):
                if fold_of[i] == f:
                    rows_of[i] = [
                        self._labelled(pt.state, pt.remaining, inside) for pt in prediction_points(t, catalog)
                    ]
        return rows_of, fold_of

    # -- persistence -------------------------------------------------------------------------------

    def fresh(self) -> EnsemblePredictor:
        """An unfitted predictor configured like this one (another tenant's, see ``LearningPolicy``).

        Its signals are fresh too (their ``fresh()``), so a tenant's graph runs stay its own; a
        signal without ``fresh()`` is shared as it is. Every other constructor argument is carried
        over from :func:`constructor_options` (the signature is the one list of them).
        """
        options = constructor_options(self)
        options["signals"] = tuple(fresh_like(s) or s for s in self.signals)
        return EnsemblePredictor(**options)

    def state_dict(self) -> dict[str, Any]:
        """Everything fitted (ranker weights, base predictors, fit report) as JSON-able data."""
        with self._lock:
            base = (self.trace, self.usage, self.neighbor)
            model, fitted, report = self._model, self.fitted, self.fit_report
        return {
            "features": list(FEATURES),
            "fitted": fitted,
            "model": {name: getattr(model, name).tolist() for name in ("mean", "scale", "used", "next")},
            "fit_report": dataclasses.asdict(report),
            "trace": base[0].state_dict(),
            "usage": base[1].state_dict(),
            "neighbor": base[2].state_dict(),
            # What the signals learned (the workflow's graph runs, which no trace can teach again),
            # by position and class; a signal that cannot be persisted is listed with no state.
            "signals": [
                {"class": type(s).__name__, "state": s.state_dict() if isinstance(s, Persistable) else None}
                for s in self.signals
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a model fitted on other features is refused (ValueError)."""
        if list(state["features"]) != list(FEATURES):
            raise ValueError("the model was fitted on other features")
        n = len(FEATURES)
        shapes = {"mean": (n,), "scale": (n,), "used": (n + 1,), "next": (n + 1,)}
        arrays = {name: np.asarray(state["model"][name], dtype=np.float64) for name in shapes}
        if any(arrays[name].shape != shape for name, shape in shapes.items()):
            raise ValueError("the model's weights do not match its features")
        base = _Fitted(TracePredictor(), UsagePredictor(), NeighborPredictor())
        base.trace.load_state(state["trace"])
        base.usage.load_state(state["usage"])
        base.neighbor.load_state(state["neighbor"])
        report = EnsembleFit(**state["fit_report"])
        self._load_signals(state.get("signals"))
        with self._lock:
            self.trace, self.usage, self.neighbor = base
            self._model = _Model(**arrays)
            self.fitted = bool(state["fitted"])
            self.fit_report = report

    def _load_signals(self, saved: object) -> None:
        """Restore the signals' states when the file's signals are the configured ones (count and classes).

        A file from before signals were saved, or saved with other signals, leaves them as they are:
        they relearn online, and the rest of the model still loads.
        """
        if not isinstance(saved, list) or [s.get("class") if isinstance(s, dict) else None for s in saved] != [
            type(s).__name__ for s in self.signals
        ]:
            return
        for signal, entry in zip(self.signals, saved, strict=True):
            if isinstance(signal, Persistable) and entry.get("state") is not None:
                signal.load_state(entry["state"])

    def _labelled(self, state: PredictionState, remaining: tuple[str, ...], fitted: _Fitted) -> _Rows:
        view, pos, x = self._rows(state, fitted, True)
        wanted = set(remaining) - state.seen
        y = np.array([1.0 if view.ids[i] in wanted else 0.0 for i in pos])
        nxt = remaining[0] if remaining else None
        y_next = np.array([1.0 if view.ids[i] == nxt else 0.0 for i in pos])
        return _Rows(pos=pos, x=x, y=y, y_next=y_next)


# -- fitting helpers -------------------------------------------------------------------------------


def _stack(rows: Sequence[_Rows]) -> tuple[Matrix, Vector, Vector]:
    if not rows:
        return np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0)
    return np.vstack([r.x for r in rows]), np.concatenate([r.y for r in rows]), np.concatenate([r.y_next for r in rows])


def _standardise(x: Matrix) -> tuple[Vector, Vector]:
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    scale = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    return mean, np.where(scale > 1e-9, scale, 1.0)


def _apply(x: Matrix, mean: Vector, scale: Vector, w: Vector) -> Vector:
    return _sigmoid(((x - mean) / scale) @ w[:-1] + w[-1])


def _logistic(x: Matrix, y: Vector, mean: Vector, scale: Vector, l2: float) -> Vector:
    """L2-regularised logistic regression (intercept unpenalised), fitted by Newton's method.

    A dozen features make the Hessian tiny, so a few Newton steps (with step halving, the loss is
    convex) converge faster and more reproducibly than a general-purpose optimiser.
    """
    xs = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    n = max(len(y), 1)
    penal = np.full(xs.shape[1], l2 / n)
    penal[-1] = 0.0

    def objective(w: Vector) -> float:
        z = xs @ w
        return float((np.logaddexp(0.0, z) - y * z).sum() / n + 0.5 * float((penal * w * w).sum()))

    w = np.zeros(xs.shape[1])
    f = objective(w)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w, -30, 30)))
        grad = xs.T @ (p - y) / n + penal * w
        hess = (xs * (p * (1 - p))[:, None]).T @ xs / n + np.diag(penal + 1e-9)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-4:
            cand = w - t * step
            fc = objective(cand)
            if fc <= f + 1e-12:
                break
            t /= 2
        else:
            break
        w, f_old, f = cand, f, fc
        if f_old - f < 1e-10:
            break
    return w


def _choose_l2(
    x: Matrix, y: Vector, x_va: Matrix, y_va: Vector, mean: Vector, scale: Vector
) -> tuple[float, float, Vector]:
    """(validation log loss, L2 strength, weights) of the strength with the lowest validation loss."""
    best: tuple[float, float, Vector] | None = None
    for l2 in (0.01, 0.1, 1.0, 10.0):
        w = _logistic(x, y, mean, scale, l2)
        loss = _log_loss(_apply(x_va, mean, scale, w), y_va) if len(y_va) else 0.0
        if best is None or loss < best[0] - 1e-12:
            best = (loss, l2, w)
    assert best is not None
    return best


def _cross_validated_hit(rows_of: Sequence[Sequence[_Rows]], fold_of: npt.NDArray[np.intp], l2: float) -> float:
    """:func:`_hit_at` of the ranker over every session, each fold ranked by weights fitted on the others.

    Every recorded session counts once, so the choice between the fit and the fallback does not
    rest on the few sessions of one validation split (on 36 NESTFUL sessions that split holds 7).
    """
    hits = points = 0
    for f in np.unique(fold_of):
        inside = [r for i, rows in enumerate(rows_of) if fold_of[i] != f for r in rows]
        held = [r for i, rows in enumerate(rows_of) if fold_of[i] == f for r in rows]
        x, y, _ = _stack(inside)
        if not held or y.sum() == 0 or y.sum() == len(y):
            continue
        mean, scale = _standardise(x)
        w = _logistic(x, y, mean, scale, l2)
        fold_hits, fold_points = _hits(held, functools.partial(_apply, mean=mean, scale=scale, w=w))
        hits += fold_hits
        points += fold_points
    return hits / max(points, 1)


def _hit_at(rows: Sequence[_Rows], score: Callable[[Matrix], Vector]) -> float:
    """Share of prediction points (with a next call) whose next call is among the 3 best by ``score``.

    What the selection between the fitted ranker and the fallback compares: the replay's measure at
    one point, free of how either is calibrated (the fallback's scores are not probabilities).
    """
    hits, points = _hits(rows, score)
    return hits / max(points, 1)


def _hits(rows: Sequence[_Rows], score: Callable[[Matrix], Vector], k: int = 3) -> tuple[int, int]:
    """(points whose next call is among the ``k`` best by ``score``, points with a next call)."""
    hits = points = 0
    for r in rows:
        if not r.y_next.any():
            continue
        points += 1
        top = np.argsort(-score(r.x), kind="stable")[:k]
        hits += int(r.y_next[top].any())
    return hits, points


def _log_loss(p: Vector, y: Vector) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def _ece(p: Vector, y: Vector, bins: int = 10) -> float:
    """Expected calibration error: how far predicted probabilities are from observed frequencies."""
    edges = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = edges == b
        if m.any():
            total += float(m.sum()) * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / max(len(p), 1)
