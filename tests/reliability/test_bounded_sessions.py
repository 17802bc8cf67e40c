"""A conversation that goes on and on is bounded: in memory, in its history, in its trace line.

The attack from the hardening issue: one session sending 1,000 prompts with a 60 KB query grew the
server from 122 to 189 MB and wrote a 60 MB trace line, because every turn (and its query) was kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import prehydrate as ph

SECTIONS = [ph.Section(id=f"doc/{i}", title=f"Doc {i}", order=i) for i in range(20)]


def _engine(traces: ph.TraceStore | None = None) -> ph.Engine:
    source = ph.MockSource(lambda sid, scope: f"content of {sid}", SECTIONS)
    return ph.Engine(sources=[source], policy=ph.PrefetchPolicy(enabled=False), traces=traces)


async def test_a_thousand_prompts_with_a_60_kb_query_keep_a_window_and_a_bounded_trace_line(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    limits = ph.EngineLimits()
    big = "refund policy details " * 2800  # 61,600 characters: under the turn query limit, far over a query
    assert limits.max_query_chars < len(big) <= limits.max_query_chars * 16
    async with _engine(store) as engine:
        async with engine.session("long", tenant="acme") as session:
            for i in range(1000):
                async with session.turn(query=big) as turn:
                    await turn.request_context(f"doc/{i % 20}")
            assert len(session.turns) == len(session.history) == limits.max_session_turns
            assert all(len(q) <= limits.max_query_chars for q in session.history_queries)
            assert session.history[-1] == ("doc/19",)  # the window keeps the most recent turns
    line = store.path_for("acme").read_bytes()  # one file per tenant
    assert line.count(b"\n") == 1
    # 256 turns of at most 4,096 characters each plus their calls: about 1 MB, not 60 MB.
    assert len(line) < limits.max_session_turns * (limits.max_query_chars + 200)
    recorded = json.loads(line)
    assert len(recorded["turns"]) == limits.max_session_turns
    assert len(recorded["task"]["query"]) == limits.max_query_chars


async def test_a_turn_that_never_ends_keeps_its_most_recent_calls_and_counts_all() -> None:
    async with _engine() as engine, engine.session("s") as session:
        async with session.turn(query="q") as turn:
            for i in range(3000):
                await turn.request_context(f"doc/{i % 20}")
            assert len(turn.calls) == ph.EngineLimits().max_turn_calls
            assert turn.calls[-1].key == "doc/19"
    assert turn.report is not None and turn.report.calls == 3000


@pytest.mark.parametrize("field", ["task_type", "node"])
async def test_an_enormous_task_type_or_node_is_refused(field: str) -> None:
    async with _engine() as engine, engine.session("s") as session:
        with pytest.raises(ph.InputError, match="at most 512 characters"):
            session.turn(query="q", **{field: "x" * 100_000})


def test_limits_must_be_positive() -> None:
    with pytest.raises(ph.ConfigError, match="max_session_turns"):
        ph.EngineLimits(max_session_turns=0)
