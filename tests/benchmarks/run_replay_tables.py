"""Produce the replay tables of docs/benchmarks.md (and the plot) from the real engine on virtual time.

Trains on each data set's train split, replays its test split, once per prefetch width (top_n 1, 3
and 5) and policy, and prints Markdown tables. Nothing here is tuned on the test split: the only
choice made from data (the ensemble's probability threshold) is made by cross-validation inside the
train split (see prehydrate/_replay.py).

    python tests/benchmarks/run_replay_tables.py                  # tau2 (the real data set) and sample
    python tests/benchmarks/run_replay_tables.py --data tau2 --plot docs/img/replay_tau2_top3.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import prehydrate as ph
from prehydrate._replay import ReplayResult
from prehydrate.cli._replay_cmd import write_plot

ROOT = Path(__file__).resolve().parents[2]
DATA = {
    "tau2": (
        ROOT / "tests/benchmarks/data/tau2/sections.jsonl",
        ROOT / "tests/benchmarks/data/tau2/train.jsonl",
        ROOT / "tests/benchmarks/data/tau2/test.jsonl",
    ),
    "sample": (
        Path(ph.sample_sections_path()),
        Path(ph.sample_traces_path("train")),
        Path(ph.sample_traces_path("test")),
    ),
}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def table(results: dict[int, ReplayResult]) -> str:
    """One row per policy; hit and covered rate at each width, waste and wait at top_n 3."""
    widths = sorted(results)
    mid = 3 if 3 in results else widths[0]
    base = _mean(results[mid].waits["none"]) if "none" in results[mid].waits else 0.0
    head = ["policy"]
    head += [f"hit@{n}" for n in widths] + [f"covered@{n}" for n in widths]
    head += [f"wasted/call@{n}" for n in widths]
    head += [f"mean wait@{mid} (ms)", f"p95 wait@{mid} (ms)", f"wait cut@{mid}"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in results[mid].json["policies"]:
        row = [f"**{name}**" if name == results[mid].json["default_policy"] else name]
        pol = {n: results[n].json["policies"][name] for n in widths}
        row += [f"{pol[n]['hit_rate']:.3f}" for n in widths]
        row += [f"{pol[n]['covered_rate']:.3f}" for n in widths]
        row += [f"{pol[n]['wasted'] / pol[n]['calls']:.2f}" if pol[n]["calls"] else "-" for n in widths]
        mean_wait = _mean(results[mid].waits[name])
        cut = 1 - mean_wait / base if base else 0.0
        row += [f"{mean_wait:.0f}", f"{pol[mid]['wait_ms_p95']:.0f}", f"{cut:.0%}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", choices=sorted(DATA), help="data set (repeatable; default: all)")
    parser.add_argument("--top-n", type=int, action="append", help="widths (repeatable; default 1, 3, 5)")
    parser.add_argument("--hydrate-ms", type=float, default=300)
    parser.add_argument("--plot", type=Path, help="write the top_n=3 plot of the first data set here")
    parser.add_argument("--json-dir", type=Path, help="write each run's JSON here")
    args = parser.parse_args()
    widths = args.top_n or [1, 3, 5]
    for i, name in enumerate(args.data or ["tau2", "sample"]):
        sections, train, test = DATA[name]
        t0 = time.perf_counter()
        results = {n: ph.replay(sections, train, test, top_n=n, hydrate_ms=args.hydrate_ms) for n in widths}
        took = time.perf_counter() - t0
        calls = results[widths[0]].json["policies"]["none"]["calls"]
        thresholds = ", ".join(f"top_n {n}: {results[n].thresholds.get('ensemble', 0.0)}" for n in widths)
        print(f"\n### {name}: {calls} test calls, hydrate {args.hydrate_ms:g} ms ({took:.0f} s wall)\n")
        print(f"Ensemble threshold chosen on the train split: {thresholds}\n")
        print(table(results))
        if args.json_dir is not None:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            for n, r in results.items():
                out: dict[str, Any] = r.json
                (args.json_dir / f"replay_{name}_top{n}.json").write_text(json.dumps(out, indent=2) + "\n")
        if args.plot is not None and i == 0 and 3 in results:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            write_plot(results[3], args.plot)


if __name__ == "__main__":
    main()
