"""Cache scopes: no request in one (tenant, partition) scope is ever served an entry fetched in another.

The scope is two separate fields of every key (memory, disk and Redis keys, in-flight keys); this
suite checks it end to end with scopes whose text would collide if anything joined them into one
string (``/``, ``:``, empty strings, unicode). The source writes the scope it was called with into
the content, under a version that is the same for every scope, so only the key's scope fields can
keep two scopes' entries apart: a leak shows up as foreign content.

The core half drives the engine through a memory, a disk and a Redis tier at once, then again
through each lower tier alone (so every tier must answer for itself). The MCP half drives the real
server over streamable HTTP with a bearer token per tenant and ``--isolate-sessions``: the tool, the
section resource and the ``compiled_context`` prompt (whose prefetches fill the cache).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import TextResourceContents

import prehydrate as ph
from prehydrate.mcp_server import ServerSettings, SessionManager, SessionPolicy, create_server
from tests._redis import RedisServer, running_redis

from .test_mcp_reliability import client_for, http_server

SECTIONS = [ph.Section(id=f"doc/{i}", title=f"Document {i}", version="v1", order=i) for i in range(6)]
IDS = [s.id for s in SECTIONS]

# Text that a joined key would confuse: separators, the empty string, unicode, lookalikes.
NASTY = st.sampled_from(["", "/", ":", "a", "a/b", "b/c", "a:b", "é", "e\u0301", "租户", "\U0001f600", " ", "\\"])
PART = st.one_of(NASTY, st.text(max_size=6), st.builds(lambda a, b: a + b, NASTY, NASTY))
TENANT = PART.filter(bool)  # the engine refuses an empty tenant (a partition may be empty)
SCOPE = st.tuples(TENANT, st.none() | PART)

_ids = itertools.count()


def content_for(tenant: str, partition: str | None, section_id: str) -> str:
    """What the source returns in a scope: the scope itself, so a leak is visible in the content."""
    return json.dumps([tenant, partition, section_id], ensure_ascii=False)


async def scope_echo(section_id: str, scope: ph.Scope) -> ph.Hydrated:
    await asyncio.sleep(0.002)
    content = content_for(scope.tenant, scope.partition, section_id)
    return ph.Hydrated(section_id=section_id, content=content, version="v1")  # one version for every scope


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def redis_tier(server: RedisServer, prefix: str) -> ph.RedisTier:
    return ph.RedisTier(server.url, prefix=prefix, socket_timeout_s=5, connect_timeout_s=5)


# -- the core: engine, in-flight joins, prefetch, memory, disk and Redis ------------------------------

Op = tuple[int, list[str], list[str]]
OPS = st.lists(
    st.tuples(
        st.integers(0, 5),  # which scope
        st.lists(st.sampled_from(IDS), max_size=3, unique=True),  # prefetched
        st.lists(st.sampled_from(IDS), min_size=1, max_size=3),  # requested
    ),
    min_size=1,
    max_size=10,
)


async def play(engine: ph.Engine, scopes: list[tuple[str, str | None]], ops: list[Op]) -> list[str]:
    """Run every op at once (one session per op, so scopes share nothing but the engine); the outcomes."""
    outcomes: list[str] = []

    async def run(i: int, expect: list[str], asks: list[str]) -> None:
        tenant, partition = scopes[i % len(scopes)]
        async with (
            engine.session(f"s{next(_ids)}", tenant=tenant, partition=partition, record=False) as session,
            session.turn(expect=expect) as turn,
        ):
            await asyncio.sleep(0.001)
            for r in await asyncio.gather(*(turn.request_context(sid) for sid in asks)):
                assert r.content == content_for(tenant, partition, r.section_id), (tenant, partition, r.content)
                outcomes.append(r.outcome)

    await asyncio.gather(*(run(*op) for op in ops))
    return outcomes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scopes=st.lists(SCOPE, min_size=2, max_size=6, unique=True), ops=OPS)
@example(
    scopes=[("a/b", "c"), ("a", "b/c"), ("a", None), ("a", ""), ("a/b/c", None)],
    ops=[(i, [], IDS[:2]) for i in range(5)],
)
def test_no_scope_is_served_another_scopes_entry_through_any_tier(
    redis: RedisServer, scopes: list[tuple[str, str | None]], ops: list[Op]
) -> None:
    prefix = f"scopes{next(_ids)}"
    policy = ph.PrefetchPolicy(discard_unused=False)  # keep speculative entries around to be leaked, if they could

    async def scenario(directory: str) -> None:
        src = ph.MockSource(scope_echo, SECTIONS)
        tiers = [ph.MemoryTier(), ph.DiskTier(directory), redis_tier(redis, prefix)]
        async with ph.Engine(sources=[src], cache=ph.WarmCache(tiers), policy=policy) as engine:
            await play(engine, scopes, ops)
        for only in (ph.DiskTier(directory), redis_tier(redis, prefix)):  # each lower tier answers alone
            src = ph.MockSource(scope_echo, SECTIONS)
            async with ph.Engine(sources=[src], cache=ph.WarmCache([only]), policy=policy) as engine:
                outcomes = await play(engine, scopes, ops)
            assert "hit" in outcomes, f"{only.name} served nothing: the check above tested no stored entry"

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(scenario(d))


def test_the_reported_collision_is_two_keys() -> None:
    """Tenant ``a/b`` with isolated session ``c`` and tenant ``a`` with session ``b/c`` once shared a key."""
    section = SECTIONS[0]
    one = ph.Engine(sources=[ph.MockSource(scope_echo, SECTIONS)])
    a = one.key_for(section, ph.Scope(tenant="a/b", partition="c"))
    b = one.key_for(section, ph.Scope(tenant="a", partition="b/c"))
    assert a != b and a.raw != b.raw and a.digest != b.digest
    assert (a.tenant, a.partition) == ("a/b", "c")


async def test_isolated_sessions_whose_names_join_alike_do_not_share_entries() -> None:
    """The reported bug: tenant ``a/b`` with session ``c`` fetched a section; tenant ``a`` with session
    ``b/c`` then got a hit on it, because --isolate-sessions joined the two into the tenant ``a/b/c``."""
    engine = ph.Engine(sources=[ph.MockSource(scope_echo, SECTIONS)], policy=ph.PrefetchPolicy(enabled=False))
    manager = SessionManager(engine, SessionPolicy(record=False, isolate=True))
    outcomes = []
    async with engine:
        for tenant, session in (("a/b", "c"), ("a", "b/c"), ("a", "b/c")):
            meta = {"prehydrate/session": session}
            key = manager.identify(meta=meta, principal=None, tenant=tenant, headers=None, connection=None, peer=None)
            turn, entry = await manager.begin_call(key)
            try:
                outcomes.append((await turn.request_context("doc/1")).outcome)
            finally:
                manager.end_call(entry)
        await manager.aclose()
    assert outcomes == ["miss", "miss", "hit"]


async def test_resource_reads_are_isolated_like_tool_calls() -> None:
    """The section resource once read through the tenant's shared scope even with --isolate-sessions."""
    calls: list[tuple[str, str | None]] = []

    async def counting(section_id: str, scope: ph.Scope) -> ph.Hydrated:
        calls.append((scope.tenant, scope.partition))
        return await scope_echo(section_id, scope)

    engine = ph.Engine(sources=[ph.MockSource(counting, SECTIONS)], policy=ph.PrefetchPolicy(enabled=False))
    server = create_server(engine, ServerSettings(sessions=SessionPolicy(isolate=True, record=False)))
    async with engine, Client(server, mode="legacy") as client:
        for session in ("x", "y", "x"):
            read = await client.read_resource(
                "prehydrate://sections/doc/1", meta={"prehydrate/session": session}, cache_mode="bypass"
            )
            (item,) = read.contents
            assert isinstance(item, TextResourceContents)
            assert item.text == content_for(ph.Scope().tenant, session, "doc/1")
    assert calls == [("default", "x"), ("default", "y")]  # x's second read is a hit in x's own scope


# -- the MCP server: tool, resource and prompt over HTTP, tenant from the token ---------------------


def token_of(tenant: str) -> str:
    return "tok-" + hashlib.sha256(tenant.encode("utf-8")).hexdigest()


# A session id comes from the client's _meta: a non-empty, NUL-free string (an empty one is refused).
SESSION = PART.filter(lambda s: bool(s.strip()) and "\x00" not in s)
MCP_TENANT = SESSION  # a token's tenant must not be blank either


async def mcp_client_scenario(url: str, tenant: str, session: str, asks: list[str]) -> None:
    """One client of ``tenant`` in ``session``: the prompt (prefetch), then tool calls and resource reads."""
    meta = {"prehydrate/session": session}
    async with client_for(url, token_of(tenant)) as client:
        prompt = await client.get_prompt("compiled_context", {"task": "t", "query": "q"}, meta=meta)
        assert prompt.messages
        await asyncio.sleep(0.01)  # let the prompt's prefetches land in the cache
        for sid in asks:
            result = await client.call_tool("request_context", {"section": sid}, meta=meta)
            assert not result.is_error and result.structured_content is not None, result
            assert result.structured_content["content"] == content_for(tenant, session, sid), (tenant, session)
            uri = f"prehydrate://sections/{sid}"
            read = await client.read_resource(uri, meta=meta, cache_mode="bypass")
            (item,) = read.contents
            assert isinstance(item, TextResourceContents)
            assert item.text == content_for(tenant, session, sid), (tenant, session, item.text)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scopes=st.lists(st.tuples(MCP_TENANT, SESSION), min_size=2, max_size=4, unique=True),
    asks=st.lists(st.sampled_from(IDS), min_size=1, max_size=3),
)
@example(scopes=[("a/b", "c"), ("a", "b/c"), ("a", "b:c"), ("a:b", "c")], asks=IDS[:2])
def test_no_mcp_request_is_served_another_scopes_entry(
    redis: RedisServer, scopes: list[tuple[str, str]], asks: list[str]
) -> None:
    """Tool, resource and prompt, over HTTP, with --isolate-sessions: the scope is (token's tenant, session)."""
    prefix = f"scopes{next(_ids)}"
    settings_ = ServerSettings(sessions=SessionPolicy(isolate=True, record=False))
    tokens = {token_of(t): t for t, _ in scopes}

    async def scenario(directory: str) -> None:
        tiers = [ph.MemoryTier(max_bytes=600), ph.DiskTier(directory), redis_tier(redis, prefix)]  # small: evicts
        policy = ph.PrefetchPolicy(discard_unused=False)
        engine = ph.Engine(sources=[ph.MockSource(scope_echo, SECTIONS)], cache=ph.WarmCache(tiers), policy=policy)
        async with engine, http_server(engine, tokens, settings_) as url:
            for tenant, session in scopes:  # one after the other: each later scope finds earlier entries warm
                await mcp_client_scenario(url, tenant, session, asks)

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(scenario(d))
