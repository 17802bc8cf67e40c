"""The default: one predictor and one prefetch policy that every front end and replay use.

``prehydrate serve``, ``ph.Engine()`` without a predictor or policy, the LangGraph integration,
``prehydrate demo`` and replay's default policy all call these two functions, so the numbers
published for "the default" are the numbers users get.
"""

from __future__ import annotations

from ._ensemble import EnsemblePredictor
from ._prefetch import PrefetchPolicy

__all__ = ["DEFAULT_WASTE_BUDGET", "default_policy", "default_predictor"]


def default_predictor() -> EnsemblePredictor:
    """The default predictor: the learned ensemble (lexical and sequential signals until fitted)."""
    return EnsemblePredictor()


DEFAULT_WASTE_BUDGET = 1.0
"""Wasted prefetches per request the default holds itself to (enforced online, see PrefetchPolicy)."""


def default_policy(top_n: int = 3) -> PrefetchPolicy:
    """The default prefetch policy at width ``top_n``: the waste budget enforced from measured feedback.

    No threshold is fitted offline: a floor chosen by cross-validation on a few dozen sessions
    collapsed the hit rate on small data, while the online budget holds waste to
    ``DEFAULT_WASTE_BUDGET`` per request on whatever traffic the engine sees, fitted or not.
    """
    return PrefetchPolicy(top_n=top_n, max_inflight=max(4, top_n + 1), waste_budget=DEFAULT_WASTE_BUDGET)
