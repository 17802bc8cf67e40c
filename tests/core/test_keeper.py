"""Kept conversations without any front end: turns end after an idle gap, sessions after a TTL.

The same keeper serves the MCP server (tests/mcp_server) and anyone on the plain API, so these
tests drive it directly with the real engine, real sessions and real loop timers (short gaps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import prehydrate as ph


def make_engine(**kwargs: object) -> ph.Engine:
    src = ph.MockSource(lambda sid, scope: f"text of {sid}", ["d/1", "d/2", "d/3"], latency_s=0.0)
    return ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False), **kwargs)  # type: ignore[arg-type]


async def ended(engine: ph.Engine) -> asyncio.Event:
    done = asyncio.Event()
    engine.subscribe(lambda event: done.set() if isinstance(event, ph.TurnEnded) else None)
    return done


async def test_the_idle_gap_ends_the_turn_and_the_next_call_starts_another() -> None:
    async with make_engine() as engine:
        keeper = ph.ConversationKeeper(engine.conversations, ph.ConversationPolicy(idle_gap_s=0.05))
        bailout = await ended(engine)
        turn, call = await keeper.begin_call("chat", query="first")
        again, call2 = await keeper.begin_call("chat")  # a second call inside the gap joins the turn
        assert again is turn and call2 is call
        await turn.request_context("d/1")
        keeper.end_call(call)
        keeper.end_call(call2)
        await asyncio.wait_for(bailout.wait(), 30)  # nobody said the turn ended: the idle gap did
        session = keeper.session("chat")
        assert session is not None and session.current is None and list(session.history) == [("d/1",)]
        assert [r.turn_id for r in keeper.reports] == [turn.turn_id] and keeper.reports[0].calls == 1
        turn2, call = await keeper.begin_call("chat")
        assert turn2 is not turn and turn2.session is session  # a new turn of the same conversation
        keeper.end_call(call)
        await keeper.aclose()
        assert session.closed and engine.conversations.get("chat") is None


async def test_a_quiet_session_closes_after_its_ttl_and_is_recorded(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    async with make_engine(traces=store) as engine:
        policy = ph.ConversationPolicy(idle_gap_s=0.02, session_ttl_s=0.05)
        keeper = ph.ConversationKeeper(engine.conversations, policy)
        turn, call = await keeper.begin_call("chat", tenant="acme", query="refunds")
        await turn.request_context("d/2")
        keeper.end_call(call)
        session = turn.session
        for _ in range(300):  # real timers: wait for the expiry, bounded
            if session.closed and len(keeper) == 0:
                break
            await asyncio.sleep(0.01)
        assert session.closed and keeper.session("chat", tenant="acme") is None and len(keeper) == 0
    (trace,) = ph.read_traces(store.path_for("acme"))
    assert trace.session == "chat" and [c.key for t in trace.turns for c in t.calls] == ["d/2"]


async def test_beyond_max_sessions_the_least_recently_used_quiet_session_closes() -> None:
    async with make_engine() as engine:
        keeper = ph.ConversationKeeper(engine.conversations, ph.ConversationPolicy(max_sessions=2, record=False))
        sessions = []
        for name in ("a", "b", "c"):
            turn, call = await keeper.begin_call(name)
            keeper.end_call(call)
            sessions.append(turn.session)
            await asyncio.sleep(0.001)  # distinct last-activity times
        for _ in range(100):
            if sessions[0].closed:
                break
            await asyncio.sleep(0.01)
        assert sessions[0].closed and not sessions[1].closed and not sessions[2].closed
        assert len(keeper) == 2
        await keeper.aclose()


async def test_idle_time_work_runs_after_the_call_or_first_thing_in_the_next() -> None:
    async with make_engine() as engine:
        keeper = ph.ConversationKeeper(engine.conversations)
        ran: list[str] = []
        turn, call = await keeper.begin_call("chat")
        keeper.end_call(call, then=lambda: ran.append("after first"))
        assert ran == []  # never before the answer leaves
        await asyncio.sleep(0.05)
        assert ran == ["after first"]
        _, call = await keeper.begin_call("chat")
        keeper.end_call(call, then=lambda: ran.append("after second"))
        _, call = await keeper.begin_call("chat")  # the next call comes first: the work runs before it
        assert ran == ["after first", "after second"]
        keeper.end_call(call)
        await keeper.aclose()


async def test_a_call_racing_the_session_expiry_gets_a_fresh_session() -> None:
    async with make_engine() as engine:
        keeper = ph.ConversationKeeper(engine.conversations, ph.ConversationPolicy(record=False))
        turn, call = await keeper.begin_call("s")
        keeper.end_call(call)
        async with call.lock:  # the expiry holds the lock first; the call waits behind it
            closing = asyncio.create_task(keeper._close(call))
            calling = asyncio.create_task(keeper.begin_call("s"))
            await asyncio.sleep(0)
        await closing
        turn2, call2 = await calling
        assert call2 is not call and turn2.session is not turn.session and not turn2.session.closed
        keeper.end_call(call2)
        await keeper.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"idle_gap_s": 0}, "idle_gap_s > 0"),
        ({"idle_gap_s": 60, "session_ttl_s": 10}, "must not be shorter than idle_gap_s"),
        ({"max_sessions": 0}, "max_sessions must be at least 1"),
    ],
)
def test_bad_policies_are_config_errors(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ph.ConfigError, match=message):
        ph.ConversationPolicy(**kwargs)  # type: ignore[arg-type]
