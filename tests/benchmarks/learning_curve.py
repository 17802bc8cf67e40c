"""The learning curve of docs/benchmarks.md: how prediction improves with recorded sessions, per data set.

For each data set, trains on 0 / 5 / 20 / 50 / 100% of its training sessions and replays the whole
test split at top_n 3 with the default policy, ``reference`` (when prehydrate has it) and
``lexical`` (which learns nothing from traces, so its row shows what the section texts alone give).
The subsets are drawn by **group** (task, scenario or call pattern; ``task.type`` + ``task.query``
for the sample, which has no group field): groups are ranked by SHA-256 of ``seed:group`` and
taken whole, in that order, until the share of sessions is reached. So a subset never holds half a
task, and the subsets are nested (the 20% subset contains the 5% one): the curve measures more
data, not different data. 0% is a new user with no recorded session.

    python tests/benchmarks/learning_curve.py                        # every data set
    python tests/benchmarks/learning_curve.py --datasets tau2,livemcpbench --out /tmp/curve.md --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import DEV_ENV, all_datasets, dataset_paths, group_of, subset_by_group  # noqa: E402
from run_replay_tables import (  # noqa: E402
    REFERENCE,
    Run,
    available_policies,
    default_policy,
    note_missing_reference,
    parse_datasets,
    progress_bar,
    replay_dataset,
)

SHARES: tuple[float, ...] = (0.0, 0.05, 0.2, 0.5, 1.0)
SEED = "learning-curve"
TOP_N = 3


def curve_policies() -> list[str]:
    """The default policy, ``reference`` when prehydrate has it, and ``lexical``."""
    available = available_policies()
    wanted = [default_policy(), REFERENCE, "lexical"]
    return [p for p in dict.fromkeys(wanted) if p in available]


def row(name: str, share: float, lines: Sequence[str], run: Run, policies: Sequence[str]) -> str:
    """One Markdown row: the subset's size and each policy's hit rate and wasted prefetches per request."""
    groups = len({group_of(json.loads(line)) for line in lines})
    pols = run.results[TOP_N].json["policies"]
    cells = [name, f"{share:.0%}", f"{len(lines)} ({groups})"]
    for policy in policies:
        pol = pols[policy]
        cells += [f"{pol['hit_rate']:.3f}", f"{pol['wasted'] / pol['calls']:.2f}" if pol["calls"] else "-"]
    return "| " + " | ".join(cells) + " |"


def point(
    name: str,
    share: float,
    policies: Sequence[str],
    seed: str,
    hydrate_ms: float,
    on_progress: Callable[[str, int, str, int, int], None] | None = None,
) -> str:
    """One point of the curve: train on ``share`` of the sessions (whole groups), replay the test split."""
    lines = dataset_paths(name)[1].read_text(encoding="utf-8").splitlines()
    chosen = subset_by_group(lines, share, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.jsonl"
        train.write_text("".join(line + "\n" for line in chosen), encoding="utf-8")
        run = replay_dataset(name, policies, [TOP_N], hydrate_ms, on_progress, train_path=train)
    return row(name, share, chosen, run, policies)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help=f"comma-separated (default: all of {', '.join(all_datasets())})")
    parser.add_argument("--hydrate-ms", type=float, default=300)
    parser.add_argument("--seed", default=SEED, help="seed of the group order (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--jobs", type=int, default=1, help="replay this many points of the curve at once")
    parser.add_argument("--dev", action="store_true", help="replay the development splits (never a test split)")
    args = parser.parse_args(argv)
    if args.dev:
        os.environ[DEV_ENV] = "1"  # read by dataset_paths, in this process and the workers
    names = parse_datasets(args.datasets)
    policies = curve_policies()
    note_missing_reference(policies)
    head = ["data set", "train share", "sessions (groups)"]
    for policy in policies:
        head += [f"{policy} hit", f"{policy} wasted/req"]
    out = [
        f"top_n {TOP_N}, hydration {args.hydrate_ms:g} ms, subsets by group (seed {args.seed!r}).\n",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
    ]
    units = [(name, share) for name in names for share in SHARES]
    with progress_bar() as bar:
        overall = bar.add_task("data sets x shares", total=len(units))
        current = bar.add_task("", total=None)

        def on_progress(name: str, n: int, policy: str, done: int, total: int) -> None:
            bar.update(current, description=f"{name}: {policy}", completed=done, total=total)

        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = [pool.submit(point, n, s, policies, args.seed, args.hydrate_ms) for n, s in units]
                for _ in as_completed(futures):
                    bar.advance(overall)
                out += [f.result() for f in futures]
        else:
            for name, share in units:
                bar.update(overall, description=f"{name} at {share:.0%}")
                out.append(point(name, share, policies, args.seed, args.hydrate_ms, on_progress))
                bar.advance(overall)
    text = "\n".join(out)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
