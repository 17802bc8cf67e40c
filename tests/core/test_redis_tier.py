"""RedisTier against a real redis-server on a free loopback port.

The conformance suite, Redis-specific keys/TTL/prefix behaviour, two engines (and two processes)
sharing one Redis, cross-replica single-flight, and the failure path: Redis unreachable, killed in
the middle of a run, then restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate.testing import SAMPLE_KEY as KEY
from prehydrate.testing import CacheTierConformance
from prehydrate.testing import sample_entry as entry
from tests._redis import RedisServer, free_port, running_redis

IDS = [f"doc/{i}" for i in range(80)]


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the tests that do not kill it; each test uses its own key prefix."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test may kill and restart."""
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


class TestRedisTier(CacheTierConformance):
    value_limit = 1 << 20
    shared_storage = True

    @pytest.fixture
    def make_tier(self, shared_redis: RedisServer, prefix: str) -> Callable[[], ph.CacheTier]:
        # Generous timeouts: this suite checks correctness, and 50 concurrent connects on a busy CI
        # machine can take longer than the production default.
        return lambda: ph.RedisTier(
            shared_redis.url, prefix=prefix, max_value_bytes=1 << 20, socket_timeout_s=5, connect_timeout_s=5
        )

    async def store_foreign(self, tier: ph.CacheTier, key: ph.CacheKey, other: ph.CacheEntry) -> None:
        assert isinstance(tier, ph.RedisTier)
        await tier._client.set(tier.entry_key(key), other.to_bytes())

    async def store_torn(self, tier: ph.CacheTier, key: ph.CacheKey) -> None:
        assert isinstance(tier, ph.RedisTier)
        await tier._client.set(tier.entry_key(key), entry(key).to_bytes()[:40])


# -- keys, prefixes, TTL, size ------------------------------------------------------------------------


@pytest.fixture
async def tier(shared_redis: RedisServer, prefix: str) -> AsyncIterator[ph.RedisTier]:
    t = ph.RedisTier(shared_redis.url, prefix=prefix, max_value_bytes=64 << 10, socket_timeout_s=5, connect_timeout_s=5)
    yield t
    await t.aclose()


async def test_keys_are_digests_under_the_deployment_prefix(
    tier: ph.RedisTier, shared_redis: RedisServer, prefix: str
) -> None:
    await tier.put(entry())
    assert shared_redis.keys(f"{prefix}:*") == [f"{prefix}:e:{KEY.digest}"]
    stored = shared_redis.command("GET", f"{prefix}:e:{KEY.digest}")
    assert isinstance(stored, bytes) and json.loads(stored)["k"] == ["acme", None, "billing/refunds", "v1"]


async def test_prefixes_isolate_deployments_and_clear_only_its_own(shared_redis: RedisServer, prefix: str) -> None:
    # "a*" would match "ab:..." as a glob: clear() must escape its prefix.
    a = ph.RedisTier(shared_redis.url, prefix=f"{prefix}a*")
    b = ph.RedisTier(shared_redis.url, prefix=f"{prefix}ab")
    try:
        await a.put(entry(content="deployment a"))
        assert await b.get(KEY) is None
        await b.put(entry(content="deployment b"))
        await a.clear()
        assert await a.get(KEY) is None
        got = await b.get(KEY)
        assert got is not None and got.content == "deployment b"
    finally:
        await a.aclose()
        await b.aclose()


async def test_ttl_is_enforced_by_redis_and_capped_by_the_tier(shared_redis: RedisServer, prefix: str) -> None:
    capped = ph.RedisTier(shared_redis.url, prefix=prefix, ttl_s=10)
    try:
        await capped.put(entry(ttl_s=3600))
        pttl = shared_redis.command("PTTL", capped.entry_key(KEY))
        assert isinstance(pttl, int) and 0 < pttl <= 10_000
        other = ph.CacheKey("acme", "no/ttl", "v1")
        await capped.put(entry(other))
        pttl = shared_redis.command("PTTL", capped.entry_key(other))
        assert isinstance(pttl, int) and 0 < pttl <= 10_000
    finally:
        await capped.aclose()
    uncapped = ph.RedisTier(shared_redis.url, prefix=prefix + "u")
    try:
        await uncapped.put(entry())
        assert shared_redis.command("PTTL", uncapped.entry_key(KEY)) == -1  # Redis eviction bounds it
        await uncapped.put(entry(ttl_s=60))
        pttl = shared_redis.command("PTTL", uncapped.entry_key(KEY))
        assert isinstance(pttl, int) and 50_000 < pttl <= 60_000
    finally:
        await uncapped.aclose()


async def test_oversized_value_is_not_written(tier: ph.RedisTier, shared_redis: RedisServer, prefix: str) -> None:
    assert await tier.put(entry(content="z" * (64 << 10))) is False
    assert tier.declined == 1
    assert shared_redis.keys(f"{prefix}:*") == []


async def test_unreadable_value_is_deleted(tier: ph.RedisTier, shared_redis: RedisServer, prefix: str) -> None:
    shared_redis.command("SET", tier.entry_key(KEY), b"\xff\xfe not json")
    assert await tier.get(KEY) is None
    assert tier.rejected == 1
    assert shared_redis.keys(f"{prefix}:*") == []


def test_import_prehydrate_does_not_import_redis() -> None:
    code = "import sys, prehydrate; print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_redis_py_is_a_config_error_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # what `import redis` sees when it is not installed
    with pytest.raises(ph.ConfigError, match=r"pip install 'prehydrate\[redis\]'"):
        ph.RedisTier("redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://example.com"}, "invalid Redis URL"),
        ({"prefix": ""}, "prefix"),
        ({"max_value_bytes": 0}, "max_value_bytes"),
        ({"fill_wait_s": 0}, "fill_wait_s"),
        ({"ttl_s": -1}, "ttl_s"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ph.ConfigError, match=message):
        ph.RedisTier(**kwargs)  # type: ignore[arg-type]


# -- failure behaviour: unreachable Redis -------------------------------------------------------------


async def test_unreachable_redis_fails_once_then_is_skipped_by_the_breaker() -> None:
    tier = ph.RedisTier(f"redis://127.0.0.1:{free_port()}/0", backoff_s=60)
    try:
        with pytest.raises(ph.CacheError, match="skipping Redis for 60.0s") as info:
            await tier.get(KEY)
        assert info.value.tier == "redis"
        assert not tier.available
        for _ in range(10):
            with pytest.raises(ph.CacheError, match="skipped"):
                await tier.put(entry())
        assert (tier.failures, tier.skipped) == (1, 10)  # one connection attempt, not eleven
    finally:
        await tier.aclose()


def make_source(counter: list[str] | None = None, *, latency: float = 0.0, fail: bool = False) -> ph.MockSource:
    async def handler(section_id: str, scope: ph.Scope) -> str:
        if counter is not None:
            counter.append(section_id)
        if fail:
            raise RuntimeError("backend down")
        return f"content of {section_id} for {scope.tenant}"

    return ph.MockSource(handler, IDS, latency_s=latency)


def make_engine(
    url: str, prefix: str, source: ph.Source, *, prefetch: bool = False, **tier_kw: object
) -> tuple[ph.Engine, ph.RedisTier]:
    tier_kw = {"socket_timeout_s": 5.0, "connect_timeout_s": 5.0, **tier_kw}  # slow CI is not an outage
    redis_tier = ph.RedisTier(url, prefix=prefix, **tier_kw)  # type: ignore[arg-type]
    engine = ph.Engine(
        sources=[source],
        cache=ph.WarmCache(tiers=[ph.MemoryTier(), redis_tier]),
        policy=ph.PrefetchPolicy(top_n=3, enabled=prefetch),
    )
    return engine, redis_tier


async def test_engine_serves_without_redis_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    engine, redis_tier = make_engine(f"redis://127.0.0.1:{free_port()}/0", "p", make_source(calls), backoff_s=60)
    caplog.set_level(logging.WARNING, logger="prehydrate.cache")
    async with engine, engine.session("c1", tenant="acme") as session, session.turn(query="q") as turn:
        results = [await turn.request_context(sid) for sid in IDS[:20]]
        results += [await turn.request_context(sid) for sid in IDS[:5]]
    assert [r.outcome for r in results] == ["miss"] * 20 + ["hit"] * 5
    assert all(r.content == f"content of {r.section_id} for acme" for r in results)
    warnings = [r for r in caplog.records if r.name == "prehydrate.cache" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'redis' is failing" in warnings[0].getMessage()
    assert redis_tier.failures == 1 and redis_tier.skipped > 20


# -- sharing between replicas -------------------------------------------------------------------------


async def test_section_prefetched_by_one_engine_is_a_hit_in_the_other(shared_redis: RedisServer, prefix: str) -> None:
    calls_a: list[str] = []
    calls_b: list[str] = []
    a, _ = make_engine(shared_redis.url, prefix, make_source(calls_a, latency=0.05), prefetch=True)
    b, _ = make_engine(shared_redis.url, prefix, make_source(calls_b))
    prefetched = asyncio.Event()
    a.subscribe(lambda ev: prefetched.set() if isinstance(ev, ph.PrefetchFinished) and ev.status == "ok" else None)
    async with a, b:
        async with a.session("conv-1", tenant="acme") as sa, sa.turn(query="q", expect=["doc/3"]):
            await asyncio.wait_for(prefetched.wait(), 10)
            async with b.session("conv-1", tenant="acme") as sb, sb.turn(query="q") as tb:
                r = await tb.request_context("doc/3")
                again = await tb.request_context("doc/3")
            async with b.session("conv-2", tenant="globex") as sg, sg.turn(query="q") as tg:
                other_tenant = await tg.request_context("doc/3")
    assert (r.outcome, r.tier, r.content) == ("hit", "redis", "content of doc/3 for acme")
    assert (again.outcome, again.tier) == ("hit", "memory")  # promoted into b's memory tier
    assert other_tenant.outcome == "miss" and other_tenant.content == "content of doc/3 for globex"
    assert calls_a == ["doc/3"] and calls_b == ["doc/3"]  # b hydrated only for the other tenant


async def test_two_engines_requesting_one_cold_section_hydrate_it_once(shared_redis: RedisServer, prefix: str) -> None:
    calls: list[str] = []
    engines = [make_engine(shared_redis.url, prefix, make_source(calls, latency=0.3)) for _ in range(3)]

    async def request(engine: ph.Engine, n: int) -> ph.ContextResult:
        async with engine.session(f"c{n}", tenant="acme") as s, s.turn(query="q") as t:
            return await t.request_context("doc/7")

    async with engines[0][0], engines[1][0], engines[2][0]:
        results = await asyncio.gather(*(request(e, n) for n, (e, _) in enumerate(engines)))
    assert calls == ["doc/7"]
    assert sorted(r.outcome for r in results) == ["inflight", "inflight", "miss"]
    assert {r.content for r in results} == {"content of doc/7 for acme"}
    assert sum(t.fills for _, t in engines) == 1 and sum(t.fill_waits for _, t in engines) == 2
    assert shared_redis.keys(f"{prefix}:f:*") == []  # the lock was released


async def test_a_crashed_holder_does_not_block_others(shared_redis: RedisServer, prefix: str) -> None:
    calls: list[str] = []
    engine, tier = make_engine(shared_redis.url, prefix, make_source(calls), fill_wait_s=0.2)
    section_key = engine.key_for(engine.catalog.get("doc/1"), ph.Scope(tenant="acme"))
    # A replica took the lock and died: nobody will store the entry or release the lock.
    shared_redis.command("SET", tier.lock_key(section_key), "dead-replica", "PX", "60000")
    async with engine, engine.session("c", tenant="acme") as s, s.turn(query="q") as t:
        r = await t.request_context("doc/1")
    assert (r.outcome, r.content) == ("miss", "content of doc/1 for acme")
    assert calls == ["doc/1"] and tier.fill_timeouts == 1


async def test_when_the_holder_fails_a_waiter_hydrates_itself(shared_redis: RedisServer, prefix: str) -> None:
    calls_a: list[str] = []
    calls_b: list[str] = []
    a, _ = make_engine(shared_redis.url, prefix, make_source(calls_a, latency=0.3, fail=True))
    b, tier_b = make_engine(shared_redis.url, prefix, make_source(calls_b))

    async def request(engine: ph.Engine) -> ph.ContextResult:
        async with engine.session("c", tenant="acme") as s, s.turn(query="q") as t:
            return await t.request_context("doc/2")

    async with a, b:
        first = asyncio.create_task(request(a))
        for _ in range(1000):  # until a holds the fill lock (bounded: fail, never hang)
            if shared_redis.keys(f"{prefix}:f:*"):
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("engine a never took the fill lock")
        r = await request(b)
        with pytest.raises(ph.SourceError, match="backend down"):
            await first
    assert (r.outcome, r.content) == ("miss", "content of doc/2 for acme")
    assert calls_a == ["doc/2"] and calls_b == ["doc/2"]
    assert tier_b.fill_waits == 1 and tier_b.fill_timeouts == 0  # woken by the release, not the timeout


async def test_two_processes_share_one_redis(shared_redis: RedisServer, prefix: str, tmp_path: Path) -> None:
    """Two real replicas (separate processes) start the same cold request together: one hydration."""
    worker = textwrap.dedent(
        """
        import asyncio, json, sys, time
        import prehydrate as ph
        import redis

        url, prefix, go = sys.argv[1], sys.argv[2], sys.argv[3]
        calls = []

        async def handler(section_id, scope):
            calls.append(section_id)
            return f"content of {section_id}"

        async def main():
            source = ph.MockSource(handler, ["shared/doc"], latency_s=1.0)
            tier = ph.RedisTier(url, prefix=prefix)
            engine = ph.Engine(sources=[source], cache=ph.WarmCache(tiers=[ph.MemoryTier(), tier]),
                               policy=ph.PrefetchPolicy(enabled=False))
            async with engine, engine.session("s", tenant="acme") as s, s.turn(query="q") as t:
                sync = redis.Redis.from_url(url)
                sync.incr(go + ":ready")
                while not sync.exists(go):  # both workers are ready: start together
                    time.sleep(0.005)
                sync.close()
                r = await t.request_context("shared/doc")
            print(json.dumps({"outcome": r.outcome, "content": r.content, "calls": calls}))

        asyncio.run(main())
        """
    )
    script = tmp_path / "worker.py"
    script.write_text(worker)
    go = f"{prefix}:go"
    procs = [
        subprocess.Popen([sys.executable, str(script), shared_redis.url, prefix, go], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        # Both import, start their engine and check in; then both are released at once. (A late
        # one would find the entry, a hit, and the single-hydration check below would still hold.)
        for _ in range(1500):
            if shared_redis.command("GET", f"{go}:ready") == b"2":
                break
            assert all(p.poll() is None for p in procs), "a worker died before starting"
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the workers did not start within 30s")
        shared_redis.command("SET", go, "1")
        outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sum(len(o["calls"]) for o in outs) == 1
    assert {o["content"] for o in outs} == {"content of shared/doc"}
    assert sorted(o["outcome"] for o in outs) in (["inflight", "miss"], ["hit", "miss"])


# -- failure behaviour: Redis killed mid-run, then back -----------------------------------------------


async def test_redis_killed_mid_run_every_request_answers_then_redis_use_resumes(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="prehydrate.cache")
    engine, tier = make_engine(own_redis.url, prefix, make_source(), backoff_s=0.1, max_backoff_s=0.2)
    results: list[ph.ContextResult] = []
    async with engine, engine.session("c", tenant="acme") as s, s.turn(query="q") as t:

        async def request(sid: str) -> ph.ContextResult:
            r = await t.request_context(sid)
            results.append(r)
            return r

        for sid in IDS[:10]:
            await request(sid)
        stored_before = own_redis.keys(f"{prefix}:e:*")

        own_redis.kill()
        for sid in IDS[10:30]:
            await request(sid)
            await asyncio.sleep(0.01)  # long enough for the breaker to let a probe through now and then
        for sid in IDS[:10]:  # what this replica already had is still served from memory
            assert (await request(sid)).tier == "memory"

        own_redis.start()  # back, empty, on the same port
        resumed_at = None
        for i, sid in enumerate(IDS[30:]):
            await request(sid)
            digest = engine.key_for(engine.catalog.get(sid), s.scope).digest
            if own_redis.keys(f"{prefix}:e:{digest}"):
                resumed_at = i
                break
            await asyncio.sleep(0.05)
        assert resumed_at is not None, "the tier never wrote to Redis again after the restart"
        # One more cold section: its read now reaches Redis too (recovery of the failed kind, a
        # read, is what the warm cache reports as "answering again").
        after = await request(IDS[-1])
        after_digest = engine.key_for(engine.catalog.get(after.section_id), s.scope).digest
        assert own_redis.keys(f"{prefix}:e:{after_digest}")
    assert len(stored_before) == 10
    assert all(r.content == f"content of {r.section_id} for acme" for r in results)
    messages = [r.getMessage() for r in caplog.records if r.name == "prehydrate.cache"]
    assert len([m for m in messages if "is failing" in m]) == 1, messages
    assert len([m for m in messages if "answering again" in m]) == 1, messages
    assert tier.skipped > tier.failures  # the breaker, not a timeout per call, absorbed the outage


def test_entry_json_is_the_shared_format() -> None:
    """Replicas of different versions read each other's entries: the JSON fields are stable."""
    data = json.loads(entry().to_bytes())
    assert sorted(data) == ["a", "c", "e", "k", "p", "s", "t"]
    assert dataclasses.replace(entry(), content="x").intact() is False
