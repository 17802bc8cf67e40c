"""``prehydrate replay`` and ``run_replay``: the JSON contract, determinism, and bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

import prehydrate as ph
from prehydrate.cli import app

KEYS = {
    "calls",
    "hits",
    "inflight",
    "misses",
    "hit_rate",
    "covered_rate",
    "prefetched",
    "wasted",
    "waste_ratio",
    "wait_ms_p50",
    "wait_ms_p95",
    "turn_ms_mean",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A small slice of the bundled sample data, so every policy replays in a moment."""
    d = tmp_path_factory.mktemp("replay")
    train, test = d / "train.jsonl", d / "test.jsonl"
    ph.write_traces(train, ph.read_traces(ph.sample_traces_path("train"))[:80])
    ph.write_traces(test, ph.read_traces(ph.sample_traces_path("test"))[:25])
    return Path(ph.sample_sections_path()), train, test


@pytest.fixture(scope="module")
def doc(data: tuple[Path, Path, Path]) -> dict[str, object]:
    return ph.run_replay(*data)


def test_json_has_the_documented_shape(doc: dict[str, object], data: tuple[Path, Path, Path]) -> None:
    assert set(doc) == {"default_policy", "top_n", "hydrate_ms", "policies"}
    assert (doc["default_policy"], doc["top_n"], doc["hydrate_ms"]) == ("ensemble", 3, 300)
    policies = doc["policies"]
    assert isinstance(policies, dict)
    assert list(policies) == list(ph._replay.POLICIES)
    calls = sum(len(t.calls) for s in ph.read_traces(data[2]) for t in s.turns)
    for name, p in policies.items():
        assert set(p) == KEYS, name
        assert p["calls"] == calls
        assert p["hits"] + p["inflight"] + p["misses"] == calls
        assert p["hit_rate"] == round(p["hits"] / calls, 4)
        assert p["covered_rate"] == round((p["hits"] + p["inflight"]) / calls, 4)
        assert 0 <= p["wasted"] <= p["prefetched"]


def test_policies_order_as_expected(doc: dict[str, object]) -> None:
    p = doc["policies"]
    assert isinstance(p, dict)
    none, oracle, ensemble = p["none"], p["oracle"], p["ensemble"]
    assert none["prefetched"] == 0 and none["wasted"] == 0
    # Without speculation, only a section requested again in the same session is a hit.
    assert none["wait_ms_p50"] == 300.0
    assert oracle["wasted"] == 0
    for name, q in p.items():
        assert q["covered_rate"] <= oracle["covered_rate"], name
    assert none["hit_rate"] < ensemble["hit_rate"] < oracle["hit_rate"]


def test_replay_is_byte_identical_across_runs(data: tuple[Path, Path, Path], doc: dict[str, object]) -> None:
    again = ph.run_replay(*data)
    assert json.dumps(again, sort_keys=False) == json.dumps(doc, sort_keys=False)


def test_options_change_the_run(data: tuple[Path, Path, Path]) -> None:
    out = ph.run_replay(*data, policies=["oracle", "none"], top_n=1, hydrate_ms=50)
    assert (out["top_n"], out["hydrate_ms"]) == (1, 50)
    assert list(out["policies"]) == ["oracle", "none"]
    assert out["default_policy"] == "oracle"  # the default policy was not run: the first one stands in
    assert out["policies"]["none"]["wait_ms_p50"] == 50.0
    with pytest.raises(ph.ConfigError):
        ph.run_replay(*data, policies=["psychic"])


def test_calls_to_unknown_sections_are_skipped_with_a_warning(
    tmp_path: Path, data: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    test = tmp_path / "test.jsonl"
    ghost = ph.SessionTrace(
        session="ghost",
        task=ph.TaskSpec(type="billing+refund", query="refund?"),
        turns=(
            ph.TurnTrace(
                query="refund?",
                calls=(ph.Call(key="billing/refunds", think_ms=400), ph.Call(key="no/such-section", think_ms=400)),
            ),
        ),
    )
    ph.write_traces(test, [ghost])
    with caplog.at_level(logging.WARNING, logger="prehydrate.replay"):
        result = ph.replay(data[0], data[1], test, policies=["none", "trace"])
    assert "no/such-section" in caplog.text
    assert result.skipped_calls == 1
    assert result.json["policies"]["none"]["calls"] == 1


def test_malformed_trace_lines_name_file_and_line(tmp_path: Path, data: tuple[Path, Path, Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    good = data[2].read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join([good[0], good[1], '{"session": "x", "turns": "nope"}']) + "\n", encoding="utf-8")
    with pytest.raises(ph.MalformedInputError) as err:
        ph.run_replay(data[0], data[1], bad, policies=["none"])
    assert f"{bad}:3" in str(err.value)
    result = CliRunner().invoke(
        app, ["replay", "--sections", str(data[0]), "--train", str(bad), "--test", str(data[2]), "--policy", "none"]
    )
    assert result.exit_code == 2
    assert "bad.jsonl:3" in result.output.replace("\n", "")


def test_cli_writes_the_json_table_and_plot(tmp_path: Path, data: tuple[Path, Path, Path]) -> None:
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    args = ["replay", "--sections", str(data[0]), "--train", str(data[1]), "--test", str(data[2])]
    args += ["--json", str(out), "--plot", str(png), "--top-n", "2", "--hydrate-ms", "200"]
    args += ["--policy", "none", "--policy", "trace", "--policy", "oracle"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == ph.run_replay(*data, policies=["none", "trace", "oracle"], top_n=2, hydrate_ms=200)
    assert "oracle" in result.output and "trace" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    unknown = CliRunner().invoke(app, [*args[:7], "--policy", "psychic"])
    assert unknown.exit_code == 2


class _Spy:
    """Records what a predictor is shown, to check replay never shows it the future."""

    def __init__(self) -> None:
        self.seen: list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...], str]] = []

    def predict(self, state: ph.PredictionState, k: int) -> list[ph.Candidate]:
        self.seen.append((state.calls, state.history, state.request.query))
        return []


def test_replay_shows_predictors_the_session_only_as_it_unfolds(data: tuple[Path, Path, Path]) -> None:
    from prehydrate._replay import _policy_for, _replay_policy, _run

    sections = ph._sources.read_sections_jsonl(data[0])
    test = [t for t in ph.read_traces(data[2]) if len(t.turns) > 1][:5]
    spy = _Spy()
    _run(_replay_policy("spy", sections, test, spy, _policy_for("trace", 3), top_n=3, hydrate_ms=300, progress=None))
    expected = []
    for trace in test:
        history: list[tuple[str, ...]] = []
        for turn in trace.turns:
            keys = tuple(c.key for c in turn.calls)
            expected += [(keys[:i], tuple(history), turn.query) for i in range(len(keys) + 1)]
            history.append(keys)
    # At turn start and after each call: exactly the calls made so far, never one ahead.
    assert spy.seen == expected


def test_the_policy_registry_is_what_replay_the_cli_and_the_docs_show() -> None:
    from prehydrate._policies import POLICIES, policy_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert policy_table() in docs
    assert ph._replay.DEFAULT_POLICIES == tuple(POLICIES)
    help_text = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "400"}).output
    for name in POLICIES:
        assert name in help_text, name
