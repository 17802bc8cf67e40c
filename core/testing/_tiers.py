"""The contract every warm-cache tier keeps, as a test base class users subclass.

A tier test subclasses :class:`CacheTierConformance` (its name does not start with ``Test``, so
pytest collects only the subclasses), provides the ``make_tier`` fixture and the two storage hooks,
and inherits every test below. A new tier (say, memcached) passes this suite before it ships, like
LangGraph's checkpoint-conformance; MemoryTier, DiskTier and RedisTier run it in prehydrate's own tests.

What the contract is: put/get round-trips; a miss is None; delete and clear remove; keys are
isolated by tenant and by section version; TTL expiry reads as a miss; an entry whose content does
not match its checksum, an entry stored under another key and bytes that are not an entry all read
as a miss (and count as rejected); large values round-trip up to the tier's bound and are declined
above it; concurrent puts leave every key readable and intact.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import pytest

import prehydrate as ph

__all__ = ["CacheTierConformance", "SAMPLE_KEY", "sample_entry"]

SAMPLE_KEY = ph.CacheKey("acme", "billing/refunds", "v1")
"""The key most tests store under; the storage hooks receive it."""
KEY = SAMPLE_KEY


def sample_entry(key: ph.CacheKey = SAMPLE_KEY, content: str = "Refunds take 5 days.", **kw: object) -> ph.CacheEntry:
    """An intact entry for ``key`` (the storage hooks build torn or foreign ones from it)."""
    return ph.CacheEntry.make(key, content, title="Refunds", **kw)  # type: ignore[arg-type]


entry = sample_entry


class CacheTierConformance:
    """Inherit, then provide ``make_tier`` and the hooks; every test here runs for the subclass."""

    value_limit: ClassVar[int | None] = None
    """Content bytes above which the tier declines a put (None: the tier has no bound)."""
    shared_storage: ClassVar[bool] = False
    """True when two tiers made by ``make_tier`` see the same storage (disk directory, Redis prefix)."""

    @pytest.fixture
    def make_tier(self) -> Callable[[], ph.CacheTier]:
        """A factory of tiers over this test's (empty) storage; subclasses override it."""
        raise NotImplementedError("a CacheTierConformance subclass provides the make_tier fixture")

    @pytest.fixture
    async def tier(self, make_tier: Callable[[], ph.CacheTier]) -> AsyncIterator[ph.CacheTier]:
        t = make_tier()
        try:
            yield t
        finally:
            await t.aclose()

    async def store_foreign(self, tier: ph.CacheTier, key: ph.CacheKey, other: ph.CacheEntry) -> None:
        """Write ``other`` (whose own key differs) into ``key``'s storage slot, bypassing ``put``."""
        raise NotImplementedError("a CacheTierConformance subclass provides store_foreign")

    async def store_torn(self, tier: ph.CacheTier, key: ph.CacheKey) -> None:
        """Write something that is not a whole entry (a torn write) into ``key``'s slot."""
        raise NotImplementedError("a CacheTierConformance subclass provides store_torn")

    # -- round trip ---------------------------------------------------------------------------------

    async def test_put_then_get_returns_the_entry(self, tier: ph.CacheTier) -> None:
        e = entry(prefetched=True)
        assert await tier.put(e) is True
        got = await tier.get(KEY)
        assert got is not None
        assert (got.key, got.content, got.title, got.prefetched, got.checksum) == (
            KEY,
            e.content,
            "Refunds",
            True,
            e.checksum,
        )
        assert got.intact()
        assert tier.hits == 1

    async def test_unknown_key_is_a_miss(self, tier: ph.CacheTier) -> None:
        assert await tier.get(KEY) is None
        assert (tier.hits, tier.misses) == (0, 1)

    async def test_put_overwrites(self, tier: ph.CacheTier) -> None:
        await tier.put(entry(content="old"))
        await tier.put(entry(content="new"))
        got = await tier.get(KEY)
        assert got is not None and got.content == "new"

    async def test_delete_removes_only_that_key(self, tier: ph.CacheTier) -> None:
        other = ph.CacheKey("acme", "billing/invoices", "v1")
        await tier.put(entry())
        await tier.put(entry(other, "Invoices."))
        await tier.delete(KEY)
        await tier.delete(ph.CacheKey("acme", "never/stored", "v1"))  # deleting a missing key is fine
        assert await tier.get(KEY) is None
        got = await tier.get(other)
        assert got is not None and got.content == "Invoices."

    async def test_clear_removes_everything(self, tier: ph.CacheTier) -> None:
        keys = [ph.CacheKey(t, f"s/{i}", "v1") for t in ("acme", "globex") for i in range(5)]
        for k in keys:
            await tier.put(entry(k, f"content {k.raw}"))
        await tier.clear()
        for k in keys:
            assert await tier.get(k) is None

    async def test_unicode_and_odd_key_parts_round_trip(self, tier: ph.CacheTier) -> None:
        key = ph.CacheKey('te"nant:*', "sec/[ü]\\x 🚀", "v:1 2")
        e = entry(key, "naïve café — 東京 \U0001f680 \x00 nul")
        await tier.put(e)
        got = await tier.get(key)
        assert got is not None and got.content == e.content and got.key == key

    # -- isolation ------------------------------------------------------------------------------------

    async def test_other_tenant_is_a_miss(self, tier: ph.CacheTier) -> None:
        await tier.put(entry())
        assert await tier.get(dataclasses.replace(KEY, tenant="globex")) is None
        assert await tier.get(KEY) is not None

    async def test_other_version_is_a_miss(self, tier: ph.CacheTier) -> None:
        await tier.put(entry())
        assert await tier.get(dataclasses.replace(KEY, version="v2")) is None

    async def test_tenants_with_the_same_section_keep_their_own_content(self, tier: ph.CacheTier) -> None:
        a, b = KEY, dataclasses.replace(KEY, tenant="globex")
        await tier.put(entry(a, "acme's refunds"))
        await tier.put(entry(b, "globex's refunds"))
        got_a, got_b = await tier.get(a), await tier.get(b)
        assert got_a is not None and got_a.content == "acme's refunds"
        assert got_b is not None and got_b.content == "globex's refunds"

    # -- TTL ------------------------------------------------------------------------------------------

    async def test_entry_past_its_ttl_is_a_miss(self, tier: ph.CacheTier) -> None:
        assert await tier.put(entry(ttl_s=0.2)) is True
        await asyncio.sleep(0.35)
        assert await tier.get(KEY) is None

    async def test_entry_within_its_ttl_is_served(self, tier: ph.CacheTier) -> None:
        await tier.put(entry(ttl_s=3600))
        got = await tier.get(KEY)
        assert got is not None and got.expires_at is not None

    async def test_already_expired_entry_is_not_stored(self, tier: ph.CacheTier) -> None:
        stale = dataclasses.replace(entry(), expires_at=1.0)
        assert await tier.put(stale) is False
        assert await tier.get(KEY) is None

    # -- integrity ------------------------------------------------------------------------------------

    async def test_content_not_matching_its_checksum_is_rejected(self, tier: ph.CacheTier) -> None:
        tampered = dataclasses.replace(entry(), content="Refunds take 500 days.")
        await tier.put(tampered)
        assert await tier.get(KEY) is None
        assert tier.rejected >= 1
        assert await tier.get(KEY) is None  # and it was removed, not served later

    async def test_entry_stored_under_another_key_is_rejected(self, tier: ph.CacheTier) -> None:
        foreign = entry(dataclasses.replace(KEY, tenant="globex"), "globex's refunds")
        await self.store_foreign(tier, KEY, foreign)
        assert await tier.get(KEY) is None
        assert tier.rejected >= 1

    async def test_torn_write_is_a_miss(self, tier: ph.CacheTier) -> None:
        await self.store_torn(tier, KEY)
        assert await tier.get(KEY) is None
        assert tier.rejected >= 1
        await tier.put(entry())  # the slot is usable again
        assert await tier.get(KEY) is not None

    # -- size -----------------------------------------------------------------------------------------

    async def test_large_value_round_trips(self, tier: ph.CacheTier) -> None:
        size = 512 << 10 if self.value_limit is None else self.value_limit // 2
        content = ("0123456789abcdef" * (size // 16 + 1))[:size]
        assert await tier.put(entry(content=content)) is True
        got = await tier.get(KEY)
        assert got is not None and got.content == content

    async def test_value_over_the_bound_is_declined(self, tier: ph.CacheTier) -> None:
        if self.value_limit is None:
            # An unbounded tier stores what it is given: 8 MiB goes in and comes back.
            content = "x" * (8 << 20)
            assert await tier.put(entry(content=content)) is True
            got = await tier.get(KEY)
            assert got is not None and len(got.content) == len(content)
            return
        await tier.put(entry(content="small"))
        assert await tier.put(entry(content="y" * (self.value_limit + 1))) is False
        got = await tier.get(KEY)
        assert got is None or got.content == "small"  # never the oversized value

    # -- concurrency ----------------------------------------------------------------------------------

    async def test_concurrent_puts_leave_every_key_intact(self, tier: ph.CacheTier) -> None:
        keys = [ph.CacheKey("acme", f"doc/{i}", "v1") for i in range(40)]
        writes = [tier.put(entry(k, f"content of {k.section_id}")) for k in keys]
        # and ten writers racing on one key with different contents
        writes += [tier.put(entry(KEY, f"writer {w}")) for w in range(10)]
        assert all(await asyncio.gather(*writes))
        for k in keys:
            got = await tier.get(k)
            assert got is not None and got.content == f"content of {k.section_id}"
        got = await tier.get(KEY)
        assert got is not None and got.intact() and got.content in {f"writer {w}" for w in range(10)}

    # -- sharing --------------------------------------------------------------------------------------

    async def test_second_tier_on_the_same_storage(
        self, tier: ph.CacheTier, make_tier: Callable[[], ph.CacheTier]
    ) -> None:
        await tier.put(entry())
        other = make_tier()
        try:
            got = await other.get(KEY)
        finally:
            await other.aclose()
        if self.shared_storage:
            assert got is not None and got.content == "Refunds take 5 days."
        else:
            assert got is None
