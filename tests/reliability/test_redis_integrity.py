"""Entries planted in a shared Redis, against a real redis-server on a free loopback port.

An entry carries its own key and a SHA-256 of its content, which catches torn writes but not a
forger: anyone able to write to Redis can compute both. Without a secret the tier therefore trusts
Redis (the first test shows what that means); with ``secret=`` every value carries an HMAC and a
planted one is a miss, counted and logged once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import prehydrate as ph
from tests._redis import RedisServer, running_redis

SECRET_KEY = "k" * 32
PLANTED = "PLANTED BY SOMEONE WITH WRITE ACCESS TO REDIS"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _engine(server: RedisServer, prefix: str, secret: str | None) -> tuple[ph.Engine, ph.RedisTier]:
    tier = ph.RedisTier(server.url, prefix=prefix, secret=secret, socket_timeout_s=5, connect_timeout_s=5)
    source = ph.MockSource(lambda sid, scope: f"real content of {sid} for {scope.tenant}", ["doc/a", "doc/b"])
    engine = ph.Engine(sources=[source], cache=ph.WarmCache([tier]), policy=ph.PrefetchPolicy(enabled=False))
    return engine, tier


def _plant(server: RedisServer, tier: ph.RedisTier, key: ph.CacheKey, value: bytes) -> None:
    server.command("SET", tier.entry_key(key), value)


async def _request(engine: ph.Engine, tenant: str, section: str) -> ph.ContextResult:
    async with engine.session(f"{tenant}-{uuid.uuid4().hex[:6]}", tenant=tenant) as session, session.turn() as turn:
        return await turn.request_context(section)


async def test_without_a_secret_redis_is_trusted_and_a_planted_entry_is_served(redis_server: RedisServer) -> None:
    """What the docs warn about: a well-formed planted entry (own key, right checksum) is a hit."""
    engine, tier = _engine(redis_server, f"t{uuid.uuid4().hex[:8]}", secret=None)
    async with engine:
        key = engine.key_for(engine.catalog.get("doc/a"), ph.Scope(tenant="victim"))
        _plant(redis_server, tier, key, ph.CacheEntry.make(key, PLANTED).to_bytes())
        result = await _request(engine, "victim", "doc/a")
    assert (result.outcome, result.content) == ("hit", PLANTED)


async def test_with_a_secret_planted_and_altered_entries_are_misses_counted_and_logged_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    engine, tier = _engine(redis_server, prefix, secret=SECRET_KEY)
    async with engine:
        a = engine.key_for(engine.catalog.get("doc/a"), ph.Scope(tenant="victim"))
        b = engine.key_for(engine.catalog.get("doc/b"), ph.Scope(tenant="victim"))
        _plant(redis_server, tier, a, ph.CacheEntry.make(a, PLANTED).to_bytes())  # no tag at all
        # A tag made with another key, in the right format.
        other = ph.RedisTier(redis_server.url, prefix=prefix, secret="x" * 32)
        await other.put(ph.CacheEntry.make(b, PLANTED))
        await other.aclose()
        with caplog.at_level(logging.WARNING, logger="prehydrate.redis"):
            first = await _request(engine, "victim", "doc/a")
            second = await _request(engine, "victim", "doc/b")
        assert (first.outcome, second.outcome) == ("miss", "miss")
        assert first.content == "real content of doc/a for victim"
        assert second.content == "real content of doc/b for victim"
        assert tier.forged == 2
        warnings = [r for r in caplog.records if "fail authentication" in r.getMessage()]
        assert len(warnings) == 1
        assert SECRET_KEY not in caplog.text
        # The real content replaced the planted values, signed: the next session gets a verified hit.
        again = await _request(engine, "victim", "doc/a")
        assert (again.outcome, again.content) == ("hit", "real content of doc/a for victim")


async def test_replicas_sharing_a_secret_share_entries_and_a_flipped_byte_is_refused(
    redis_server: RedisServer,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    one, tier_one = _engine(redis_server, prefix, secret=SECRET_KEY)
    two, tier_two = _engine(redis_server, prefix, secret=SECRET_KEY)
    async with one, two:
        assert (await _request(one, "acme", "doc/a")).outcome == "miss"
        assert (await _request(two, "acme", "doc/a")).outcome == "hit"  # verified across replicas
        key = one.key_for(one.catalog.get("doc/a"), ph.Scope(tenant="acme"))
        stored = redis_server.command("GET", tier_one.entry_key(key))
        assert isinstance(stored, bytes) and stored.startswith(b"phmac1:")
        flipped = stored.replace(b"real content", b"fake content")
        _plant(redis_server, tier_one, key, flipped)
        result = await _request(two, "acme", "doc/a")
        assert (result.outcome, result.content) == ("miss", "real content of doc/a for acme")
        assert tier_two.forged == 1


def test_a_short_secret_is_a_config_error(redis_server: RedisServer) -> None:
    with pytest.raises(ph.ConfigError, match="at least 16"):
        ph.RedisTier(redis_server.url, secret="short")


def test_serve_takes_the_secret_from_the_environment(tmp_path: Path) -> None:
    """``--redis-secret`` has an environment variable, so the key need not appear in ``ps``."""
    from typer.testing import CliRunner

    from prehydrate.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "--redis-secret" in result.output and "PREHYDRATE_REDIS_SECRET" in result.output
