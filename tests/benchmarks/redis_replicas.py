"""Replicas sharing one Redis: hydrations saved, lookup latency by tier, cost of a Redis outage.

Run: ``python -m tests.benchmarks.redis_replicas`` (starts its own redis-server on a free port).
The numbers in docs/scaling.md come from this script.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import prehydrate as ph
from tests._redis import free_port, running_redis

SECTIONS = [f"doc/{i}" for i in range(40)]
HYDRATE_S = 0.2
REPLICAS = 4


def _source(calls: list[str]) -> ph.MockSource:
    def handler(section_id: str, scope: ph.Scope) -> str:
        calls.append(section_id)
        return f"{section_id}: " + "lorem ipsum " * 400  # ~4.8 kB

    return ph.MockSource(handler, SECTIONS, latency_s=HYDRATE_S)


def _engine(calls: list[str], redis_url: str | None, prefix: str, **tier_kw: object) -> ph.Engine:
    tiers: list[ph.CacheTier] = [ph.MemoryTier()]
    if redis_url is not None:
        tiers.append(ph.RedisTier(redis_url, prefix=prefix, **tier_kw))  # type: ignore[arg-type]
    return ph.Engine(sources=[_source(calls)], cache=ph.WarmCache(tiers=tiers), policy=ph.PrefetchPolicy(enabled=False))


async def fleet(redis_url: str | None, prefix: str) -> dict[str, float]:
    """REPLICAS engines each serve every section once, in its own shuffled order, all at once."""
    calls: list[str] = []
    engines = [_engine(calls, redis_url, prefix) for _ in range(REPLICAS)]
    waits: list[float] = []

    async def replica(n: int, engine: ph.Engine) -> None:
        order = SECTIONS[:]
        random.Random(n).shuffle(order)
        async with engine.session(f"s{n}", tenant="acme") as s, s.turn(query="q") as t:
            for sid in order:
                waits.append((await t.request_context(sid)).waited_ms)

    for e in engines:
        await e.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(replica(n, e) for n, e in enumerate(engines)))
    wall = time.perf_counter() - t0
    for e in engines:
        await e.aclose()
    waits.sort()
    return {
        "requests": len(waits),
        "hydrations": len(calls),
        "wait_ms_mean": statistics.fmean(waits),
        "wait_ms_p95": waits[int(0.95 * (len(waits) - 1))],
        "wall_s": wall,
    }


async def lookup_latency(redis_url: str, prefix: str) -> dict[str, float]:
    """Per-call latency of a memory hit, a Redis hit, and a call while Redis is down (breaker open)."""
    calls: list[str] = []
    writer = _engine(calls, redis_url, prefix)
    async with writer, writer.session("w", tenant="acme") as s, s.turn(query="q") as t:
        for sid in SECTIONS:
            await t.request_context(sid)
    reader = _engine(calls, redis_url, prefix)
    out: dict[str, float] = {}
    async with reader, reader.session("r", tenant="acme") as s, s.turn(query="q") as t:
        redis_hits = [(await t.request_context(sid)) for sid in SECTIONS]
        memory_hits = [(await t.request_context(sid)) for sid in SECTIONS]
    assert {r.tier for r in redis_hits} == {"redis"} and {r.tier for r in memory_hits} == {"memory"}
    out["redis_hit_ms_median"] = statistics.median(r.waited_ms for r in redis_hits)
    out["memory_hit_ms_median"] = statistics.median(r.waited_ms for r in memory_hits)

    # Misses against a 0 ms source isolate what the cache path costs: memory only, Redis up, Redis
    # down (refused: the first call trips the breaker) and Redis hanging (accepts, never answers:
    # the first call pays the socket timeout, then the breaker skips it).
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    blackhole = await asyncio.start_server(hang, "127.0.0.1", 0)
    hang_port = blackhole.sockets[0].getsockname()[1]
    for name, url in (
        ("memory_only", None),
        ("redis_up", redis_url),
        ("redis_down", f"redis://127.0.0.1:{free_port()}/0"),
        ("redis_hanging", f"redis://127.0.0.1:{hang_port}/0"),
    ):
        engine = _engine(calls, url, prefix + name, backoff_s=60)
        engine.sources[0].latency_s = 0.0  # type: ignore[attr-defined]
        async with engine, engine.session("d", tenant=name) as s, s.turn(query="q") as t:
            first = (await t.request_context(SECTIONS[0])).waited_ms
            rest = [(await t.request_context(sid)).waited_ms for sid in SECTIONS[1:]]
        out[f"miss_{name}_first_ms"] = first
        out[f"miss_{name}_median_ms"] = statistics.median(rest)
    blackhole.close()
    return out


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        alone = await fleet(None, "")
        shared = await fleet(server.url, "bench-fleet")
        latency = await lookup_latency(server.url, "bench-latency")
    print(f"{REPLICAS} replicas x {len(SECTIONS)} sections, source hydration {HYDRATE_S * 1000:.0f} ms")
    print(f"{'':18}{'hydrations':>11}{'mean wait ms':>14}{'p95 wait ms':>13}{'wall s':>8}")
    for name, r in (("memory only", alone), ("shared Redis", shared)):
        print(
            f"{name:18}{r['hydrations']:>11.0f}{r['wait_ms_mean']:>14.1f}{r['wait_ms_p95']:>13.1f}{r['wall_s']:>8.2f}"
        )
    for k, v in latency.items():
        print(f"{k}: {v:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
