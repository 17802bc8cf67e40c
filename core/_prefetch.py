"""The prefetcher: a per-turn priority queue of speculative hydrations with limits and cancellation.

Candidates are ordered by expected benefit, ``probability x expected hydration latency``: a likely
section behind a slow source is worth more than an equally likely one that is cheap to fetch on
demand. At most ``max_inflight`` run at once; the turn's budget (count, bytes, tokens) caps what is
launched at all; leaving the turn cancels everything still queued or running.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._cache import CacheKey
from ._errors import ConfigError
from ._predict import Candidate
from ._sections import Section

__all__ = ["PrefetchPolicy", "PrefetchRecord", "Prefetcher"]


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
    """Prefetches launched per turn at most (None: no limit)."""
    budget_bytes: int | None = None
    """Estimated bytes prefetched per turn at most (None: no limit)."""
    budget_tokens: int | None = None
    """Estimated tokens prefetched per turn at most (None: no limit)."""
    timeout_s: float = 30.0
    """Hydrations (speculative or on demand) taking longer fail with ``HydrationTimeout``."""
    repredict: bool = True
    """Predict again after every call of the turn and queue what is new."""
    discard_unused: bool = True
    """At bailout, delete prefetched entries nobody requested (otherwise keep them warm)."""
    enabled: bool = True
    """False turns speculation off (the no-prefetch baseline)."""

    def __post_init__(self) -> None:
        if self.top_n < 0 or self.max_inflight < 1:
            raise ConfigError("PrefetchPolicy needs top_n >= 0 and max_inflight >= 1")
        if not 0.0 <= self.min_probability <= 1.0:
            raise ConfigError("PrefetchPolicy.min_probability must be within [0, 1]")


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
        id_prefix: str = "p",
    ) -> None:
        self.policy = policy
        self._launch = launch
        self._latency_s = latency_s
        self._heap: list[tuple[float, int, Candidate, Section, CacheKey]] = []
        self._seq = itertools.count()
        self._offered: set[str] = set()
        self._id_prefix = id_prefix
        self.records: list[PrefetchRecord] = []
        self.running: set[asyncio.Task[object]] = set()
        self.bytes_budgeted = 0
        self.tokens_budgeted = 0
        self.max_running = 0
        self.closed = False

    def offer(self, candidates: Sequence[tuple[Candidate, Section, CacheKey]]) -> None:
        """Queue candidates not offered before in this turn, then launch what the limits allow."""
        if self.closed or not self.policy.enabled:
            return
        for cand, section, key in candidates[: self.policy.top_n]:
            if section.id in self._offered or cand.probability < self.policy.min_probability:
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

    def _within_budget(self, section: Section) -> bool:
        p = self.policy
        if p.budget_count is not None and len(self.records) >= p.budget_count:
            return False
        if p.budget_bytes is not None and self.bytes_budgeted + section.size_bytes > p.budget_bytes:
            return False
        return not (p.budget_tokens is not None and self.tokens_budgeted + section.tokens > p.budget_tokens)

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
            )
            task = self._launch(record, section)
            if task is None:  # already warm or already being fetched elsewhere: nothing to do
                continue
            self.records.append(record)
            self.bytes_budgeted += section.size_bytes
            self.tokens_budgeted += section.tokens
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
