"""Leave-group-out numbers of the default ensemble's fit, per data set (issue #14: report them).

Fits ``ph.default_predictor()`` on each data set's training split (or, with ``--dev``, the
development split's training side) and prints what its grouped validation measured: the next call's
top-3 hit per prediction point under grouped 5-fold cross-validation (every fold ranked by weights
fitted on the other folds, whose base predictors never saw its tasks), the same for the unfitted
ranking, whether the fit was kept, and the calibration of P(used) on the grouped validation split.
No test split is read.

    python tests/benchmarks/grouped_cv.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import prehydrate as ph
from prehydrate._validation import group_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import DEV_ENV, all_datasets, dataset_paths  # noqa: E402

HEAD = (
    "| data set | sessions | groups | ranker hit@3 (grouped CV) | unfitted hit@3 | fit kept? "
    "| L2 | validation log loss | validation ECE | fit (s) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def row(name: str) -> str:
    """One data set's line: fit the default on its training traces and read the fit report."""
    sections, train, _ = dataset_paths(name)
    catalog = ph.Engine(sources=[ph.JsonlSource(str(sections))]).catalog
    traces = ph.read_traces(train)
    predictor = ph.default_predictor()
    t0 = time.perf_counter()
    predictor.fit(traces, catalog)
    seconds = time.perf_counter() - t0
    r = predictor.fit_report
    groups = len({group_of(t) for t in traces})  # the grouping the fit itself uses
    kept = "no (unfitted ranks)" if r.fallback_chosen else "yes"
    cells = [name, str(len(traces)), str(groups), f"{r.validation_hit:.3f}", f"{r.fallback_hit:.3f}", kept]
    cells += [f"{r.l2:g}", f"{r.validation_log_loss:.3f}", f"{r.validation_ece:.3f}", f"{seconds:.1f}"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help=f"comma-separated (default: all of {', '.join(all_datasets())})")
    parser.add_argument("--dev", action="store_true", help="fit the development splits' training side")
    args = parser.parse_args(argv)
    if args.dev:
        os.environ[DEV_ENV] = "1"
    names = args.datasets.split(",") if args.datasets else all_datasets()
    print(HEAD)
    for name in names:
        print(row(name), flush=True)


if __name__ == "__main__":
    main()
