"""MemoryTier and DiskTier run the tier conformance suite, plus what is particular to each."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate.testing import SAMPLE_KEY as KEY
from prehydrate.testing import CacheTierConformance
from prehydrate.testing import sample_entry as entry

MEMORY_MAX = 2 << 20


class TestMemoryTier(CacheTierConformance):
    value_limit = MEMORY_MAX - 256  # the tier charges a fixed overhead per entry
    shared_storage = False

    @pytest.fixture
    def make_tier(self) -> Callable[[], ph.CacheTier]:
        return lambda: ph.MemoryTier(max_bytes=MEMORY_MAX)

    async def store_foreign(self, tier: ph.CacheTier, key: ph.CacheKey, other: ph.CacheEntry) -> None:
        assert isinstance(tier, ph.MemoryTier)
        tier._data[key] = (other, other.size_bytes + 256)

    async def store_torn(self, tier: ph.CacheTier, key: ph.CacheKey) -> None:
        # In memory a "torn" entry is one whose content was cut after its checksum was taken.
        assert isinstance(tier, ph.MemoryTier)
        whole = entry(key)
        tier._data[key] = (dataclasses.replace(whole, content=whole.content[:5]), 300)


class TestDiskTier(CacheTierConformance):
    value_limit = None
    shared_storage = True

    @pytest.fixture
    def make_tier(self, tmp_path: Path) -> Callable[[], ph.CacheTier]:
        return lambda: ph.DiskTier(tmp_path / "cache")

    async def store_foreign(self, tier: ph.CacheTier, key: ph.CacheKey, other: ph.CacheEntry) -> None:
        assert isinstance(tier, ph.DiskTier)
        tier._dc.set(key.raw, other.to_bytes())

    async def store_torn(self, tier: ph.CacheTier, key: ph.CacheKey) -> None:
        assert isinstance(tier, ph.DiskTier)
        tier._dc.set(key.raw, entry(key).to_bytes()[:40])


async def test_memory_tier_evicts_least_recently_used_within_its_byte_bound() -> None:
    tier = ph.MemoryTier(max_bytes=3 * (1000 + 256))
    keys = [ph.CacheKey("acme", f"doc/{i}", "v1") for i in range(4)]
    for k in keys[:3]:
        await tier.put(entry(k, "x" * 1000))
    await tier.get(keys[0])  # doc/0 is now the most recently used
    await tier.put(entry(keys[3], "x" * 1000))
    assert await tier.get(keys[1]) is None
    assert await tier.get(keys[0]) is not None
    assert tier.evictions == 1 and tier.bytes_used <= tier.max_bytes


async def test_warm_cache_promotes_a_lower_tier_hit(tmp_path: Path) -> None:
    memory, disk = ph.MemoryTier(), ph.DiskTier(tmp_path / "c")
    cache = ph.WarmCache(tiers=[memory, disk])
    await disk.put(entry())
    found = await cache.get(KEY)
    assert found is not None and found[1] == "disk"
    found = await cache.get(KEY)
    assert found is not None and found[1] == "memory"
    await cache.aclose()


async def test_warm_cache_fill_without_a_coordinating_tier_yields_none() -> None:
    cache = ph.WarmCache(tiers=[ph.MemoryTier()])
    assert not isinstance(cache.tiers[0], ph.FillCoordinator)
    async with cache.fill(KEY) as filled:
        assert filled is None
