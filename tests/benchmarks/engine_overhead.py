"""Engine overhead per turn and memory-tier bounds.

Run: ``python tests/benchmarks/engine_overhead.py [--sections 10000] [--turns 2000]``

1. Overhead per turn with a large catalog: entering a turn (predict + schedule + launch prefetch
   tasks) and leaving it (bailout: cancel the running prefetches, settle, report). Sources sleep far
   longer than a turn lasts, so every prefetch is cancelled: the worst case for the bailout. The
   default predictor is measured after fitting it on sample traces mapped onto the catalog.
2. A stream of large sections through a ``MemoryTier``: bytes held never exceed ``max_bytes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time

import prehydrate as ph


def bench_sections(n_sections: int) -> list[ph.Section]:
    ids = [f"area{i % 50}/section-{i}" for i in range(n_sections)]
    return [ph.Section(id=s, title=s.replace("/", " ").replace("-", " "), index_text=s, version="v1") for s in ids]


def fitted_default(n_sections: int, sessions: int = 300, seed: int = 7) -> ph.Predictor:
    """The default predictor fitted on synthetic sessions: ten task types, four to six calls each."""
    import random

    rng = random.Random(seed)
    sections = bench_sections(n_sections)
    ids = [s.id for s in sections]
    traces = []
    for j in range(sessions):
        start = rng.randrange(n_sections)
        calls = [ids[(start + 50 * k) % n_sections] for k in range(rng.randint(4, 6))]
        traces.append(
            ph.SessionTrace(
                session=f"s{j}",
                task=ph.TaskSpec(type=f"bench{j % 10}", query=f"question about section {start}"),
                turns=(
                    ph.TurnTrace(
                        query=f"question about section {start}",
                        calls=tuple(ph.Call(key=c, think_ms=500) for c in calls),
                    ),
                ),
            )
        )
    predictor = ph.default_predictor()
    assert isinstance(predictor, ph.EnsemblePredictor)
    predictor.fit(traces, ph.Catalog(sections))
    assert predictor.fitted
    return predictor


async def turn_overhead(n_sections: int, turns: int, predictor: ph.Predictor, name: str) -> dict[str, float]:
    sections = bench_sections(n_sections)
    src = ph.MockSource(lambda sid, scope: sid, sections, latency_s=60.0)
    engine = ph.Engine(sources=[src], predictor=predictor, policy=ph.PrefetchPolicy(top_n=3, max_inflight=4))
    samples: list[float] = []
    async with engine, engine.session("bench") as session:
        for i in range(turns + 50):
            t0 = time.perf_counter()
            async with session.turn(query=f"question about section {i % n_sections}", task_type="bench"):
                pass
            if i >= 50:  # warm-up: first turns build the BM25 index and caches
                samples.append((time.perf_counter() - t0) * 1000)
            session.turns = ()
    samples.sort()
    return {
        "predictor": name,
        "sections": n_sections,
        "turns": turns,
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(samples[int(0.95 * len(samples)) - 1], 4),
        "mean_ms": round(statistics.fmean(samples), 4),
    }


async def memory_bound(max_bytes: int, n: int, size: int) -> dict[str, float]:
    tier = ph.MemoryTier(max_bytes=max_bytes)
    peak = 0
    for i in range(n):
        key = ph.CacheKey("t", f"big-{i}", "v")
        await tier.put(ph.CacheEntry.make(key, "x" * size, prefetched=i % 2 == 0))
        peak = max(peak, tier.bytes_used)
    return {
        "max_bytes": max_bytes,
        "entries_written": n,
        "entry_bytes": size,
        "peak_bytes_used": peak,
        "within_bound": peak <= max_bytes,
        "entries_held": len(tier),
        "evictions": tier.evictions,
        "rss_max_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sections", type=int, default=10_000)
    ap.add_argument("--turns", type=int, default=2000)
    args = ap.parse_args()
    seq = asyncio.run(turn_overhead(args.sections, args.turns, ph.SequentialPredictor(), "sequential"))
    print(json.dumps(seq))
    default = ph.default_predictor()
    print(json.dumps(asyncio.run(turn_overhead(args.sections, args.turns, default, type(default).__name__))))
    t0 = time.perf_counter()
    fitted = fitted_default(args.sections)
    fit_s = time.perf_counter() - t0
    result = asyncio.run(turn_overhead(args.sections, args.turns, fitted, "EnsemblePredictor (fitted)"))
    print(json.dumps({**result, "fit_s": round(fit_s, 2)}))
    print(json.dumps(asyncio.run(memory_bound(16 << 20, 400, 1 << 20))))


if __name__ == "__main__":
    main()
