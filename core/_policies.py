"""Replay policies by name: one table that replay, ``prehydrate replay --policy`` and the docs read.

A policy is a predictor (made fresh, then fitted on the training traces) plus the prefetch policy
it runs under. Policies that share ``fits`` share one fitted predictor (``ensemble-wide`` is the
default ensemble without its waste control, not another fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._defaults import default_policy, default_predictor
from ._ensemble import EnsemblePredictor
from ._lexical import LexicalPredictor, UsagePredictor
from ._markov import TracePredictor
from ._neighbors import NeighborPredictor
from ._predict import Candidate, PredictionState, Predictor, SequentialPredictor
from ._prefetch import PrefetchPolicy
from ._reference import ReferencePredictor

__all__ = [
    "DEFAULT_POLICY",
    "OraclePredictor",
    "POLICIES",
    "ReplayPolicy",
    "fixed_width",
    "policy_names",
    "policy_table",
]


class OraclePredictor:
    """Knows the current turn's calls: names the next ones not yet requested nor held by the session.

    Replay sets :attr:`script` to the turn's calls before opening the turn.
    """

    name = "oracle"

    def __init__(self) -> None:
        self.script: tuple[str, ...] = ()

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        held = {key for turn in state.history for key in turn} | state.seen
        out: list[Candidate] = []
        for key in dict.fromkeys(self.script[len(state.calls) :]):
            if len(out) >= k:
                break
            if key not in held:
                out.append(Candidate(section_id=key, probability=1.0, reason="oracle: the turn's next calls"))
        return out


def fixed_width(top_n: int) -> PrefetchPolicy:
    """Every prediction's top ``top_n``, no probability floor, no waste control (the single predictors)."""
    return PrefetchPolicy(top_n=top_n, max_inflight=max(4, top_n + 1), max_top_n=max(2 * top_n, 1))


def _off(top_n: int) -> PrefetchPolicy:
    return PrefetchPolicy(top_n=top_n, enabled=False)


def _adaptive(top_n: int) -> PrefetchPolicy:
    return PrefetchPolicy(top_n=top_n, max_inflight=max(4, top_n + 1), adaptive=True, max_top_n=max(2 * top_n, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayPolicy:
    """One named replay policy."""

    name: str
    description: str
    """One line for tables and ``--help``: what predicts and how much is prefetched."""
    predictor: Callable[[], Predictor] | None
    """Makes the predictor (fitted on the training traces when it learns); None: no predictor."""
    prefetch: Callable[[int], PrefetchPolicy] = fixed_width
    """The prefetch policy at a width ``top_n``."""
    fits: str = ""
    """Policies with the same ``fits`` share one fitted predictor (default: the policy's name)."""
    expect_start: bool = False
    """Hand each turn its first ``top_n`` calls with ``session.turn(expect=...)`` instead of predicting."""


DEFAULT_POLICY = "ensemble"
"""The policy users get: ``ph.default_predictor()`` under ``ph.default_policy(top_n)``."""

_TABLE: tuple[ReplayPolicy, ...] = (
    ReplayPolicy(
        name="none", description="no speculation: every call waits for its hydration", predictor=None, prefetch=_off
    ),
    ReplayPolicy(name="sequential", description="document order after the last call", predictor=SequentialPredictor),
    ReplayPolicy(
        name="trace", description="variable-order Markov model over recorded sessions", predictor=TracePredictor
    ),
    ReplayPolicy(
        name="lexical", description="BM25 of the conversation's words, narrowed by tags", predictor=LexicalPredictor
    ),
    ReplayPolicy(
        name="usage", description="query words -> sections learned from recorded turns", predictor=UsagePredictor
    ),
    ReplayPolicy(
        name="neighbor", description="what the most similar recorded turns did next", predictor=NeighborPredictor
    ),
    ReplayPolicy(
        name="reference",
        description="baseline: order-1 Markov per task type + BM25, task tags first",
        predictor=ReferencePredictor,
    ),
    ReplayPolicy(
        name="reference-budget",
        description="the reference under the default's waste budget (equal waste)",
        predictor=ReferencePredictor,
        prefetch=default_policy,
        fits="reference",
    ),
    ReplayPolicy(
        name=DEFAULT_POLICY,
        description="the default: ph.default_predictor() under ph.default_policy()",
        predictor=default_predictor,
        prefetch=default_policy,
        fits="ensemble",
    ),
    ReplayPolicy(
        name="ensemble-wide",
        description="the default's ensemble at fixed width, no waste control",
        predictor=EnsemblePredictor,
        fits="ensemble",
    ),
    ReplayPolicy(
        name="ensemble-adaptive",
        description="the ensemble with the adaptive width instead",
        predictor=EnsemblePredictor,
        prefetch=_adaptive,
        fits="ensemble",
    ),
    ReplayPolicy(
        name="oracle", description="knows the turn's next calls: the ceiling at this width", predictor=OraclePredictor
    ),
    ReplayPolicy(
        name="oracle-start",
        description="the turn's first top_n calls handed over at its start",
        predictor=None,
        expect_start=True,
    ),
)

POLICIES: dict[str, ReplayPolicy] = {p.name: p for p in _TABLE}
"""Every replay policy, in the order tables show them."""


def policy_names() -> tuple[str, ...]:
    """The registered policy names, in table order."""
    return tuple(POLICIES)


def policy_table() -> str:
    """The registry as a Markdown table (docs/benchmarks.md carries it verbatim; a test compares)."""
    rows = ["| policy | what it is |", "| --- | --- |"]
    rows += [f"| `{p.name}` | {p.description} |" for p in _TABLE]
    return "\n".join(rows)
