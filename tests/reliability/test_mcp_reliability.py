"""The MCP side: hostile input through the tool, tenants over HTTP with bearer tokens, a small load run.

The server is the real one (``prehydrate.mcp_server.create_server``); HTTP runs under uvicorn on a
free loopback port in this process (so the tests can hand it a tenant-aware source and inspect its
cache afterwards), and the load run starts the real ``prehydrate serve`` command line.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

import prehydrate as ph
from prehydrate.mcp_server import ServerSettings, TenantTokenVerifier, create_server, static_auth_settings
from tests._net import free_port
from tests.benchmarks.load_mcp import LoadConfig, run_load

from .conftest import SECRET, TENANTS, ScopeChecked, tenant_content, tenant_sections
from .test_tenants import all_entries, assert_no_entry_crosses_tenants

TOKENS = {f"tok-{t}-0123456789abcdef": t for t in TENANTS}
TOKEN_OF = {t: tok for tok, t in TOKENS.items()}
OPAQUE = "Error executing tool request_context"
"""What the SDK says when a tool raised something unexpected (the message is hidden): never wanted."""


def text_of(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


# --------------------------------------------------------------------------------------------------
# Hostile input through the tool


@pytest.fixture
def dir_engine(docs_root: Path, secret_file: Path) -> ph.Engine:
    (docs_root / "leak.md").symlink_to(secret_file)
    return ph.Engine(sources=[ph.DirectorySource(docs_root)])


HOSTILE_CALLS: list[dict[str, Any]] = [
    {"section": "../outside/secret"},
    {"section": "billing/../../outside/secret"},
    {"section": "/etc/passwd"},
    {"section": "C:\\Windows\\win.ini"},
    {"section": "leak"},
    {"section": "a\x00b"},
    {"section": "x" * 100_000},
    {"section": ""},
    {"query": "q" * 1_000_000},
    {"query": "refund\x00policy"},
    {"query": "   "},
    {"query": "zzzz qqqq"},
    {"section": 123},
    {"section": ["billing/refunds"]},
    {"query": {"$ne": None}},
    {"section": True},
    {},
    {"section": None, "query": None},
    {"section": "billing/refunds", "query": "refund"},
    {"section": "\ud800"},
]


async def good_call(client: Client, **kw: Any) -> dict[str, Any]:
    result = await client.call_tool("request_context", {"section": "billing/refunds"}, **kw)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["content"].startswith("# Refunds")
    return result.structured_content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_hostile_tool_calls_are_clear_errors_and_the_server_answers(dir_engine: ph.Engine, mode: str) -> None:
    server = create_server(dir_engine)
    async with dir_engine, Client(server, mode=mode) as client:  # type: ignore[arg-type]
        for args in HOSTILE_CALLS:
            try:
                result = await client.call_tool("request_context", args)
            except MCPError as exc:  # a protocol-level refusal is also a clear error
                message = str(exc)
            else:
                assert result.is_error, f"{args!r} was served: {result.structured_content}"
                message = text_of(result)
                assert message.strip() != OPAQUE, f"{args!r} raised an unexpected exception inside the tool"
            assert SECRET not in message and len(message) < 2000, message[:300]
            await good_call(client)


@pytest.mark.parametrize(
    "meta",
    [
        {"prehydrate/session": "x" * 100_000},
        {"prehydrate/session": 5},
        {"prehydrate/session": "a\x00b"},
        {"prehydrate/session": ""},
        {"prehydrate/session": {"tenant": "globex"}},
        {"prehydrate/session": "a\ud800"},  # refused, not cleaned: "a\ud801" would become the same session
    ],
    ids=ascii,
)
async def test_hostile_session_meta_is_refused(dir_engine: ph.Engine, meta: dict[str, Any]) -> None:
    server = create_server(dir_engine)
    async with dir_engine, Client(server, mode="legacy") as client:
        result = await client.call_tool("request_context", {"section": "billing/refunds"}, meta=meta)  # type: ignore[arg-type]
        assert result.is_error and text_of(result).strip() != OPAQUE and len(text_of(result)) < 2000
        await good_call(client, meta={"prehydrate/session": "fine"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "uri",
    [
        "prehydrate://sections/../outside/secret",
        "prehydrate://sections/%2e%2e/outside/secret",
        "prehydrate://sections/leak",
        "prehydrate://sections/" + "x" * 10_000,
        "prehydrate://sections/a%00b",
    ],
)
async def test_hostile_resource_reads_never_leak(dir_engine: ph.Engine, uri: str) -> None:
    server = create_server(dir_engine)
    async with dir_engine, Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource(uri)
        assert SECRET not in str(info.value)
        good = await client.read_resource("prehydrate://sections/billing/refunds%23partial-refunds")
        assert SECRET not in str(good.contents)
        await good_call(client)


# --------------------------------------------------------------------------------------------------
# Tenants over HTTP with tokens


@asynccontextmanager
async def http_server(
    engine: ph.Engine, tokens: dict[str, str] = TOKENS, settings: ServerSettings | None = None
) -> AsyncIterator[str]:
    """The real server with bearer-token auth under uvicorn on a free loopback port; yields its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    verifier = TenantTokenVerifier(tokens)
    server = create_server(engine, settings, token_verifier=verifier, auth=static_auth_settings(base))
    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    try:
        async with asyncio.timeout(30):
            while not uv.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"{base}/mcp"
    finally:
        uv.should_exit = True
        await task


@asynccontextmanager
async def client_for(url: str, token: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = create_mcp_http_client(headers=headers)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:  # type: ignore[arg-type]
        yield client


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_http_refuses_bad_tokens_and_garbage_and_keeps_answering(tmp_path: Path) -> None:
    handler = ScopeChecked(strict_session=False)
    engine = ph.Engine(sources=[ph.MockSource(handler, tenant_sections())])
    async with engine, http_server(engine) as url, httpx.AsyncClient(timeout=30) as raw:
        good = {**HEADERS, "Authorization": f"Bearer {TOKEN_OF['acme']}"}
        for headers in (
            HEADERS,
            {**HEADERS, "Authorization": "Bearer nope"},
            {**HEADERS, "Authorization": f"Bearer {TOKEN_OF['acme'].upper()}"},
            {**HEADERS, "Authorization": f"Basic {TOKEN_OF['acme']}"},
            {**HEADERS, "Authorization": "Bearer " + "x" * 100_000},
        ):
            response = await raw.post(url, content=b"{}", headers=headers)
            assert response.status_code in (400, 401, 431), (response.status_code, response.text[:200])
        for body in (
            b"{not json",
            b"\xff\xfe\x00\x01",
            b"[" * 100_000 + b"]" * 100_000,
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "nope"}).encode(),
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}).encode(),
            b"{" + b'"a": 1,' * 1_000_000 + b'"b": 2}',
        ):
            response = await raw.post(url, content=body, headers=good)
            assert response.status_code < 500, (response.status_code, response.text[:200])
            assert "Traceback" not in response.text
        async with client_for(url, TOKEN_OF["acme"]) as client:
            result = await client.call_tool("request_context", {"section": "doc/1"})
            assert not result.is_error and result.structured_content is not None
            assert result.structured_content["content"] == tenant_content("acme", "doc/1")
    assert handler.violations == []


async def test_many_tenant_sessions_over_http_never_cross(tmp_path: Path) -> None:
    """Tenants' clients run at once (both protocol eras); some reuse another tenant's session name."""
    handler = ScopeChecked(delay_s=0.01, strict_session=False)
    sections = tenant_sections()
    ids = [s.id for s in sections]
    cache = ph.WarmCache([ph.MemoryTier(), ph.DiskTier(tmp_path / "cache")])
    policy = ph.PrefetchPolicy(discard_unused=False)
    engine = ph.Engine(sources=[ph.MockSource(handler, sections)], cache=cache, policy=policy)
    served: list[tuple[str, str, str]] = []

    async def agent(tenant: str, n: int, mode: str) -> None:
        rng = random.Random(f"{tenant}-{n}")
        # every fourth agent names its session after another tenant's: it must still act as itself
        other = TENANTS[(TENANTS.index(tenant) + 1) % len(TENANTS)]
        session = f"{other}/0" if n % 4 == 3 else f"{tenant}/{n}"
        async with client_for(url, TOKEN_OF[tenant], mode) as client:
            for _ in range(3):
                prompt = await client.get_prompt(
                    "compiled_context", {"task": "support", "query": "help"}, meta={"prehydrate/session": session}
                )
                assert prompt.messages
                asks = rng.sample(ids, 3)
                results = await asyncio.gather(
                    *(
                        client.call_tool("request_context", {"section": sid}, meta={"prehydrate/session": session})
                        for sid in asks
                    )
                )
                for sid, result in zip(asks, results, strict=True):
                    assert not result.is_error, text_of(result)
                    assert result.structured_content is not None
                    served.append((tenant, sid, result.structured_content["content"]))
                    served_outcomes.add(result.structured_content["outcome"])

    served_outcomes: set[str] = set()
    async with engine, http_server(engine) as url:
        await asyncio.gather(*(agent(t, n, "legacy" if n % 2 else "auto") for t in TENANTS for n in range(5)))
    assert len(served) == len(TENANTS) * 5 * 3 * 3
    for tenant, sid, content in served:
        assert content == tenant_content(tenant, sid), f"{tenant} was served {content[:40]!r}"
    assert handler.violations == []
    assert {t for t, _, _ in handler.seen} == set(TENANTS)
    assert "hit" in served_outcomes
    disk = ph.DiskTier(tmp_path / "cache")
    entries = await all_entries(ph.WarmCache([disk]))
    await disk.aclose()
    assert {e.key.tenant for e in entries} == set(TENANTS)
    assert_no_entry_crosses_tenants(entries)


# --------------------------------------------------------------------------------------------------
# Load (CI variant; the full run is tests/benchmarks/load_mcp.py, numbers in docs/reliability.md)


async def check_load(cfg: LoadConfig) -> dict[str, Any]:
    result = await run_load(cfg)
    assert result["errors"] == 0, result["error_samples"]
    assert result["wrong_content"] == 0
    assert result["answered"] == result["requests"] > 0
    assert result["within_memory_bound"], result["rss_mb"]
    assert result["latency_ms"]["hit"]["n"] > 0 and result["latency_ms"]["miss"]["n"] > 0
    return result


async def test_load_small() -> None:
    await check_load(
        LoadConfig(
            sessions=20, duration_s=10, files=30, max_requests=5000, think_ms=(100.0, 400.0), warmup_s=2.0, client="mcp"
        )
    )


@pytest.mark.heavy
async def test_load_full() -> None:
    """The full run: 200 sessions for 60 s; the latency goal is checked here, not in CI."""
    result = await check_load(LoadConfig())
    assert result["latency_ms"]["hit"]["p95"] <= 15.0, result["latency_ms"]


async def test_every_uri_the_catalog_advertises_resolves(dir_engine: ph.Engine) -> None:
    server = create_server(dir_engine)
    async with dir_engine, Client(server, mode="legacy") as client:
        listing = await client.read_resource("prehydrate://sections")
        stubs = json.loads(listing.contents[0].text)  # type: ignore[union-attr]
        assert any("#" in stub["id"] for stub in stubs)
        for stub in stubs:
            section = await client.read_resource(stub["uri"])
            assert SECRET not in str(section.contents)
