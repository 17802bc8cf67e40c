"""Replay: recorded sessions through the real engine on virtual time, one run per prefetch policy.

Each test session becomes a conversation (``engine.conversations.open(...)``), each turn
``session.turn(query, task_type, tags)``, and each call sleeps its recorded ``think_ms`` before
``await turn.request_context(key)``, against a :class:`MockSource` whose hydration takes
``hydrate_ms``. The event loop is a `looptime` loop: its clock jumps to the next timer, so a replay
of hours of model time takes seconds and the numbers do not depend on the machine (same inputs, byte-identical JSON).

Every session gets its own cache partition, so its cache entries are its own: a section hydrated in one
session is not a free hit in the next (which would measure the cache, not the prediction), while a
section requested again in the same session is a hit, as it would be in production.

Policies are registered by name in ``_policies.POLICIES`` (predictor factory, prefetch policy,
description), the one table the CLI and docs/benchmarks.md read:

- ``none``: no speculation, the baseline of context wait;
- ``sequential``, ``trace``, ``lexical``, ``usage``, ``neighbor``: one predictor each, top ``top_n``;
- ``reference``: the baseline the default must beat (``ReferencePredictor``: order-1 Markov per task
  type + BM25, task tags first; counts only), top ``top_n``;
- ``ensemble`` (the default): ``ph.default_predictor()`` (the fitted ranker) under
  ``ph.default_policy(top_n)``, the very objects ``ph.Engine()`` and ``prehydrate serve`` use: width
  ``top_n`` with the online waste budget (1.0 wasted prefetch per request, enforced from the
  engine's own measured feedback over the replayed sessions; nothing is tuned on the test traces);
- ``ensemble-wide``: the ensemble at fixed width without the waste budget (every prediction's top
  ``top_n``), to show what the budget trades: more hits for more waste;
- ``ensemble-adaptive``: the ensemble with the adaptive width instead of the waste budget
  (``PrefetchPolicy(adaptive=True)``, starting at ``top_n``): measured feedback, not offline tuning;
- ``oracle``: a predictor that knows the turn's remaining calls and names the next ``top_n`` of them
  at every prediction point (turn start and after each call), skipping sections the session already
  holds. It has the same width, the same re-prediction points and the same source latency as the
  others, so it is the ceiling for any predictor of that width: what is left is latency no
  prediction can hide (a call whose think time is shorter than the hydration);
- ``oracle-start``: ``session.turn(expect=...)`` with the turn's first ``top_n`` calls, nothing after;
  weaker than ``oracle`` on turns with more than ``top_n`` calls (not a ceiling, shown for contrast).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._cache import MemoryTier, WarmCache
from ._catalog import Catalog
from ._engine import Engine
from ._errors import ConfigError
from ._events import TurnReport
from ._policies import DEFAULT_POLICY, POLICIES, OraclePredictor
from ._predict import Learner, Predictor, SequentialPredictor
from ._prefetch import PrefetchPolicy
from ._sections import Hydrated, Scope, Section, content_version
from ._sources import MockSource, read_sections_jsonl
from ._traces import SessionTrace, read_traces

__all__ = [
    "DEFAULT_POLICIES",
    "DEFAULT_POLICY",
    "POLICIES",
    "OraclePredictor",
    "ReplayResult",
    "replay",
    "run_replay",
]

logger = logging.getLogger("prehydrate.replay")

DEFAULT_POLICIES: tuple[str, ...] = tuple(POLICIES)
"""Every registered policy, in the order tables show them (see ``_policies.py``)."""

Progress = Callable[[str, int, int], None]
"""``progress(policy, sessions_done, sessions_total)``, called after every replayed session."""


@dataclass(slots=True)
class _Tally:
    reports: list[TurnReport] = field(default_factory=list)
    skipped: int = 0
    floor: float = 0.0
    """The engine's probability floor when the run ended."""

    def summary(self) -> dict[str, Any]:
        calls = sum(r.calls for r in self.reports)
        hits = sum(r.hits for r in self.reports)
        inflight = sum(r.inflight for r in self.reports)
        prefetched = sum(r.prefetched for r in self.reports)
        wasted = sum(r.wasted for r in self.reports)
        waits = [w for r in self.reports for w in r.wait_ms]
        durations = [r.duration_ms for r in self.reports]
        return {
            "calls": calls,
            "hits": hits,
            "inflight": inflight,
            "misses": sum(r.misses for r in self.reports),
            "hit_rate": _r(hits / calls if calls else 0.0, 4),
            "covered_rate": _r((hits + inflight) / calls if calls else 0.0, 4),
            "prefetched": prefetched,
            "wasted": wasted,
            "waste_ratio": _r(wasted / prefetched if prefetched else 0.0, 4),
            "wait_ms_p50": _r(float(np.percentile(waits, 50)) if waits else 0.0, 3),
            "wait_ms_p95": _r(float(np.percentile(waits, 95)) if waits else 0.0, 3),
            "turn_ms_mean": _r(float(np.mean(durations)) if durations else 0.0, 3),
        }


def _r(x: float, digits: int) -> float:
    out = round(float(x), digits)
    return 0.0 if out == 0 else out  # no "-0.0" in the JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """A replay's JSON document plus the raw per-call waits (for plots) and skipped calls."""

    json: dict[str, Any]
    waits: dict[str, list[float]]
    skipped_calls: int = 0
    """Calls whose section id is not in the sections file (counted once per policy run, not replayed)."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """The probability floor each policy ended with (the waste budget moves it for ``ensemble``)."""


def _predictor_for(
    name: str, train: Sequence[SessionTrace], catalog: Catalog, fitted: dict[str, Predictor]
) -> Predictor | None:
    """The policy's predictor, fitted on ``train`` once per ``fits`` group and shared within it."""
    spec = POLICIES[name]
    if spec.predictor is None:
        return None
    key = spec.fits or spec.name
    if key not in fitted:
        predictor = spec.predictor()
        if isinstance(predictor, Learner):
            predictor.fit(train, catalog)
        fitted[key] = predictor
    return fitted[key]


def _policy_for(name: str, top_n: int) -> PrefetchPolicy:
    return POLICIES[name].prefetch(top_n)


def _run(coro: Any) -> Any:
    """Run a coroutine on a fresh looptime loop (virtual time starting at 0)."""
    try:
        import looptime
    except ImportError:  # an optional extra: say which one, for API users as for the CLI
        raise ModuleNotFoundError(
            'replay needs the replay extra (looptime is not installed): pip install "prehydrate[replay]"',
            name="looptime",
        ) from None

    loop = looptime.new_event_loop(start=0.0)
    try:
        result = loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        return result
    finally:
        loop.close()


async def _replay_policy(
    name: str,
    sections: list[tuple[Section, str]],
    test: Sequence[SessionTrace],
    predictor: Predictor | None,
    policy: PrefetchPolicy,
    *,
    top_n: int,
    hydrate_ms: float,
    progress: Progress | None,
) -> tuple[_Tally, list[float]]:
    content = {s.id: text for s, text in sections}

    def handler(section_id: str, scope: Scope) -> Hydrated:
        text = content[section_id]
        return Hydrated(section_id=section_id, content=text, version=content_version(text))

    source = MockSource(handler, [s for s, _ in sections], name="replay", latency_s=hydrate_ms / 1000.0)
    engine = Engine(
        sources=[source],
        cache=WarmCache([MemoryTier(max_bytes=256 << 20)]),
        predictor=predictor if predictor is not None else SequentialPredictor(),
        policy=policy,
        learn_on_start=False,
    )
    catalog = engine.catalog
    oracle = predictor if isinstance(predictor, OraclePredictor) else None
    tally = _Tally()
    async with engine:
        for done, trace in enumerate(test, start=1):
            # One conversation of the engine's registry per replayed session, in its own cache partition.
            session = engine.conversations.open(trace.session, partition=trace.session, record=False)
            try:
                for turn in trace.turns:
                    keys = [c.key for c in turn.calls if c.key in catalog]
                    if oracle is not None:
                        oracle.script = tuple(keys)
                    expect = keys[:top_n] if name in POLICIES and POLICIES[name].expect_start else None
                    async with session.turn(
                        query=turn.query, task_type=trace.task.type or None, tags=trace.task.tags, expect=expect
                    ) as t:
                        for call in turn.calls:
                            await asyncio.sleep(call.think_ms / 1000.0)
                            if call.key not in catalog:
                                tally.skipped += 1
                                continue
                            await t.request_context(call.key)
                    assert t.report is not None
                    tally.reports.append(t.report)
            finally:
                await engine.conversations.close(session)
            if progress is not None:
                progress(name, done, len(test))
    tally.floor = engine.width.floor
    waits = [w for r in tally.reports for w in r.wait_ms]
    return tally, waits


def replay(
    sections_path: str | Path,
    train_path: str | Path,
    test_path: str | Path,
    *,
    policies: Sequence[str] | None = None,
    top_n: int = 3,
    hydrate_ms: float = 300,
    progress: Progress | None = None,
) -> ReplayResult:
    """Train on ``train_path``, replay ``test_path`` once per policy; see the module docstring.

    Raises:
        MalformedInputError: a sections or traces line is broken (names file and line).
        ConfigError: an unknown policy name or a negative ``top_n``/``hydrate_ms``.
    """
    names = list(dict.fromkeys(policies)) if policies else list(DEFAULT_POLICIES)
    for n in names:
        if n not in POLICIES:
            raise ConfigError(f"unknown replay policy {n!r}; choose from {', '.join(POLICIES)}")
    if top_n < 0 or hydrate_ms < 0:
        raise ConfigError("replay needs top_n >= 0 and hydrate_ms >= 0")
    sections = read_sections_jsonl(sections_path)
    train = read_traces(train_path)
    test = read_traces(test_path)
    catalog = Catalog([s for s, _ in sections])
    missing = sorted({c.key for t in test for turn in t.turns for c in turn.calls if c.key not in catalog})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        logger.warning(
            "%d section id(s) of %s are not in %s (calls skipped): %s", len(missing), test_path, sections_path, shown
        )
    fitted: dict[str, Predictor] = {}
    results: dict[str, dict[str, Any]] = {}
    waits: dict[str, list[float]] = {}
    used_thresholds: dict[str, float] = {}
    skipped = 0
    for name in names:
        predictor = _predictor_for(name, train, catalog, fitted)
        policy = _policy_for(name, top_n)
        tally, w = _run(
            _replay_policy(
                name, sections, test, predictor, policy, top_n=top_n, hydrate_ms=hydrate_ms, progress=progress
            )
        )
        results[name] = tally.summary()
        used_thresholds[name] = round(tally.floor, 4)
        waits[name] = w
        skipped = tally.skipped
    default = DEFAULT_POLICY if DEFAULT_POLICY in names else names[0]
    doc = {"default_policy": default, "top_n": top_n, "hydrate_ms": _num(hydrate_ms), "policies": results}
    return ReplayResult(json=doc, waits=waits, skipped_calls=skipped, thresholds=used_thresholds)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def run_replay(
    sections_path: str | Path,
    train_path: str | Path,
    test_path: str | Path,
    *,
    policies: Sequence[str] | None = None,
    top_n: int = 3,
    hydrate_ms: float = 300,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The replay JSON document (``default_policy``, ``top_n``, ``hydrate_ms``, ``policies``).

    Example:
        >>> import prehydrate as ph
        >>> doc = ph.run_replay(ph.sample_sections_path(), ph.sample_traces_path("train"),
        ...                     ph.sample_traces_path("test"), policies=["none", "oracle"])
        >>> doc["policies"]["none"]["hit_rate"] <= doc["policies"]["oracle"]["hit_rate"]
        True
    """
    return replay(
        sections_path, train_path, test_path, policies=policies, top_n=top_n, hydrate_ms=hydrate_ms, progress=progress
    ).json
