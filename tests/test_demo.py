"""``prehydrate demo`` end to end: real ``prehydrate serve`` subprocesses, a real MCP client, small options.

The demo is the first thing a user runs, so it is run here exactly as a user would (a subprocess of
the console script's entry point), on a few sessions and at 20x speed to keep the test short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import prehydrate as ph
from prehydrate._demo import DemoCall, DemoRun, DemoSettings, compare, modelled_wait, select_sessions

DEMO = [sys.executable, "-c", "from prehydrate.cli import main; main()", "demo"]
SESSIONS = 6


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PREHYDRATE_HOME"] = str(tmp_path / "home")  # the user's own trace store stays untouched
    env["COLUMNS"] = "120"
    return subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=120, env=env)


def repeats_within_sessions(plan: list[ph.SessionTrace]) -> int:
    """Calls for a section the same session already fetched: the only hits a no-prefetch server has."""
    count = 0
    for trace in plan:
        seen: set[str] = set()
        for turn in trace.turns:
            for call in turn.calls:
                count += call.key in seen
                seen.add(call.key)
    return count


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("demo")
    out, png = tmp / "demo.json", tmp / "chart.png"
    proc = run_demo(tmp, "--sessions", str(SESSIONS), "--speed", "0.05", "--json", str(out), "--plot", str(png))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc, json.loads(out.read_text()), png


def test_demo_prints_the_summary_and_compares_both_runs(
    demo: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
) -> None:
    proc, result, _ = demo
    plan = select_sessions(ph.read_traces(ph.sample_traces_path("test")), SESSIONS)
    calls = sum(len(turn.calls) for t in plan for turn in t.turns)
    without, with_ = result["without_prefetch"], result["with_prefetch"]

    assert f"{SESSIONS} recorded sessions" in proc.stdout
    for row in ("hit (warm cache)", "miss (hydrated on demand)", "wasted prefetches", "context wait per turn"):
        assert row in proc.stdout
    assert "Context wait per turn:" in proc.stdout and "less" in proc.stdout

    assert without["calls"] == with_["calls"] == calls
    assert without["turns"] == with_["turns"] == sum(len(t.turns) for t in plan)
    # --no-prefetch: nothing speculated; --isolate-sessions: a hit only for a section the session fetched before
    assert without["prefetched"] == without["wasted"] == without["inflight"] == 0
    assert without["hits"] == repeats_within_sessions(plan)
    # a miss waits the whole simulated hydration
    assert without["wait_ms_total"] == pytest.approx(without["misses"] * DemoSettings().hydrate_ms)
    # the learned predictor prefetched, and it paid off
    assert with_["prefetched"] > 0 and 0 <= with_["wasted"] <= with_["prefetched"]
    assert with_["misses"] < without["misses"]
    assert with_["wait_ms_per_turn"] < without["wait_ms_per_turn"]
    assert result["wait_cut"] == pytest.approx(1 - with_["wait_ms_per_turn"] / without["wait_ms_per_turn"], abs=1e-3)


def test_demo_saves_the_chart(demo: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]) -> None:
    _, _, png = demo
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    proc = run_demo(tmp_path, "--speed", "0")
    assert proc.returncode == 2
    assert "speed" in proc.stderr


def test_modelled_wait_and_comparison() -> None:
    assert modelled_wait("miss", 12.0, 300.0) == 300.0
    assert modelled_wait("hit", 3.0, 300.0) == 0.0
    assert modelled_wait("inflight", 120.0, 300.0) == 120.0
    assert modelled_wait("inflight", 900.0, 300.0) == 300.0

    def call(outcome: Any, wait: float) -> DemoCall:
        return DemoCall(run="r", session="s", turn=1, section="a", outcome=outcome, wait_ms=wait, measured_ms=wait)

    base = DemoRun(label="without", turns=2, calls=[call("miss", 300.0), call("miss", 300.0)])
    fast = DemoRun(
        label="with",
        turns=2,
        calls=[call("hit", 0.0), call("inflight", 150.0)],
        reports=[{"prefetched": 3, "wasted": 1}, {"prefetched": 2, "wasted": 2}],
    )
    result = compare(base, fast)
    assert result["wait_cut"] == 0.75
    assert result["with_prefetch"]["prefetched"] == 5 and result["with_prefetch"]["wasted"] == 3
    assert result["with_prefetch"]["hit_rate"] == 0.5 and result["with_prefetch"]["covered_rate"] == 1.0
    with pytest.raises(ph.ConfigError):
        DemoSettings(concurrency=0)


# -- the serve options the demo relies on, in process ------------------------------------------------


def test_build_engine_learns_from_trace_files_without_writing_them(tmp_path: Path) -> None:
    from prehydrate.mcp_server import build_engine

    train = ph.sample_traces_path("train")
    before = train.read_bytes()
    engine = build_engine(traces=tmp_path / "store.jsonl", learn=[train], simulate_latency_s=0.01)
    assert getattr(engine.predictor, "fitted", None) is True
    assert train.read_bytes() == before and not (tmp_path / "store.jsonl").exists()
    with pytest.raises(ph.ConfigError):
        build_engine(simulate_latency_s=-1.0)


async def test_isolated_sessions_do_not_share_cache_entries() -> None:
    from prehydrate.mcp_server import SessionManager, SessionPolicy, build_engine

    async def outcomes(isolate: bool) -> list[str]:
        engine = build_engine(policy=ph.PrefetchPolicy(enabled=False), simulate_latency_s=0.001)
        manager = SessionManager(engine, SessionPolicy(record=False, isolate=isolate))
        seen = []
        async with engine:
            for sid in ("a", "a", "b"):
                key = manager.identify(
                    meta={"prehydrate/session": sid},
                    principal=None,
                    tenant=None,
                    headers=None,
                    connection=None,
                    peer=None,
                )
                turn, entry = await manager.begin_call(key)
                try:
                    seen.append((await turn.request_context("billing/plans")).outcome)
                finally:
                    manager.end_call(entry)
            await manager.aclose()
        return seen

    assert await outcomes(isolate=False) == ["miss", "hit", "hit"]  # one tenant: session b reuses a's fetch
    assert await outcomes(isolate=True) == ["miss", "hit", "miss"]  # a cache scope per session
