"""Quickstart: prehydrate's core API in one file, offline.

An agent asks for context with ``request_context`` while it works. prehydrate predicts which
sections it will ask for, hydrates them in the background into a warm cache, serves the predicted
ones at once (``hit``) and bails out of the rest when the turn ends.

This script builds an Engine over the bundled sample corpus (plus a folder of your own Markdown),
lets it learn from the bundled recorded sessions, then plays one conversation and prints what each
call cost. Hydration is slowed to ``--latency-ms`` so there is something to hide.

    python examples/quickstart.py                 # about 10 s: most of it is learning 300 sessions
    python examples/quickstart.py --train 50      # faster, a weaker predictor
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import prehydrate as ph


async def play(workdir: Path, *, latency_s: float, train: int) -> ph.TurnReport:
    # 1. Sources: where sections come from. The bundled corpus is a JSONL file of sections; it is
    #    instant, so MockSource wraps it with a simulated latency (a real source would be a
    #    database, a vector store or an API). A folder of Markdown is split into sections by heading.
    corpus = ph.JsonlSource(ph.sample_sections_path())
    slow = ph.MockSource(
        lambda sid, scope: corpus.hydrate(sid, scope=scope),
        corpus.list_sections(),
        name="sample",
        latency_s=latency_s,
    )
    notes = workdir / "notes"
    notes.mkdir()
    (notes / "team.md").write_text("# Escalations\n\nPage the on-call lead for refunds over $1,000.\n")

    # 2. Recorded sessions to learn from. In production the TraceStore fills itself: the engine
    #    records every session it serves. Here it starts with the bundled training sessions.
    store = ph.TraceStore(workdir / "traces.jsonl")
    store.extend(ph.read_traces(ph.sample_traces_path("train"))[:train])

    engine = ph.Engine(
        sources=[slow, ph.DirectorySource(notes)],
        cache=ph.WarmCache(tiers=[ph.MemoryTier(max_bytes=64 << 20), ph.DiskTier(workdir / "cache")]),
        predictor=ph.default_predictor(),
        policy=ph.PrefetchPolicy(top_n=3, max_inflight=4),
        traces=store,
    )
    async with engine:  # builds the catalog and fits the predictor on the store
        print(f"{len(engine.catalog)} sections, e.g. {engine.catalog.ids[:3]}")
        async with engine.session("conv-42", tenant="acme") as session:
            # Entering the turn predicts the sections and starts hydrating them in the background.
            async with session.turn(query="workspace suspended after a chargeback", task_type="billing+refund") as turn:
                print("prefetching:", [p.section_id for p in turn.prefetches])
                for section, think_ms in (("refunds/chargebacks", 340), ("billing/refunds", 1108)):
                    await asyncio.sleep(think_ms / 1000)  # the model thinks before each call
                    r = await turn.request_context(section)
                    print(f"  {r.section_id:<22} {r.outcome:<8} waited {r.waited_ms:6.1f} ms  {r.title!r}")
                # Free text resolves to the best-matching section (BM25 over the catalog).
                r = await turn.request_context(query="escalate a refund to the on-call lead")
                print(f"  {r.section_id:<22} {r.outcome:<8} waited {r.waited_ms:6.1f} ms  (by query)")
            # Leaving the turn is the bailout: unused prefetches are cancelled or discarded.
            report = turn.report
            assert report is not None
            print(
                f"turn: {report.calls} calls, {report.hits} hits, {report.inflight} inflight, {report.misses} misses; "
                f"{report.prefetched} prefetched, {report.wasted} wasted ({report.bytes_wasted} bytes)"
            )
            # A caller that knows what comes next can say so instead of asking the predictor.
            async with session.turn(query="and the refund itself?", expect=["refunds/request"]) as turn2:
                await asyncio.sleep(latency_s * 1.5)
                r = await turn2.request_context("refunds/request")
                print(f"expected: {r.section_id} {r.outcome}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=300.0, help="simulated hydration latency")
    parser.add_argument("--train", type=int, default=300, help="recorded sessions to learn from (max 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(play(Path(tmp), latency_s=args.latency_ms / 1000, train=args.train))


if __name__ == "__main__":
    main()
