"""Save-to-fresh on a large watched folder, and how soon a subscribed MCP client is told.

Run: ``python -m tests.benchmarks.live_freshness [--files 10000] [--edits 200] [--notify 50]``
(builds its tree under a temporary folder). The numbers in docs/sources.md come from this script.

- **save-to-fresh**: a file of the tree is written (plain writes and editor-style atomic saves: a
  hidden temporary file renamed over the old one, alternating), then ``request_context`` of its
  section is asked every 10 ms until it returns the new text; the time from the end of the write to
  that answer, p50/p95/max over ``--edits`` edits.
- **never stale after observed**: once the engine has emitted ``SectionsChanged`` for the section,
  every answer must be the new text; any old answer after that point is counted as a violation.
- **notification latency**: an in-memory MCP client of the handshake era (JSON-RPC over memory
  streams) subscribed to the edited sections' URIs; time from the end of a write to the arrival of
  ``notifications/resources/updated``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import prehydrate as ph

POLL_S = 0.01
TIMEOUT_S = 30.0


def build_tree(root: Path, files: int) -> list[str]:
    """``files`` Markdown files of two sections each, 100 to a folder; returns their section ids."""
    ids: list[str] = []
    for i in range(files):
        folder = root / f"area{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc{i:05d}.md").write_text(_text(i, 0))
        ids.append(f"area{i // 100:03d}/doc{i:05d}")
    return ids


def _text(i: int, edit: int) -> str:
    return (
        f"# Document {i}\n\nRevision {edit} of document {i}. "
        + "Filler words for a realistic size. " * 20
        + f"\n\n## Details {i}\n\nMore about document {i}.\n"
    )


def _write(path: Path, text: str, atomic: bool) -> None:
    if atomic:  # what editors do: write a hidden temporary file, then rename it over the old one
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


async def save_to_fresh(engine: ph.Engine, root: Path, ids: list[str], edits: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    observed: dict[str, float] = {}
    engine.subscribe(
        lambda e: (
            observed.update(dict.fromkeys(e.changed, time.perf_counter()))
            if isinstance(e, ph.SectionsChanged)
            else None
        )
    )
    waits: list[float] = []
    violations = 0
    async with engine.session("bench") as session:
        for n in range(edits):
            i = rng.randrange(len(ids))
            sid = ids[i]
            marker = f"Revision {n + 1} of document {i}."
            async with session.turn(query="q", expect=[]) as turn:
                await turn.request_context(sid)  # warm: the old version is in the cache, as in real use
            observed.pop(sid, None)
            _write(root / f"{sid}.md", _text(i, n + 1), atomic=n % 2 == 1)
            t0 = time.perf_counter()
            while True:
                async with session.turn(query="q", expect=[]) as turn:
                    r = await turn.request_context(sid)
                if marker in r.content:
                    waits.append(time.perf_counter() - t0)
                    break
                if sid in observed:
                    violations += 1  # old text after the engine had observed the change
                if time.perf_counter() - t0 > TIMEOUT_S:
                    raise RuntimeError(f"{sid} not fresh after {TIMEOUT_S}s")
                await asyncio.sleep(POLL_S)
    return {
        "edits": edits,
        "p50_ms": _pct(waits, 0.5),
        "p95_ms": _pct(waits, 0.95),
        "max_ms": round(max(waits) * 1000, 1),
        "mean_ms": round(statistics.fmean(waits) * 1000, 1),
        "stale_after_observed": violations,
    }


async def notification_latency(engine: ph.Engine, root: Path, ids: list[str], edits: int, seed: int) -> dict[str, Any]:
    from mcp import Client
    from mcp_types import ResourceUpdatedNotification

    from prehydrate.mcp_server import create_server

    rng = random.Random(seed + 1)
    arrived: dict[str, float] = {}
    wake = asyncio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            arrived.setdefault(message.params.uri, time.perf_counter())
            wake.set()

    waits: list[float] = []
    async with Client(create_server(engine), mode="legacy", message_handler=on_message) as client:
        for n in range(edits):
            i = rng.randrange(len(ids))
            uri = f"prehydrate://sections/{ids[i]}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await client.subscribe_resource(uri)
            arrived.pop(uri, None)
            _write(root / f"{ids[i]}.md", _text(i, 10_000 + n), atomic=n % 2 == 1)
            t0 = time.perf_counter()
            async with asyncio.timeout(TIMEOUT_S):
                while uri not in arrived:
                    wake.clear()
                    await wake.wait()
            waits.append(arrived[uri] - t0)
    worst = round(max(waits) * 1000, 1)
    return {"edits": edits, "p50_ms": _pct(waits, 0.5), "p95_ms": _pct(waits, 0.95), "max_ms": worst}


async def main(files: int, edits: int, notify: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        ids = build_tree(root, files)
        t0 = time.perf_counter()
        async with ph.Engine(sources=[ph.DirectorySource(root)], predictor=ph.SequentialPredictor()) as engine:
            started = time.perf_counter() - t0
            await asyncio.sleep(0.5)  # let the watcher settle after start
            fresh = await save_to_fresh(engine, root, ids, edits, seed)
            told = await notification_latency(engine, root, ids, notify, seed) if notify else None
        return {
            "files": files,
            "sections": len(ids) * 2,
            "engine_start_s": round(started, 2),
            "save_to_fresh": fresh,
            "notification": told,
        }


if __name__ == "__main__":
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # one INFO line per batch otherwise
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--notify", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.files, args.edits, args.notify, args.seed)), indent=2))
