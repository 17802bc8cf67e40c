"""Grouped validation: folds that never put sessions of one task on both sides.

Recorded sessions come in families: the same task run many times, or near-identical tasks. If one
variant sits in a training fold and another in the held-out fold, the held-out fold looks easy to
whatever memorises sessions (trace reach, neighbours), and every choice made on it (ranker weights,
regularisation, thresholds, widths) favours memorising over what carries over to new tasks. So every
fold used inside fitting is dealt by **group**: the trace's optional ``group`` field when it has one,
otherwise its task type plus task query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._traces import SessionTrace

__all__ = ["group_of", "grouped_folds"]


def group_of(trace: SessionTrace) -> str:
    """The group a session belongs to: its ``group`` field, else task type + task query."""
    if trace.group:
        return "g\x00" + trace.group
    query = trace.task.query or (trace.turns[0].query if trace.turns else "")
    return f"t\x00{trace.task.type}\x00{query}"


def grouped_folds(traces: Sequence[SessionTrace], folds: int, seed: int) -> npt.NDArray[np.intp]:
    """The fold (0 .. ``folds`` - 1) of each trace; all sessions of a group share one fold.

    Groups are taken in a seeded random order, the largest first, and each goes to the fold with
    the fewest sessions so far, so folds stay balanced even when a few groups are large.
    """
    keys = [group_of(t) for t in traces]
    sizes: dict[str, int] = {}
    for k in keys:
        sizes[k] = sizes.get(k, 0) + 1
    names = sorted(sizes)
    shuffle = np.random.default_rng(seed).permutation(len(names))
    ordered = sorted((names[int(i)] for i in shuffle), key=lambda g: -sizes[g])  # stable: ties keep the shuffle
    load = [0] * max(folds, 1)
    fold_of: dict[str, int] = {}
    for g in ordered:
        f = min(range(len(load)), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += sizes[g]
    return np.array([fold_of[k] for k in keys], dtype=np.intp)
