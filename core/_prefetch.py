"""The prefetcher: a per-turn priority queue of speculative hydrations with limits and cancellation.

Candidates are ordered by expected benefit, ``probability x expected hydration latency``: a likely
section behind a slow source is worth more than an equally likely one that is cheap to fetch on
demand. At most ``max_inflight`` run at once; the turn's budget (count, bytes, tokens) caps the
speculation that may go unused: a prefetch a request has used no longer counts against it, so a
long turn whose guesses keep landing keeps prefetching, while one whose guesses miss stops after
the budget. Leaving the turn cancels everything still queued or running.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ._cache import CacheKey
from ._errors import ConfigError
from ._predict import Candidate
from ._sections import Section

__all__ = ["AdaptiveWidth", "PrefetchPolicy", "PrefetchRecord", "Prefetcher", "Status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchPolicy:
    """How much to speculate, per turn."""

    top_n: int = 3
    """Candidates taken from each prediction."""
    max_inflight: int = 4
    """Speculative hydrations running at once (per turn)."""
    min_probability: float = 0.0
    """Candidates below this probability are not prefetched."""
    budget_count: int | None = 8
    """Prefetches of a turn not (yet) used by a request, at most (None: no limit). A used prefetch
    stops counting: the budget bounds waste, not useful work."""
    budget_bytes: int | None = None
    """Estimated bytes of a turn's not (yet) used prefetches, at most (None: no limit)."""
    budget_tokens: int | None = None
    """Estimated tokens of a turn's not (yet) used prefetches, at most (None: no limit)."""
    timeout_s: float = 30.0
    """Hydrations (speculative or on demand) taking longer fail with ``HydrationTimeout``."""
    repredict: bool = True
    """Predict again after every call of the turn and queue what is new."""
    discard_unused: bool = True
    """At bailout, delete prefetched entries nobody requested (otherwise keep them warm)."""
    enabled: bool = True
    """False turns speculation off (the no-prefetch baseline)."""
    preposition: bool = False
    """Between turns, predict the next turn's first calls from the session's history and prefetch them
    in the idle time; the next turn of the session continues that speculation (its report counts it)."""
    adaptive: bool = False
    """Adapt the width (candidates taken per prediction) from measured feedback, starting at ``top_n``:
    narrower while waste is high, wider while misses are high and the budget allows."""
    min_top_n: int = 1
    """Narrowest adaptive width."""
    max_top_n: int | None = None
    """Widest adaptive width (None: twice ``top_n``)."""
    waste_high: float = 1.0
    """Adaptive: shrink while the smoothed wasted prefetches per call are above this."""
    miss_high: float = 0.25
    """Adaptive: grow while the smoothed share of calls that missed is above this (and waste is not high)."""
    adapt_rate: float = 0.3
    """Adaptive: weight of the latest turn in the smoothed waste and miss rates."""
    waste_budget: float | None = None
    """Wasted prefetches per request the engine holds itself to, from measured feedback (None: no such
    control). Every turn logs each candidate the predictor offered (its probability, and whether
    the turn then requested it) and its calls; the probability floor of the next turn is the lowest
    at which the offers of the last ``floor_window`` turns would have wasted at most
    ``waste_budget x their calls``, less any waste already spent beyond the budget, plus a
    correction that moves by ``floor_gain`` per prefetch actually wasted beyond the budget (the log
    cannot see cancellations, warm entries or prefetches still running when asked for). It holds on
    this workload whatever the predictor's probabilities mean here, fitted or not; nothing is tuned
    offline, so it holds on small data and with no recorded sessions at all."""
    floor_start: float = 0.1
    """Waste budget: the probability floor before any feedback."""
    floor_gain: float = 0.01
    """Waste budget: how far each prefetch actually wasted beyond the budget moves the floor's correction."""
    floor_window: int = 50
    """Waste budget: how many recent turns the floor is chosen on (short, so it follows drifting traffic)."""

    def __post_init__(self) -> None:
        if self.top_n < 0 or self.max_inflight < 1:
            raise ConfigError("PrefetchPolicy needs top_n >= 0 and max_inflight >= 1")
        if not 0.0 <= self.min_probability <= 1.0:
            raise ConfigError("PrefetchPolicy.min_probability must be within [0, 1]")
        if self.min_top_n < 0 or (self.max_top_n is not None and self.max_top_n < self.min_top_n):
            raise ConfigError("PrefetchPolicy needs 0 <= min_top_n <= max_top_n")
        if not (0.0 < self.adapt_rate <= 1.0 and self.waste_high >= 0.0 and 0.0 <= self.miss_high <= 1.0):
            raise ConfigError("PrefetchPolicy needs adapt_rate in (0, 1], waste_high >= 0 and miss_high in [0, 1]")
        if self.waste_budget is not None and not (
            self.waste_budget >= 0.0
            and 0.0 <= self.floor_start <= 1.0
            and self.floor_gain >= 0.0
            and self.floor_window >= 1
        ):
            raise ConfigError(
                "PrefetchPolicy needs waste_budget >= 0, floor_start in [0, 1], floor_gain >= 0 and floor_window >= 1"
            )


class AdaptiveWidth:
    """The prefetch width of an engine, adapted across turns from measured waste and misses.

    With ``policy.adaptive`` off, :attr:`current` is always ``policy.top_n``. With it on, every
    finished turn feeds :meth:`observe`; exponentially smoothed counts then move the width one step
    at a time: down while more than ``waste_high`` prefetches per call go unused, up while more than
    ``miss_high`` of the calls miss, waste is acceptable and the turn's waste stayed below its count budget.
    Turns without calls still count their waste (speculation on a turn that needed nothing).

    With ``policy.waste_budget`` set it also owns the probability :attr:`floor` that enforces the
    budget online (see :class:`PrefetchPolicy`).
    """

    def __init__(self, policy: PrefetchPolicy) -> None:
        self.policy = policy
        self.width = policy.top_n
        self._floor = policy.floor_start if policy.waste_budget is not None else 0.0
        self.wasted_total = 0
        """Prefetches wasted over the engine's life (every finished turn)."""
        self.calls_total = 0
        """Requests over the engine's life."""
        self._correction = 0.0
        self._log: deque[tuple[int, npt.NDArray[np.intp]]] = deque()
        """Per recent turn: its calls and the probability bins of the offers it did not use."""
        self._window_calls = 0
        self._unused = np.zeros(_BINS + 1, dtype=np.int64)
        """Unused offers of the logged turns per probability bin (width 1 / _BINS)."""
        self._wasted = 0.0
        self._calls = 0.0
        self._misses = 0.0
        self.turns = 0

    @property
    def waste_per_call(self) -> float:
        """Smoothed wasted prefetches per call."""
        if self._calls > 0:
            return self._wasted / self._calls
        return float("inf") if self._wasted > 0 else 0.0

    @property
    def miss_rate(self) -> float:
        """Smoothed share of calls that missed."""
        return self._misses / self._calls if self._calls > 0 else 0.0

    @property
    def bounds(self) -> tuple[int, int]:
        """The narrowest and widest width the policy allows."""
        p = self.policy
        hi = p.max_top_n if p.max_top_n is not None else max(2 * p.top_n, p.min_top_n)
        return min(p.min_top_n, hi), hi

    @property
    def current(self) -> int:
        """The width the next turn takes from each prediction."""
        return self.width if self.policy.adaptive else self.policy.top_n

    def _log_turn(self, calls: int, unused: Sequence[float]) -> None:
        """Add a turn to the window (dropping the oldest beyond ``floor_window``)."""
        bins = np.minimum((np.asarray(unused, dtype=np.float64) * _BINS).astype(np.intp), _BINS)
        self._log.append((calls, bins))
        self._window_calls += calls
        np.add.at(self._unused, bins, 1)
        while len(self._log) > self.policy.floor_window:
            old_calls, old_bins = self._log.popleft()
            self._window_calls -= old_calls
            np.subtract.at(self._unused, old_bins, 1)

    def _lowest_floor(self, budget: float) -> float:
        """The lowest floor (to a bin) at which the logged turns' unused offers stay within the budget.

        A running histogram, so a turn's end costs a few vector operations whatever the window.
        """
        debt = max(0.0, self.wasted_total - budget * self.calls_total)  # waste already spent beyond budget
        allowed = int(budget * self._window_calls - debt)
        from_top = np.cumsum(self._unused[::-1])
        over = np.flatnonzero(from_top > allowed)
        if len(over) == 0:
            return 0.0
        return min(1.0, (_BINS - int(over[0]) + 1) / _BINS)  # just above the bin that goes over budget

    @property
    def floor(self) -> float:
        """The probability below which the next turn prefetches nothing (the waste budget's lever)."""
        return max(self.policy.min_probability, self._floor)

    def observe(
        self, *, calls: int, misses: int, prefetched: int, wasted: int, offers: Sequence[tuple[float, bool]] = ()
    ) -> int:
        """Feed one finished turn; returns the width for the next one.

        ``offers`` are the turn's candidates as (probability, requested in the turn), below the
        floor or not: what the waste budget chooses the next floor from.
        """
        p = self.policy
        self.wasted_total += wasted
        self.calls_total += calls
        if p.waste_budget is not None and p.enabled:
            self._log_turn(calls, [q for q, used in offers if not used])
            self._correction += p.floor_gain * (wasted - p.waste_budget * calls)
            self._floor = min(0.99, max(0.0, self._lowest_floor(p.waste_budget) + self._correction))
        if not p.adaptive or not p.enabled:
            return self.current
        a = p.adapt_rate
        self._wasted = (1 - a) * self._wasted + a * wasted
        self._calls = (1 - a) * self._calls + a * calls
        self._misses = (1 - a) * self._misses + a * misses
        self.turns += 1
        lo, hi = self.bounds
        budget_left = p.budget_count is None or wasted < p.budget_count
        waste = self.waste_per_call
        if waste > p.waste_high and self.width > lo:
            self.width -= 1
        elif self.miss_rate > p.miss_high and waste <= p.waste_high and budget_left and self.width < hi:
            self.width += 1
        return self.width


_BINS = 1000
"""Resolution of the waste budget's floor (probability bins of width 0.001)."""

Status = Literal["queued", "running", "ok", "warm", "failed", "cancelled"]


@dataclass(slots=True, kw_only=True)
class PrefetchRecord:
    """What happened to one speculative hydration (mutable while the turn runs)."""

    prefetch_id: str
    section_id: str
    key: CacheKey
    probability: float
    reason: str
    status: Status = "queued"
    bytes: int = 0
    used: bool = False
    budget_bytes: int = 0
    """The section's estimated size, charged to the turn's byte budget while the prefetch is unused."""
    budget_tokens: int = 0
    """The section's estimated tokens, charged to the turn's token budget while unused."""
    start_ns: int = 0
    end_ns: int = 0
    started_at: float = 0.0
    """Loop time the hydration started."""
    finished_at: float | None = None
    """Loop time the hydration finished (None while running or if it never ran)."""
    task: asyncio.Task[object] | None = field(default=None, repr=False)


Launch = Callable[[PrefetchRecord, Section], "asyncio.Task[object] | None"]


class Prefetcher:
    """The queue of one turn. The engine supplies ``launch``, which starts a hydration task."""

    def __init__(
        self,
        policy: PrefetchPolicy,
        launch: Launch,
        latency_s: Callable[[Section], float],
        *,
        top_n: int,
        id_prefix: str = "p",
        min_probability: float | None = None,
    ) -> None:
        self.policy = policy
        self.top_n = top_n
        """Candidates taken from each prediction: the engine's :class:`AdaptiveWidth` decides it, once per turn."""
        self.min_probability = policy.min_probability if min_probability is None else min_probability
        """Candidates below this are not prefetched: the policy's, or the floor of the engine's waste budget."""
        self._launch = launch
        self._latency_s = latency_s
        self._heap: list[tuple[float, int, Candidate, Section, CacheKey]] = []
        self._seq = itertools.count()
        self._offered: set[str] = set()
        self.offers: dict[str, float] = {}
        """Every candidate offered in this turn (the highest probability it was offered with), taken or not."""
        self._id_prefix = id_prefix
        self.records: list[PrefetchRecord] = []
        self.running: set[asyncio.Task[object]] = set()
        self.max_running = 0
        self.closed = False

    def offer(self, candidates: Sequence[tuple[Candidate, Section, CacheKey]]) -> None:
        """Queue candidates not offered before in this turn, then launch what the limits allow."""
        if self.closed or not self.policy.enabled:
            return
        for cand, section, key in candidates[: self.top_n]:
            if section.id in self._offered and section.id not in self.offers:
                continue  # requested before it was offered: not a guess
            self.offers[section.id] = max(self.offers.get(section.id, 0.0), cand.probability)
            if section.id in self._offered or cand.probability < self.min_probability:
                continue
            self._offered.add(section.id)
            benefit = cand.probability * max(self._latency_s(section), 1e-6)
            heapq.heappush(self._heap, (-benefit, next(self._seq), cand, section, key))
        self.pump()

    def forget(self, section_id: str) -> None:
        """Drop a queued candidate (it was just requested, so the demand path fetches it)."""
        self._offered.add(section_id)
        self._heap = [item for item in self._heap if item[3].id != section_id]
        heapq.heapify(self._heap)

    def outstanding(self) -> tuple[int, int, int]:
        """Count, estimated bytes and tokens of this turn's prefetches that no request has used yet
        (found already warm: nothing was fetched, so nothing is charged)."""
        count = size = tokens = 0
        for r in self.records:
            if not r.used and r.status != "warm":
                count += 1
                size += r.budget_bytes
                tokens += r.budget_tokens
        return count, size, tokens

    def _within_budget(self, section: Section) -> bool:
        p = self.policy
        if p.budget_count is None and p.budget_bytes is None and p.budget_tokens is None:
            return True
        count, size, tokens = self.outstanding()
        if p.budget_count is not None and count >= p.budget_count:
            return False
        if p.budget_bytes is not None and size + section.size_bytes > p.budget_bytes:
            return False
        return not (p.budget_tokens is not None and tokens + section.tokens > p.budget_tokens)

    def pump(self) -> None:
        """Launch queued candidates while concurrency and budget allow."""
        while self._heap and not self.closed and len(self.running) < self.policy.max_inflight:
            _, _, cand, section, key = heapq.heappop(self._heap)
            if not self._within_budget(section):
                continue
            record = PrefetchRecord(
                prefetch_id=f"{self._id_prefix}{len(self.records) + 1}",
                section_id=section.id,
                key=key,
                probability=cand.probability,
                reason=cand.reason,
                budget_bytes=section.size_bytes,
                budget_tokens=section.tokens,
            )
            task = self._launch(record, section)
            if task is None:  # already warm or already being fetched elsewhere: nothing to do
                continue
            self.records.append(record)
            record.task = task
            self.running.add(task)
            self.max_running = max(self.max_running, len(self.running))
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self.running.discard(task)
        self.pump()

    async def close(self) -> None:
        """Bailout: drop the queue, cancel running hydrations and wait until they have stopped."""
        self.closed = True
        self._heap.clear()
        tasks = list(self.running)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
