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
    python tests/benchmarks/learning_curve.py --datasets tau2,livemcpbench --out /tmp/curve.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import all_datasets, dataset_paths, group_of, subset_by_group  # noqa: E402
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


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help=f"comma-separated (default: all of {', '.join(all_datasets())})")
    parser.add_argument("--hydrate-ms", type=float, default=300)
    parser.add_argument("--seed", default=SEED, help="seed of the group order (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
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
    with progress_bar() as bar, tempfile.TemporaryDirectory() as tmp:
        overall = bar.add_task("data sets x shares", total=len(names) * len(SHARES))
        current = bar.add_task("", total=None)

        def on_progress(name: str, n: int, policy: str, done: int, total: int) -> None:
            bar.update(current, description=f"{name}: {policy}", completed=done, total=total)

        for name in names:
            lines = dataset_paths(name)[1].read_text(encoding="utf-8").splitlines()
            for share in SHARES:
                chosen = subset_by_group(lines, share, seed=args.seed)
                train = Path(tmp) / f"{name}-{share}.jsonl"
                train.write_text("".join(line + "\n" for line in chosen), encoding="utf-8")
                bar.update(overall, description=f"{name} at {share:.0%}")
                run = replay_dataset(name, policies, [TOP_N], args.hydrate_ms, on_progress, train_path=train)
                out.append(row(name, share, chosen, run, policies))
                bar.advance(overall)
    text = "\n".join(out)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
