"""What a LangGraph node-cache read costs: ``DiskNodeCache.aget`` (hit and miss) against LangGraph's ``InMemoryCache``.

Each read is one key of a node result (a small dict, serialised with LangGraph's serializer), the
way the graph runner asks before running a node with a ``CachePolicy``. Reported per read, median
and p95 over ``--reads`` reads, in microseconds.

    python tests/benchmarks/node_cache.py --reads 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from langgraph.cache.memory import InMemoryCache

from prehydrate.integrations.langgraph import DiskNodeCache

VALUE = {"messages": [{"role": "assistant", "content": "x" * 400}], "route": "billing"}


async def timed_reads(cache: Any, key: Any, reads: int) -> list[float]:
    out: list[float] = []
    for _ in range(reads):
        t0 = time.perf_counter_ns()
        await cache.aget([key])
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def summary(name: str, us: list[float]) -> dict[str, Any]:
    us = sorted(us)
    return {"cache": name, "median_us": round(statistics.median(us), 2), "p95_us": round(us[int(0.95 * len(us))], 2)}


async def amain(reads: int) -> list[dict[str, Any]]:
    hit = (("node", "retrieve"), "key-1")
    miss = (("node", "retrieve"), "absent")
    rows = []
    with tempfile.TemporaryDirectory(prefix="prehydrate-nodecache-") as tmp:
        disk: DiskNodeCache[Any] = DiskNodeCache(tmp)
        await disk.aset({hit: (VALUE, 3600)})
        memory: InMemoryCache[Any] = InMemoryCache()
        await memory.aset({hit: (VALUE, 3600)})
        for name, cache in (("DiskNodeCache", disk), ("InMemoryCache", memory)):
            await timed_reads(cache, hit, 200)  # warm up
            rows.append(summary(f"{name} hit", await timed_reads(cache, hit, reads)))
            rows.append(summary(f"{name} miss", await timed_reads(cache, miss, reads)))
        disk.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--reads", type=int, default=20000)
    args = parser.parse_args(argv)
    for row in asyncio.run(amain(args.reads)):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
