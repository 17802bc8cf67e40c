"""Reusable conformance checks: any prehydrate ``Source`` and any LangGraph ``BaseCache``.

Call them from a test with the object under test::

    await check_source(MySource(...))
    await check_node_cache(lambda: MyCache(path), clock=fake_clock)

Each check exercises the contract through the public surface only, and fails with a message naming
the broken rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import prehydrate as ph
from prehydrate._sources import check_section_id


async def check_source(source: ph.Source, *, scope: ph.Scope | None = None, max_sections: int = 20) -> None:
    """The Source contract: listing, hydration, unknown ids, concurrency, engine use, closing.

    Args:
        source: the source under test (it is closed at the end).
        scope: the scope to hydrate for.
        max_sections: how many listed sections to hydrate (large sources are sampled from the start).
    """
    scope = scope or ph.Scope(tenant="conformance")
    assert isinstance(source, ph.Source), "does not implement the Source protocol"
    assert isinstance(source.name, str) and source.name, "name must be a non-empty string"
    assert isinstance(source.speculative, bool), "speculative must be a bool"

    sections = list(source.list_sections())
    assert sections, "list_sections() returned nothing"
    ids = [s.id for s in sections]
    assert len(ids) == len(set(ids)), "section ids must be unique"
    for s in sections:
        assert isinstance(s, ph.Section), f"list_sections() must yield Section objects, got {type(s).__name__}"
        check_section_id(s.id)
        assert isinstance(s.title, str), f"{s.id}: title must be a string"
    assert [s.id for s in source.list_sections()] == ids, "listing twice must give the same ids in the same order"

    sample = sections[:max_sections]
    first: dict[str, ph.Hydrated] = {}
    for s in sample:
        h = await source.hydrate(s.id, scope=scope)
        assert isinstance(h, ph.Hydrated), f"{s.id}: hydrate must return Hydrated"
        assert h.section_id == s.id, f"{s.id}: hydrate returned section {h.section_id!r}"
        assert isinstance(h.content, str), f"{s.id}: content must be a string"
        assert isinstance(h.version, str) and h.version, f"{s.id}: version must be a non-empty string"
        first[s.id] = h

    # Hydration is idempotent for a speculative source: same content and version again, also concurrently.
    again = await asyncio.gather(*(source.hydrate(s.id, scope=scope) for s in sample))
    for h in again:
        if source.speculative:
            assert (h.content, h.version) == (first[h.section_id].content, first[h.section_id].version), (
                f"{h.section_id}: a speculative source must be idempotent"
            )

    unknown = "conformance/no-such-section"
    assert unknown not in ids
    try:
        await source.hydrate(unknown, scope=scope)
    except ph.UnknownSectionError:
        pass
    else:
        raise AssertionError("hydrating an unknown id must raise UnknownSectionError")

    # Behind a real engine: a miss, then a hit from the warm cache with the same content.
    engine = ph.Engine(sources=[source], learn_on_start=False)
    await engine.start()
    try:
        async with engine.session("conformance", tenant=scope.tenant) as session:
            async with session.turn(query="conformance") as turn:
                r1 = await turn.request_context(sample[0].id)
                r2 = await turn.request_context(sample[0].id)
        assert r1.content == first[sample[0].id].content
        assert r2.outcome == "hit" and r2.content == r1.content
    finally:
        await engine.aclose()  # closes the source
    await source.aclose()  # closing twice is allowed


async def check_node_cache(factory: Callable[[], Any], *, clock: Callable[[float], None]) -> None:
    """The LangGraph ``BaseCache`` contract plus persistence: get, set, clear, TTL, reopen.

    Args:
        factory: opens the cache (each call must reach the same storage, like a process restart).
        clock: moves the cache's clock forward by the given seconds.
    """
    cache = factory()
    ns_a, ns_b = ("__pregel_ns_writes", "fn", "a"), ("__pregel_ns_writes", "fn", "b")
    k1, k2, k3 = (ns_a, "k1"), (ns_a, "k2"), (ns_b, "k1")
    assert cache.get([k1]) == {}, "a fresh cache must be empty"
    value = {"messages": ["hi"], "n": 1}
    cache.set({k1: (value, None), k2: ([1, 2, 3], 10), k3: ("b", None)})
    assert cache.get([k1, k2, k3]) == {k1: value, k2: [1, 2, 3], k3: "b"}
    assert await cache.aget([k1]) == {k1: value}, "aget must agree with get"
    assert cache.get([(ns_a, "missing")]) == {}, "missing keys are left out"

    await cache.aset({k1: ("overwritten", None)})
    assert cache.get([k1]) == {k1: "overwritten"}, "set must overwrite"

    clock(11)  # past k2's TTL of 10 s
    assert cache.get([k2]) == {}, "an entry past its TTL must not be returned"
    assert cache.get([k1]) == {k1: "overwritten"}, "entries without TTL never expire"

    cache.clear([ns_a])
    assert cache.get([k1, k3]) == {k3: "b"}, "clear(namespaces) must delete only those namespaces"

    await cache.aset({k1: ("persisted", None)})
    reopened = factory()  # a "restart": a new object on the same storage
    assert reopened.get([k1, k3]) == {k1: "persisted", k3: "b"}, "entries must survive reopening"

    await reopened.aclear()
    assert reopened.get([k1, k3]) == {}, "aclear() must delete everything"
    assert factory().get([k1]) == {}, "clearing must persist too"
