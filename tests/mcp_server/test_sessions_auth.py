"""Session identity, tenant isolation and the static token verifier, without a transport."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate.mcp_server import SessionManager, SessionPolicy, TenantTokenVerifier, load_tokens


class _Stream:
    """Stands in for a client's stream object (weak-referenceable, like the SDK's)."""


def _manager() -> SessionManager:
    return SessionManager(ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]))


async def test_identity_order_meta_header_principal_connection() -> None:
    m = _manager()
    stream = _Stream()
    common = {"headers": {"mcp-session-id": "abc"}, "connection": stream, "peer": "127.0.0.1:5000"}
    assert m.identify(meta={"prehydrate/session": "s1"}, principal="alice", tenant="acme", **common).session_id == "s1"
    by_header = m.identify(meta={}, principal="alice", tenant="acme", **common)
    assert (by_header.session_id, by_header.tenant, by_header.origin) == ("mcp:abc", "acme", "mcp-session-id")
    no_header = {**common, "headers": {}}
    by_principal = m.identify(meta={}, principal="alice", tenant="acme", **no_header)
    assert (by_principal.session_id, by_principal.tenant, by_principal.origin) == (
        "principal:alice",
        "acme",
        "principal",
    )
    anonymous = m.identify(meta=None, principal=None, tenant=None, **common)
    assert (anonymous.session_id, anonymous.tenant) == ("mcp:abc", "default")
    by_conn = m.identify(meta=None, principal=None, tenant=None, headers=None, connection=stream, peer=None)
    assert by_conn.origin == "connection"
    # the same stream is the same session; another stream is another one
    assert m.identify(meta=None, principal=None, tenant=None, headers=None, connection=stream, peer=None) == by_conn
    other = m.identify(meta=None, principal=None, tenant=None, headers=None, connection=_Stream(), peer=None)
    assert other.session_id != by_conn.session_id
    # HTTP without a session header: the TCP peer
    p1 = m.identify(meta=None, principal=None, tenant=None, headers={}, connection=None, peer="127.0.0.1:1")
    p2 = m.identify(meta=None, principal=None, tenant=None, headers={}, connection=None, peer="127.0.0.1:2")
    assert p1.session_id != p2.session_id


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "a\x00b", 42, ["s"]])
async def test_bad_meta_session_ids_are_refused(bad: object) -> None:
    with pytest.raises(ph.InputError, match="prehydrate/session"):
        _manager().identify(
            meta={"prehydrate/session": bad}, principal=None, tenant=None, headers=None, connection=None, peer=None
        )


async def test_same_session_id_in_two_tenants_is_two_sessions_and_caches() -> None:
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], policy=ph.PrefetchPolicy(enabled=False))
    m = SessionManager(engine, SessionPolicy(record=False))
    keys = [
        m.identify(
            meta={"prehydrate/session": "shared"}, principal=None, tenant=t, headers=None, connection=None, peer=None
        )
        for t in ("acme", "globex")
    ]
    outcomes = []
    async with engine:
        for key in (keys[0], keys[0], keys[1]):
            turn, entry = await m.begin_call(key)
            try:
                outcomes.append((await turn.request_context("billing/plans")).outcome)
            finally:
                m.end_call(entry)
        assert len(m) == 2
        assert m.session(keys[0]) is not m.session(keys[1])
        await m.aclose()
    # acme's entry never answers globex: the second tenant hydrates its own copy
    assert outcomes == ["miss", "hit", "miss"]


async def test_policy_validation() -> None:
    with pytest.raises(ph.ConfigError):
        SessionPolicy(idle_gap_s=0)
    with pytest.raises(ph.ConfigError):
        SessionPolicy(idle_gap_s=60, session_ttl_s=10)


async def test_token_verifier_maps_tokens_to_tenants() -> None:
    verifier = TenantTokenVerifier({"tok-acme-0123456789abcdef": "acme"})
    token = await verifier.verify_token("tok-acme-0123456789abcdef")
    assert token is not None and token.claims == {"tenant": "acme"}
    assert token.subject is not None and token.subject.startswith("token-") and "acme" not in token.subject
    assert "context:read" in token.scopes
    assert await verifier.verify_token("tok-acme-0123456789abcdeX") is None
    assert await verifier.verify_token("") is None


async def test_two_agents_of_one_tenant_are_two_sessions_sharing_the_tenants_cache() -> None:
    """The verifier once made principal = tenant, so every agent of a tenant shared one session and turn."""
    verifier = TenantTokenVerifier({"tok-acme-agent1-0123456789": "acme", "tok-acme-agent2-0123456789": "acme"})
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], policy=ph.PrefetchPolicy(enabled=False))
    m = SessionManager(engine, SessionPolicy(record=False))
    keys = []
    for raw in ("tok-acme-agent1-0123456789", "tok-acme-agent2-0123456789"):
        token = await verifier.verify_token(raw)
        assert token is not None and token.claims is not None
        who = {"principal": token.subject, "tenant": token.claims["tenant"]}
        keys.append(m.identify(meta=None, headers={}, connection=None, peer=None, **who))
    assert keys[0].tenant == keys[1].tenant == "acme" and keys[0].session_id != keys[1].session_id
    outcomes, turns = [], []
    async with engine:
        for key in keys:
            turn, entry = await m.begin_call(key)
            try:
                outcomes.append((await turn.request_context("billing/plans")).outcome)
                turns.append(turn)
            finally:
                m.end_call(entry)
        assert turns[0] is not turns[1] and len(m) == 2
        await m.aclose()
    assert outcomes == ["miss", "hit"]  # two sessions, one tenant cache


async def test_load_tokens_from_file_and_env(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"tok-file-0123456789abcdef": "a"}), encoding="utf-8")
    env = {"PREHYDRATE_TOKENS": "tok-env-0123456789abcdef=b, tok-env2-0123456789abcdef=c"}
    assert load_tokens(f, env=env) == {
        "tok-file-0123456789abcdef": "a",
        "tok-env-0123456789abcdef": "b",
        "tok-env2-0123456789abcdef": "c",
    }
    assert load_tokens(env={}) == {}
    with pytest.raises(ph.ConfigError, match=r"^the token file .*missing\.json does not exist$"):
        load_tokens(tmp_path / "missing.json", env={})
    (tmp_path / "latin1.json").write_bytes('{"tok-café-0123456789": "a"}'.encode("latin-1"))
    with pytest.raises(ph.ConfigError, match=r"latin1\.json: not UTF-8 text"):  # was a raw UnicodeDecodeError
        load_tokens(tmp_path / "latin1.json", env={})


async def test_a_call_racing_the_session_expiry_gets_a_fresh_session() -> None:
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], policy=ph.PrefetchPolicy(enabled=False))
    m = SessionManager(engine, SessionPolicy(record=False))
    key = m.identify(
        meta={"prehydrate/session": "s"}, principal=None, tenant=None, headers=None, connection=None, peer=None
    )
    async with engine:
        turn, entry = await m.begin_call(key)
        await turn.request_context("billing/plans")
        m.end_call(entry)
        async with entry.lock:  # the expiry holds the lock first; the call waits behind it
            closing = asyncio.create_task(m.keeper._close(entry))
            calling = asyncio.create_task(m.begin_call(key))
            await asyncio.sleep(0)
        await closing
        turn2, entry2 = await calling
        assert entry2 is not entry and turn2.session is not turn.session and not turn2.session.closed
        assert (await turn2.request_context("billing/plans")).section_id == "billing/plans"
        m.end_call(entry2)
        await m.aclose()
