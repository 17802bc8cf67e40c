"""Round trip of a warm-cache `request_context` hit against the MCP protocol floor, over stdio.

Run: ``python tests/benchmarks/mcp_latency.py [--calls 200] [--runs 3] [--json out.json]``

One real ``prehydrate serve`` subprocess per protocol era (2026-07-28 and the 2025-11-25 handshake
era), one stdio connection each. On that connection the script alternates two requests, ``--calls``
times each after a warm-up: ``tools/list`` (the cheapest request the server answers, with the
client-side response cache bypassed: the protocol floor) and ``request_context`` for a section that
is already warm (every measured call must report ``outcome == "hit"``, else the run fails).
Alternating puts both on the same connection under the same machine load. Before each request the
client idles ``--think-ms`` (default 5 ms; a model thinks for far longer): the server re-predicts and
schedules prefetches in the idle time after answering, as it does behind a real model, so that work
is not billed to whichever request happens to come next. The order alternates (floor first, then
hit first) so neither kind always follows the other. ``--think-ms 0`` measures back-to-back
calls, where it is. Reported: median and p95 of each, and the ratio of the medians; the goal is
hit <= 1.2x floor.

A hit still does real work per call: session and turn bookkeeping, the cache lookup, a Lookup event,
re-prediction and prefetch scheduling for the next call, and a response carrying the section
(about 1 KB, sent twice: as structured content and as its JSON text block).

``--in-memory`` runs the server in-process instead (the SDK's in-memory client, no transport, much
less noise) and also times a no-op tool returning a one-field model: the cost of any ``tools/call``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from pydantic import BaseModel

SECTION = "billing/refunds"


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


class _Tiny(BaseModel):
    ok: bool


@asynccontextmanager
async def _client(mode: str, memory: bool, tmp: Path) -> AsyncIterator[Client]:
    """A client on a stdio subprocess, or (``memory``) on an in-process server with a no-op tool."""
    if not memory:
        argv = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve", "--no-record"]
        argv += ["--traces", str(tmp / "traces.jsonl")]
        env = {**os.environ, "PREHYDRATE_HOME": str(tmp)}
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
        async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
            yield client
        return
    from prehydrate.mcp_server import ServerSettings, SessionPolicy, build_engine, create_server

    engine = build_engine(traces=None)
    server = create_server(engine, ServerSettings(sessions=SessionPolicy(record=False)))

    @server.tool(structured_output=True)
    async def noop(section: str | None = None) -> _Tiny:
        """A tool that does nothing: the cost of a tools/call itself."""
        return _Tiny(ok=True)

    async with engine, Client(server, mode=mode) as client:  # type: ignore[arg-type]
        yield client


async def one_run(mode: str, calls: int, warmup: int, think_ms: float, tmp: Path, memory: bool) -> dict[str, Any]:
    floor: list[float] = []
    hit: list[float] = []
    noop: list[float] = []
    server_wait: list[float] = []
    async with _client(mode, memory, tmp) as client:
        think = think_ms / 1000

        async def timed(request: Any) -> tuple[float, Any]:
            if think:
                await asyncio.sleep(think)
            t0 = time.perf_counter()
            result = await request()
            return (time.perf_counter() - t0) * 1000, result

        def list_tools() -> Any:
            return client.list_tools(cache_mode="bypass")

        def hit_call() -> Any:
            return client.call_tool("request_context", {"section": SECTION})

        def noop_call() -> Any:
            return client.call_tool("noop", {"section": SECTION})

        for i in range(warmup + calls):
            # alternate the order so neither kind always follows the other
            if i % 2:
                f_ms, _ = await timed(list_tools)
                h_ms, r = await timed(hit_call)
            else:
                h_ms, r = await timed(hit_call)
                f_ms, _ = await timed(list_tools)
            out = r.structured_content or {}
            if memory:
                n_ms, _ = await timed(noop_call)
                if i >= warmup:
                    noop.append(n_ms)
            if i >= warmup:
                if r.is_error or out.get("outcome") != "hit":
                    raise RuntimeError(f"call {i} was not a hit: {r.is_error=} {out.get('outcome')=}")
                floor.append(f_ms)
                hit.append(h_ms)
                server_wait.append(float(out["waited_ms"]))
        size = len(out["content"].encode("utf-8"))
        era = client.protocol_version
    f50, h50 = statistics.median(floor), statistics.median(hit)
    return {
        "era": era,
        "mode": mode,
        "transport": "memory" if memory else "stdio",
        "think_ms": think_ms,
        "noop_p50_ms": round(statistics.median(noop), 3) if noop else None,
        "calls": calls,
        "section_bytes": size,
        "floor_p50_ms": round(f50, 3),
        "floor_p95_ms": round(_pct(floor, 0.95), 3),
        "hit_p50_ms": round(h50, 3),
        "hit_p95_ms": round(_pct(hit, 0.95), 3),
        "server_wait_p50_ms": round(statistics.median(server_wait), 4),
        "ratio_p50": round(h50 / f50, 3),
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for run in range(args.runs):
            for mode in ("auto", "legacy"):
                row = await one_run(mode, args.calls, args.warmup, args.think_ms, Path(d), args.in_memory)
                row["run"] = run + 1
                rows.append(row)
                print(
                    f"run {run + 1} {row['era']:>10}: floor p50 {row['floor_p50_ms']:.3f} ms "
                    f"(p95 {row['floor_p95_ms']:.3f})  hit p50 {row['hit_p50_ms']:.3f} ms "
                    f"(p95 {row['hit_p95_ms']:.3f})  ratio {row['ratio_p50']:.2f}  "
                    f"server wait p50 {row['server_wait_p50_ms']:.3f} ms"
                    + (f"  no-op tool p50 {row['noop_p50_ms']:.3f} ms" if row["noop_p50_ms"] is not None else ""),
                    flush=True,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="measured calls of each kind per run")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls first")
    parser.add_argument("--runs", type=int, default=3, help="server processes per era")
    parser.add_argument("--think-ms", type=float, default=5.0, help="idle time before each request (0: back to back)")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="in-process server instead of stdio, plus a no-op tool (the cost of a tools/call itself)",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    ratios = [r["ratio_p50"] for r in rows]
    print(f"ratio hit/floor (median of medians): {statistics.median(ratios):.2f}; goal <= 1.20")
    if args.json:
        args.json.write_text(json.dumps({"section": SECTION, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
