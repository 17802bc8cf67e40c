"""Two replicas on one Redis: a change one of them observed is never answered with old content by the other.

Replica A watches the folder; replica B shares the folder (as replicas share a volume or a
database) but does not watch it, so only A's version stamp in Redis can tell B of the change.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import prehydrate as ph
from tests._redis import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _engine(root: Path, redis: RedisServer, prefix: str, *, watch: bool) -> ph.Engine:
    tier = ph.RedisTier(redis.url, prefix=prefix, socket_timeout_s=5, connect_timeout_s=5)
    cache = ph.WarmCache(tiers=[ph.MemoryTier(), tier])
    return ph.Engine(sources=[ph.DirectorySource(root, watch=watch)], cache=cache, predictor=ph.SequentialPredictor())


async def _read(engine: ph.Engine, sid: str) -> ph.ContextResult:
    async with engine.session(f"s-{uuid.uuid4().hex[:6]}") as session, session.turn(query="q", expect=[]) as turn:
        return await turn.request_context(sid)


async def test_the_replica_that_did_not_see_the_change_serves_the_new_content(
    tmp_path: Path, redis: RedisServer
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text("# Guide\n\nThe first version.\n")
    (root / "other.md").write_text("# Other\n\nUnchanged.\n")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with _engine(root, redis, prefix, watch=True) as a, _engine(root, redis, prefix, watch=False) as b:
        before = await _read(b, "guide")
        assert "first version" in before.content
        assert (await _read(b, "guide")).outcome == "hit"  # B holds the old version warm
        changed = asyncio.Event()
        a.subscribe(lambda e: changed.set() if isinstance(e, ph.SectionsChanged) else None)
        (root / "guide.md").write_text("# Guide\n\nThe second version.\n")
        async with asyncio.timeout(10):
            await changed.wait()  # A saw it, and stamped the new version before emitting
        after = await _read(b, "guide")
        assert "second version" in after.content and after.version != before.version
        assert b.catalog.get("guide").version == after.version == a.catalog.get("guide").version
        assert (await _read(b, "other")).outcome in ("hit", "miss")  # unrelated sections unaffected
        assert (await _read(b, "guide")).outcome == "hit"  # the new version is warm from here on


async def test_a_stamp_older_than_the_replicas_own_observation_is_ignored(tmp_path: Path, redis: RedisServer) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text("# Guide\n\nThe current version.\n")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with _engine(root, redis, prefix, watch=False) as b:
        listed = b.catalog.get("guide").version
        tier = b.cache.tiers[1]
        assert isinstance(tier, ph.RedisTier)
        await tier.stamp_versions({"guide": "0" * 16}, 1)  # a stale stamp from long before B listed
        assert await tier.stamped_version("guide") == (1, "0" * 16)
        result = await _read(b, "guide")
        assert result.version == listed and "current version" in result.content
        await tier.stamp_versions({"guide": "f" * 16}, 5)
        await tier.stamp_versions({"guide": "e" * 16}, 3)  # an older observation lands late: kept out
        assert await tier.stamped_version("guide") == (5, "f" * 16)


async def test_with_a_secret_a_planted_stamp_is_ignored(tmp_path: Path, redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    signed = ph.RedisTier(redis.url, prefix=prefix, secret="s" * 32, socket_timeout_s=5, connect_timeout_s=5)
    plain = ph.RedisTier(redis.url, prefix=prefix, socket_timeout_s=5, connect_timeout_s=5)
    try:
        await signed.stamp_versions({"guide": "a" * 16}, 10)
        assert await signed.stamped_version("guide") == (10, "a" * 16)
        await plain.stamp_versions({"guide": "b" * 16}, 20)  # written without the secret
        assert await signed.stamped_version("guide") is None and signed.forged == 1
    finally:
        await signed.aclose()
        await plain.aclose()
