"""Prediction: the protocol every predictor implements, its inputs and a baseline predictor.

A predictor ranks sections by how likely the model is to request them next in this turn. It gets a
:class:`PredictionState` (the turn's request, the calls made so far in the turn, the session's
earlier turns and the catalog) and returns :class:`Candidate` objects, best first. Predictors that
learn implement :class:`Learner` as well: ``fit(traces, catalog)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._catalog import Catalog
from ._sections import Scope
from ._traces import SessionTrace

if TYPE_CHECKING:
    from ._workflow import WorkflowDAG

__all__ = [
    "Candidate",
    "ContextRequest",
    "Learner",
    "PredictionState",
    "Predictor",
    "SequentialPredictor",
    "constructor_options",
    "fresh_like",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A section the model may request, with a probability and why it was ranked."""

    section_id: str
    probability: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextRequest:
    """What a turn is about: the input of compilation and prediction."""

    query: str = ""
    """The user's message of this turn."""
    task_type: str | None = None
    task_query: str = ""
    """The session's first user message (the task); empty in the first turn."""
    tags: tuple[str, ...] = ()
    budget_tokens: int | None = None
    scope: Scope = field(default_factory=Scope)


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionState:
    """Everything a predictor may look at."""

    request: ContextRequest
    catalog: Catalog
    calls: tuple[str, ...] = ()
    """Section ids requested so far in this turn, in order."""
    history: tuple[tuple[str, ...], ...] = ()
    """Section ids requested in each earlier turn of the session."""
    history_queries: tuple[str, ...] = ()
    """The user messages of the earlier turns."""
    node: str | None = None
    """The workflow node about to run, when a workflow front end knows it."""
    workflow: WorkflowDAG | None = None
    """The graph the turn runs, when a workflow front end knows it (graph-aware signals read it)."""

    @property
    def last(self) -> str | None:
        """The most recently requested section of the session, if any."""
        if self.calls:
            return self.calls[-1]
        for turn in reversed(self.history):
            if turn:
                return turn[-1]
        return None

    @property
    def seen(self) -> frozenset[str]:
        """Every section requested in this turn so far."""
        return frozenset(self.calls)


@runtime_checkable
class Predictor(Protocol):
    """Ranks sections by the probability that the model requests them next."""

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Up to ``k`` candidates, best first; ties broken stably (document order)."""
        ...


@runtime_checkable
class Learner(Protocol):
    """A predictor that learns from recorded sessions."""

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Learn from ``traces``; calling it again replaces what was learned."""
        ...


def constructor_options(obj: object) -> dict[str, Any]:
    """Every argument of ``type(obj)``'s constructor, read back from ``obj``'s attribute of that name.

    The one source of truth of a ``fresh()`` copy: the constructor's signature lists the options,
    and a predictor keeps each under its own name (scikit-learn's ``get_params`` rule), so an
    argument added later is carried over without a list to update, and one kept under another
    name fails loudly (AttributeError naming it) instead of being silently reset to its default.
    """
    return {name: getattr(obj, name) for name in inspect.signature(type(obj)).parameters}


def fresh_like(predictor: Predictor) -> Predictor | None:
    """An unfitted predictor configured like ``predictor`` (its ``fresh()``), or None when it has none.

    Tenant-private learning gives each tenant its own copy; what a copy learns never reaches the original.
    """
    make = getattr(predictor, "fresh", None)
    if not callable(make):
        return None
    made = make()
    return made if isinstance(made, Predictor) else None


class SequentialPredictor:
    """Document order: the sections that follow the last requested one (or the first ones).

    The baseline every other predictor must beat; probabilities decay geometrically with distance.
    """

    name = "sequential"

    def __init__(self, decay: float = 0.5) -> None:
        self.decay = decay

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        catalog = state.catalog
        last = state.last
        start = catalog.position(last) if last is not None and last in catalog else -1
        seen = state.seen
        out: list[Candidate] = []
        p = self.decay
        for section in catalog.after(start, k + len(seen)):
            if len(out) >= k:
                break
            if section.id in seen:
                continue
            out.append(Candidate(section_id=section.id, probability=p, reason="next in document order"))
            p *= self.decay
        return out
