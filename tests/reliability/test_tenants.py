"""Tenant isolation in the engine: no response and no cache entry ever crosses tenants.

Every hydration (speculative or on demand) runs with the scope of the session that caused it; the
source checks that scope (``ScopeChecked``) and writes the tenant into the content, so a leak through
the memory tier, the disk tier, a prefetch or a single-flight join shows up as foreign content. The
HTTP side (tokens mapped to tenants) is in ``test_mcp_reliability.py``.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import prehydrate as ph

from .conftest import TENANTS, ScopeChecked, tenant_content, tenant_sections

SECTIONS = tenant_sections(12)
IDS = [s.id for s in SECTIONS]


def tenant_of(content: str) -> str:
    return content.split(" ", 1)[0].removeprefix("tenant=")


async def all_entries(cache: ph.WarmCache) -> list[ph.CacheEntry]:
    """Every entry held by every tier (memory and disk), read back as stored."""
    out: list[ph.CacheEntry] = []
    for tier in cache.tiers:
        if isinstance(tier, ph.MemoryTier):
            out.extend(entry for entry, _ in tier._data.values())
        elif isinstance(tier, ph.DiskTier):
            for raw in tier._dc.iterkeys():
                data = tier._dc.get(raw)
                if isinstance(data, bytes):
                    out.append(ph.CacheEntry.from_bytes(data))
    return out


def assert_no_entry_crosses_tenants(entries: list[ph.CacheEntry]) -> None:
    for entry in entries:
        assert tenant_of(entry.content) == entry.key.tenant, f"entry {entry.key} holds another tenant's content"
        assert entry.content == tenant_content(entry.key.tenant, entry.key.section_id)


async def run_session(
    engine: ph.Engine, tenant: str, n: int, rng: random.Random, turns: int = 3
) -> list[ph.ContextResult]:
    out: list[ph.ContextResult] = []
    async with engine.session(f"{tenant}/{n}", tenant=tenant) as session:
        for _ in range(turns):
            expect = rng.sample(IDS, 3)
            asks = rng.sample(IDS, 2) + expect[:1]
            async with session.turn(query="q", expect=expect) as turn:
                await asyncio.sleep(rng.choice([0, 0.001, 0.02]))
                out.extend(await asyncio.gather(*(turn.request_context(sid) for sid in asks)))
    return out


@pytest.mark.parametrize("seed", [7, 21])  # 21 once made a request join a prefetch that its turn then cancelled
@pytest.mark.parametrize("fixed_version", [True, False], ids=["etag-version", "content-hash-version"])
async def test_many_sessions_of_many_tenants_at_once(tmp_path: Path, fixed_version: bool, seed: int) -> None:
    handler = ScopeChecked(fixed_version=fixed_version, delay_s=0.01)
    src = ph.MockSource(handler, SECTIONS)
    cache = ph.WarmCache([ph.MemoryTier(max_bytes=1 << 20), ph.DiskTier(tmp_path / "cache")])
    rng = random.Random(seed)
    policy = ph.PrefetchPolicy(top_n=3, discard_unused=False)  # keep entries around to be leaked, if they could
    async with ph.Engine(sources=[src], cache=cache, policy=policy) as engine:
        jobs = [run_session(engine, t, n, random.Random(rng.random())) for t in TENANTS for n in range(10)]
        per_session = await asyncio.gather(*jobs)
        for (tenant, _), results in zip([(t, n) for t in TENANTS for n in range(10)], per_session, strict=True):
            for r in results:
                assert r.content == tenant_content(tenant, r.section_id), f"{tenant} got {r.content[:40]!r}"
        assert handler.violations == []
        assert {t for t, _, _ in handler.seen} == set(TENANTS)
        entries = await all_entries(cache)
        assert {e.key.tenant for e in entries} == set(TENANTS)
        assert_no_entry_crosses_tenants(entries)
        outcomes = {r.outcome for results in per_session for r in results}
        assert outcomes == {"hit", "inflight", "miss"}  # every path was exercised


async def test_single_flight_joins_only_within_a_tenant() -> None:
    handler = ScopeChecked(delay_s=0.05)
    src = ph.MockSource(handler, SECTIONS)
    async with ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False)) as engine:

        async def ask(tenant: str, n: int) -> ph.ContextResult:
            async with engine.session(f"{tenant}/{n}", tenant=tenant) as s, s.turn() as turn:
                return await turn.request_context("doc/1")

        results = await asyncio.gather(*(ask(t, n) for n in range(3) for t in TENANTS[:2]))
    assert [r.content for r in results] == [tenant_content(t, "doc/1") for _ in range(3) for t in TENANTS[:2]]
    assert sorted((t, sid) for t, _, sid in handler.seen) == [("acme", "doc/1"), ("globex", "doc/1")]
    assert sorted(r.outcome for r in results) == ["inflight"] * 4 + ["miss"] * 2


async def test_prefetch_runs_with_the_callers_authorization_only() -> None:
    """A section one tenant may read and another may not: the other never gets it, by any path."""

    async def handler(sid: str, scope: ph.Scope) -> str:
        await asyncio.sleep(0.02)
        if sid == "doc/secret" and scope.tenant != "acme":
            raise PermissionError(f"tenant {scope.tenant} may not read {sid}")
        return tenant_content(scope.tenant, sid)

    src = ph.MockSource(handler, [*IDS, "doc/secret"])
    cache = ph.WarmCache([ph.MemoryTier()])
    async with ph.Engine(sources=[src], cache=cache, policy=ph.PrefetchPolicy(discard_unused=False)) as engine:
        async with (
            engine.session("acme/1", tenant="acme") as a,
            engine.session("globex/1", tenant="globex") as g,
            a.turn(expect=["doc/secret"]) as ta,
            g.turn(expect=["doc/secret"]) as tg,
        ):
            granted, denied = await asyncio.gather(
                ta.request_context("doc/secret"), tg.request_context("doc/secret"), return_exceptions=True
            )
            assert isinstance(granted, ph.ContextResult) and granted.content == tenant_content("acme", "doc/secret")
            assert isinstance(denied, ph.SourceError) and "may not read" in str(denied)
            with pytest.raises(ph.SourceError):  # acme's entry is warm now; globex still cannot see it
                await tg.request_context("doc/secret")
        assert tg.report is not None and tg.report.failed == 1
        assert {e.key.tenant for e in await all_entries(cache) if e.key.section_id == "doc/secret"} == {"acme"}


async def test_non_speculative_source_is_only_hydrated_on_request() -> None:
    handler = ScopeChecked()
    src = ph.MockSource(handler, SECTIONS, speculative=False)
    async with ph.Engine(sources=[src]) as engine, engine.session("acme/1", tenant="acme") as s:
        async with s.turn(expect=IDS[:3]) as turn:
            await asyncio.sleep(0.02)
            assert handler.seen == []
            r = await turn.request_context("doc/1")
    assert r.outcome == "miss" and handler.seen == [("acme", "acme/1", "doc/1")]


async def test_a_shared_disk_tier_keeps_tenants_apart_across_engines(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    for tenant in TENANTS:
        handler = ScopeChecked()
        cache = ph.WarmCache([ph.MemoryTier(), ph.DiskTier(directory)])
        policy = ph.PrefetchPolicy(enabled=False)  # so every outcome says where the answer came from
        async with ph.Engine(sources=[ph.MockSource(handler, SECTIONS)], cache=cache, policy=policy) as engine:
            async with engine.session(f"{tenant}/1", tenant=tenant) as s, s.turn() as turn:
                results = [await turn.request_context(sid) for sid in IDS[:4]]
        assert [r.content for r in results] == [tenant_content(tenant, sid) for sid in IDS[:4]]
        assert {r.outcome for r in results} == {"miss"}, "another tenant's disk entry was served"
        assert handler.violations == []
    tier = ph.DiskTier(directory)
    entries = await all_entries(ph.WarmCache([tier]))
    await tier.aclose()
    assert len(entries) == 4 * len(TENANTS)
    assert_no_entry_crosses_tenants(entries)


op = st.tuples(
    st.sampled_from(TENANTS),
    st.integers(0, 2),  # session number within the tenant
    st.lists(st.sampled_from(IDS), max_size=3, unique=True),  # expected (prefetched)
    st.lists(st.sampled_from(IDS), min_size=1, max_size=3),  # requested
    st.sampled_from([0.0, 0.002, 0.01]),  # think time before the requests
)


@settings(max_examples=30, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=12), fixed_version=st.booleans(), delay=st.sampled_from([0.0, 0.005]))
def test_no_response_or_entry_ever_crosses_tenants(
    ops: list[tuple[str, int, list[str], list[str], float]], fixed_version: bool, delay: float
) -> None:
    handler = ScopeChecked(fixed_version=fixed_version, delay_s=delay)

    async def scenario(directory: str) -> None:
        cache = ph.WarmCache([ph.MemoryTier(max_bytes=8 << 10), ph.DiskTier(directory)])
        policy = ph.PrefetchPolicy(discard_unused=False)
        async with ph.Engine(sources=[ph.MockSource(handler, SECTIONS)], cache=cache, policy=policy) as engine:
            sessions: dict[tuple[str, int], ph.Session] = {}
            for tenant, n, _, _, _ in ops:
                if (tenant, n) not in sessions:
                    sessions[tenant, n] = engine.session(f"{tenant}/{n}", tenant=tenant)
            locks = {key: asyncio.Lock() for key in sessions}

            async def run(tenant: str, n: int, expect: list[str], asks: list[str], think: float) -> None:
                async with locks[tenant, n]:  # turns of one session run one after the other
                    async with sessions[tenant, n].turn(expect=expect) as turn:
                        await asyncio.sleep(think)
                        results = await asyncio.gather(*(turn.request_context(sid) for sid in asks))
                for r in results:
                    assert r.content == tenant_content(tenant, r.section_id)

            await asyncio.gather(*(run(*o) for o in ops))
            for session in sessions.values():
                await session.aclose()
            assert_no_entry_crosses_tenants(await all_entries(cache))

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(scenario(d))
    assert handler.violations == []


@pytest.mark.parametrize("mode", ["ends-before", "ends-while-joined"])
async def test_a_request_joined_to_another_sessions_prefetch_survives_its_bailout(mode: str) -> None:
    """Session B joins the prefetch of session A (same tenant, same key); A's turn then ends and
    cancels that prefetch. B must still get its content, not a CancelledError. (The schedule with
    seed 21 above also catches the variant where B re-joins a second prefetch that is cancelled too.)"""
    handler = ScopeChecked(delay_s=0.2, strict_session=False)
    async with ph.Engine(sources=[ph.MockSource(handler, SECTIONS)]) as engine:
        a = engine.session("acme/a", tenant="acme")
        b = engine.session("acme/b", tenant="acme")
        turn_a = await a.turn(expect=["doc/1"]).start()
        async with b.turn() as turn_b:
            await asyncio.sleep(0.05)  # A's prefetch is running
            request = asyncio.create_task(turn_b.request_context("doc/1"))
            await asyncio.sleep(0.01 if mode == "ends-while-joined" else 0)
            await turn_a.end()  # A's bailout cancels its prefetch
            r = await request
        assert r.content == tenant_content("acme", "doc/1")
        await a.aclose()
        await b.aclose()


async def test_a_request_rejoining_a_second_cancelled_prefetch_still_answers() -> None:
    """The exact interleaving: B joins A's prefetch; A's bailout cancels it; before B resumes, C's
    turn starts a new prefetch of the same key, which B then waits on; C's bailout cancels that one
    too. B must still get its content."""
    handler = ScopeChecked(delay_s=0.2, strict_session=False)
    async with ph.Engine(sources=[ph.MockSource(handler, SECTIONS)]) as engine:
        a, b, c = (engine.session(f"acme/{n}", tenant="acme") for n in "abc")
        turn_a = await a.turn(expect=["doc/1"]).start()
        turn_c = await c.turn(expect=[]).start()
        loop = asyncio.get_running_loop()

        def relaunch() -> None:  # runs after A's prefetch is unregistered, before B resumes
            turn_c._schedule([ph.Candidate(section_id="doc/1", probability=1.0, reason="test")])

        def on_event(event: object) -> None:
            if isinstance(event, ph.PrefetchFinished) and event.turn_id == turn_a.turn_id:
                loop.call_soon(loop.call_soon, relaunch)

        engine.subscribe(on_event)  # type: ignore[arg-type]
        async with b.turn() as turn_b:
            await asyncio.sleep(0.05)
            request = asyncio.create_task(turn_b.request_context("doc/1"))
            await asyncio.sleep(0.01)  # B has joined A's prefetch
            await turn_a.end()
            await asyncio.sleep(0.01)  # B now waits on C's prefetch (before the fix, unshielded)
            assert turn_c.prefetches and turn_c.prefetches[0].section_id == "doc/1"
            await turn_c.end()
            r = await request
        assert r.content == tenant_content("acme", "doc/1")
        for s in (a, b, c):
            await s.aclose()
