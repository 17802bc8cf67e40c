"""The engine's one registry of open conversations, keyed by (tenant, id)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import prehydrate as ph


def make_engine() -> ph.Engine:
    src = ph.MockSource(lambda sid, scope: f"{scope.tenant}:{sid}", ["d/1", "d/2"], latency_s=0.0)
    return ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False))


async def test_an_id_is_one_conversation_per_tenant_and_its_history_continues() -> None:
    async with make_engine() as engine:
        convs = engine.conversations
        a = convs.open("c1", tenant="acme")
        assert convs.open("c1", tenant="acme") is a and convs.get("c1", tenant="acme") is a
        b = convs.open("c1", tenant="globex")  # the same id in another tenant: another conversation
        assert b is not a and (b.tenant, a.tenant) == ("globex", "acme")
        async with a.turn("q") as turn:
            await turn.request_context("d/1")
        again = convs.open("c1", tenant="acme")
        assert again is a and list(again.history) == [("d/1",)]
        assert len(convs) == 2 and set(convs) == {a, b}
        await convs.close(a)
        assert a.closed and convs.get("c1", tenant="acme") is None
        assert convs.open("c1", tenant="acme") is not a  # a closed conversation is never handed out again
    assert b.closed  # the engine closes what is still open


async def test_a_detached_conversation_is_replaced_while_it_closes() -> None:
    async with make_engine() as engine:
        first = engine.conversations.open("c", partition="c")
        engine.conversations.detach(first)
        second = engine.conversations.open("c")
        assert second is not first and not first.closed and first.scope.partition == "c"
        assert second.scope.partition is None
        await first.aclose()


async def _two_turns(preposition: bool, tmp_path: Path) -> tuple[list[str], ph.Session, ph.TurnReport]:
    src = ph.MockSource(lambda sid, scope: sid, [f"d/{i}" for i in range(8)], latency_s=0.05)
    policy = ph.PrefetchPolicy(top_n=2, repredict=False, preposition=preposition)
    store = ph.TraceStore(tmp_path / f"traces-{preposition}.jsonl")
    outcomes = []
    started: list[str] = []
    async with ph.Engine(sources=[src], policy=policy, traces=store) as engine:
        engine.subscribe(lambda ev: started.append(ev.query) if isinstance(ev, ph.TurnStarted) else None)
        session = engine.conversations.open("c")  # the default tenant: recorded in the store's own file
        async with session.turn("first", expect=[]) as turn:  # nothing prefetched in the turn itself
            outcomes.append((await turn.request_context("d/4")).outcome)
        await asyncio.sleep(0.2)  # the user reads and types: idle time between turns
        async with session.turn("second", expect=[]) as second:
            outcomes.append((await second.request_context("d/5")).outcome)
        await engine.conversations.close(session)
    assert second.report is not None
    # observers see a pre-positioned turn start once, before its message is known; the trace has the message
    assert started == (["first", "", ""] if preposition else ["first", "second"])
    return outcomes, session, second.report


async def test_between_turns_the_next_turns_first_calls_are_prefetched(tmp_path: Path) -> None:
    """PrefetchPolicy.preposition: after a turn, predict from the history (d/4 -> d/5 in document order)."""
    off, _, _ = await _two_turns(False, tmp_path)
    on, session, report = await _two_turns(True, tmp_path)
    assert off == ["miss", "miss"] and on == ["miss", "hit"]
    assert report.hits == 1 and report.used == 1 and report.prefetched == 2  # pre-positioned work counts in the turn
    assert [t.query for t in session.trace().turns] == ["first", "second"]  # the gap recorded no turn
    recorded = ph.read_traces(tmp_path / "traces-True.jsonl")
    assert [[c.key for c in t.calls] for t in recorded[0].turns] == [["d/4"], ["d/5"]]


async def test_an_unused_pre_positioned_turn_is_bailed_out_at_close(tmp_path: Path) -> None:
    src = ph.MockSource(lambda sid, scope: sid, [f"d/{i}" for i in range(8)], latency_s=0.01)
    ended: list[ph.TurnReport] = []
    policy = ph.PrefetchPolicy(top_n=2, preposition=True)
    async with ph.Engine(sources=[src], policy=policy) as engine:
        engine.subscribe(lambda ev: ended.append(ev.report) if isinstance(ev, ph.TurnEnded) else None)
        session = engine.conversations.open("c")
        async with session.turn("only") as turn:
            await turn.request_context("d/1")
        assert session.current is not None and session.current.prepositioned
        await asyncio.sleep(0.05)
        await engine.conversations.close(session)
        assert session.current is None and engine.fetches_running == 0
    assert len(session.trace().turns) == 1
    assert ended[-1].calls == 0 and ended[-1].prefetched == ended[-1].wasted > 0  # bounded, reported waste
