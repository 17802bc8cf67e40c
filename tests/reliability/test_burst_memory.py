"""What a burst leaves behind: nothing of an answered request outlives it, and sessions stay small.

After a 10,000-call burst the server's RSS stayed 31 % above its baseline (issue #16), though the
Python objects alive were almost the same: a few thousand small objects that outlived their
requests kept the allocator's arenas from being returned. These tests pin the causes found:

- a keep-alive connection waiting for its next request kept the last one (uvicorn's cycle, scope
  and headers, with the authenticated user and token), and every response armed a 20 s timer that
  kept the request's whole context alive, one more per response on a busy connection;
- the conversation keeper's idle timers and housekeeping tasks ran in the context of the call
  that armed them, so each idle session kept its last request's context for the idle gap;
- a session kept four parallel histories (3 KB before its first turn ended).

The RSS itself is measured by ``python tests/benchmarks/load_mcp.py --burst 10000``
(docs/reliability.md), not here.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

import prehydrate as ph
from prehydrate.mcp_server import HttpLimits, TenantTokenVerifier, create_server, run_http, static_auth_settings
from tests._mcp_raw import post_request
from tests._net import free_port, wait_for_task_port

TOKEN = "burst-token-0123456789abcdef"
@asynccontextmanager
async def _serving(engine: ph.Engine) -> AsyncIterator[str]:
    """``run_http`` (the admission-controlled transport ``prehydrate serve`` uses) with bearer tokens."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = create_server(
        engine, token_verifier=TenantTokenVerifier({TOKEN: "acme"}), auth=static_auth_settings(base)
    )
    task = asyncio.create_task(run_http(server, host="127.0.0.1", port=port, limits=HttpLimits()))
    try:
        await wait_for_task_port(port, task)
        yield f"{base}/mcp"
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _tool_call(http: httpx.AsyncClient, url: str, request_id: int, session: str) -> dict[str, Any]:
    """One ``request_context`` call as JSON-RPC over the client's (kept-alive) connection."""
    params = {
        "name": "request_context",
        "arguments": {"section": "billing/refunds"},
        "_meta": {"prehydrate/session": session},
    }
    response = await post_request(http, url, "tools/call", params, request_id=request_id, token=TOKEN)
    response.raise_for_status()
    reply: dict[str, Any] = response.json()
    assert "result" in reply and not reply["result"].get("isError"), reply
    return reply


def _alive_users() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, AuthenticatedUser))


async def test_idle_keep_alive_connections_keep_nothing_of_the_requests_they_answered() -> None:
    """Eight connections, each with five answered calls, then idle: no request's user or token is kept.

    Before the fix each idle connection held its last request's scope (user, token, headers), and
    each response had armed a head-deadline timer holding that request's context: 8 users at the
    least, up to 40.
    """
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    async with engine, _serving(engine) as url:
        clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) for _ in range(8)]
        try:
            for n, http in enumerate(clients):
                for i in range(5):
                    await _tool_call(http, url, i, f"s{n}")
            await asyncio.sleep(0.2)  # the responses have left; every connection is idle and open
            assert _alive_users() == 0
            await _tool_call(clients[0], url, 99, "s0")  # and an idle connection still serves
        finally:
            for http in clients:
                await http.aclose()


class _Marker:
    """Something a request's context holds (a token, a span): it must not outlive the request."""


async def test_the_keepers_timers_do_not_keep_the_calling_context_alive() -> None:
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    var: contextvars.ContextVar[_Marker | None] = contextvars.ContextVar("request_marker", default=None)
    async with engine:
        keeper = ph.ConversationKeeper(engine.conversations, ph.ConversationPolicy(idle_gap_s=60, record=False))

        async def one_call() -> None:  # a request: its own context, like uvicorn gives each request
            var.set(_Marker())
            turn, call = await keeper.begin_call("s1")
            await turn.request_context("billing/refunds")
            keeper.end_call(call, then=lambda: None)

        await asyncio.get_running_loop().create_task(one_call(), context=contextvars.Context())
        await asyncio.sleep(0.05)  # the idle-time work has run; the idle timer (60 s) is armed
        gc.collect()
        assert not any(isinstance(o, _Marker) for o in gc.get_objects()), "a timer kept the call's context"
        assert keeper.session("s1") is not None  # the session itself is kept, as it should be
        await keeper.aclose()


async def test_a_session_keeps_one_record_per_turn() -> None:
    """Its history and queries are read from the turns it records, not kept again beside them."""
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    async with engine, engine.session("s1") as session:
        for query, section in (("refunds?", "billing/refunds"), ("and the api?", "api/authentication")):
            async with session.turn(query=query) as turn:
                await turn.request_context(section)
        assert session.history == (("billing/refunds",), ("api/authentication",))
        assert session.history_queries == ("refunds?", "and the api?")
        assert [t.query for t in session.turns] == ["refunds?", "and the api?"]
        assert session.trace().turns == session.turns
