"""A reusable conformance check for any LangGraph ``BaseCache`` (sources: ``prehydrate.testing``).

Call it from a test with the object under test::

    await check_node_cache(lambda: MyCache(path), clock=fake_clock)

The check exercises the contract through the public surface only, and fails with a message naming
the broken rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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
