"""The example runs end to end, and the integrations' public surface is curated and guarded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_prints_one_line_per_run_and_a_summary() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_agent.py"), "--runs", "3", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 4, out.stdout
    runs, summary = lines[:3], lines[3]
    assert [r["run"] for r in runs] == [0, 1, 2]
    assert set(summary) == {"runs", "hits", "inflight", "misses", "hit_rate", "wall_ms_with", "wall_ms_without"}
    assert summary["runs"] == 3
    calls = sum(r["calls"] for r in runs)
    assert summary["hits"] + summary["inflight"] + summary["misses"] == calls > 0
    assert summary["hit_rate"] == round(summary["hits"] / calls, 4)
    for r in runs:
        assert r["hits"] + r["inflight"] + r["misses"] == r["calls"]
        assert r["wasted"] <= r["prefetched"]
    assert summary["wall_ms_with"] > 0 and summary["wall_ms_without"] > 0


def test_all_is_sorted_and_complete() -> None:
    import prehydrate.integrations.agents

    modules = (prehydrate.integrations, prehydrate.integrations.langgraph, prehydrate.integrations.langchain)
    for module in (*modules, prehydrate.integrations.agents):
        assert module.__all__ == sorted(module.__all__), module.__name__
        public = {n for n in vars(module) if not n.startswith("_") and n != "annotations"}
        public -= {"langgraph", "langchain", "agents", "require"}  # submodules and the guard helper
        assert public == set(module.__all__), module.__name__


def test_missing_langgraph_gives_an_install_hint() -> None:
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "import prehydrate.integrations  # the package itself needs no framework\n"
        "try:\n    import prehydrate.integrations.langgraph\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert "pip install 'prehydrate[langgraph]'" in out.stdout


def test_the_integrations_package_imports_no_framework() -> None:
    code = (
        "import sys, prehydrate.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langgraph', 'langchain_core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
