"""The engine's one registry of open conversations, keyed by (tenant, id)."""

from __future__ import annotations

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
        assert again is a and again.history == [("d/1",)]
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
