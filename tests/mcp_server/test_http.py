"""A real `prehydrate serve --transport http` subprocess on a free loopback port.

Without tokens the server answers anyone on loopback; with a token file every request needs a
bearer token (401 otherwise) and the token's tenant scopes the session, the cache and prefetching.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult
from typer.testing import CliRunner

import prehydrate as ph
from prehydrate.cli import app
from prehydrate.mcp_server._auth import client_key
from tests._mcp_raw import post_request

from .conftest import child_env, http_server

MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])
TOKENS = {"tok-acme-0123456789abcdef": "acme", "tok-globex-0123456789abcdef": "globex"}


def _out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _init_body() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }


_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_http_without_auth_on_loopback(tmp_path: Path) -> None:
    with http_server(tmp_path) as (url, traces):
        for mode in ("auto", "legacy"):
            async with Client(url, mode=mode) as client:  # type: ignore[arg-type]
                first = _out(await client.call_tool("request_context", {"section": "billing/plans"}))
                assert first["section"] == "billing/plans"
                again = _out(await client.call_tool("request_context", {"section": "billing/plans"}))
                assert again["outcome"] == "hit"
                err = await client.call_tool("request_context", {"section": "../secrets"})
                assert err.is_error and "not file paths" in str(err.content[0].text)  # type: ignore[union-attr]
                huge = await client.call_tool("request_context", {"query": "x" * (1 << 20)})
                assert huge.is_error and "too long" in str(huge.content[0].text)  # type: ignore[union-attr]
                assert _out(await client.call_tool("request_context", {"section": "billing/taxes"}))["content"]
    # SIGTERM: uvicorn shut down, the lifespan bailed out and recorded the sessions
    recorded = ph.read_traces(traces)
    keys = sorted(c.key for t in recorded for turn in t.turns for c in turn.calls)
    assert keys.count("billing/plans") == 4 and keys.count("billing/taxes") == 2
    # the legacy era has an mcp-session-id; the modern era falls back to the TCP connection
    assert any(t.session.startswith("mcp:") for t in recorded)
    assert any(t.session.startswith("conn-") for t in recorded)


async def test_http_with_tokens_requires_a_bearer_token(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    token_file.write_text(json.dumps(TOKENS), encoding="utf-8")
    with http_server(tmp_path, "--tokens", str(token_file)) as (url, traces):
        async with httpx.AsyncClient() as raw:
            anonymous = await raw.post(url, json=_init_body(), headers=_HEADERS)
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            wrong = await raw.post(url, json=_init_body(), headers={**_HEADERS, "Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await raw.post(
                url, json=_init_body(), headers={**_HEADERS, "Authorization": "Bearer tok-acme-0123456789abcdef"}
            )
            assert ok.status_code == 200

        for token in TOKENS:
            for mode in ("auto", "legacy"):
                http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
                async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:  # type: ignore[arg-type]
                    out = _out(await client.call_tool("request_context", {"section": "billing/refunds"}))
                    assert out["section"] == "billing/refunds"
                    assert (
                        _out(await client.call_tool("request_context", {"section": "billing/refunds"}))["outcome"]
                        == "hit"
                    )
    store = ph.TraceStore(traces)
    recorded = {t.session: t for tenant in store.tenants() for t in store.load(tenant)}
    # each tenant's sessions (and queries) in a file of its own, none in the default tenant's
    assert store.tenants() == ["acme", "globex"] and not traces.exists()
    assert {t.tenant for t in recorded.values()} == {"acme", "globex"}
    # sessions are per client, not per tenant: the legacy client by its MCP session id, the modern
    # (stateless) one by its token's client key; neither is named after the tenant
    clients = {client_key(hashlib.sha256(token.encode()).digest()) for token in TOKENS}
    assert {s for s in recorded if s.startswith("principal:")} == {f"principal:{c}" for c in clients}
    assert sum(s.startswith("mcp:") for s in recorded) == len(TOKENS) and len(recorded) == 2 * len(TOKENS)
    for trace in recorded.values():
        assert [c.key for turn in trace.turns for c in turn.calls] == ["billing/refunds"] * 2


async def _modern_call(raw: httpx.AsyncClient, url: str, method: str, name: str, args: dict[str, str]) -> Any:
    """One 2026-07-28 request sent as raw JSON (``json.dumps`` writes a lone surrogate as ``\\ud800``,
    which the SDK's own client refuses to send and the server's stdlib JSON parser accepts)."""
    reply = await post_request(raw, url, method, {"name": name, "arguments": args})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_a_lone_surrogate_from_a_client_is_answered_and_recorded_as_utf8(tmp_path: Path) -> None:
    """JSON's ``"\\ud800"`` escape reaches the tool as a lone surrogate; the server answers, and the
    query is kept with U+FFFD in its place, so the trace line is UTF-8 (it was not) and loads back."""
    with http_server(tmp_path) as (url, traces):
        async with httpx.AsyncClient() as raw:
            call = await _modern_call(raw, url, "tools/call", "request_context", {"query": "refund \ud800 policy"})
            assert call["result"]["structuredContent"]["section"] == "billing/refunds"
            prompt = await _modern_call(
                raw, url, "prompts/get", "compiled_context", {"task": "billing\udc80", "query": "refund \ud800"}
            )
            assert "refund \ufffd" in prompt["result"]["messages"][0]["content"]["text"]  # was an error
    data = traces.read_bytes()
    data.decode("utf-8")  # strict: held the bytes ED A0 80 before
    recorded = ph.read_traces(traces)
    queries = [turn.query for t in recorded for turn in t.turns]
    assert "refund \ufffd policy" in queries and "refund \ufffd" in queries
    assert {t.task.type for t in recorded} >= {"billing\ufffd"}


async def test_tokens_from_the_environment(tmp_path: Path) -> None:
    env = child_env(tmp_path, PREHYDRATE_TOKENS="tok-env-0123456789abcdef=envco")
    with http_server(tmp_path, env=env) as (url, _):
        async with httpx.AsyncClient() as raw:
            assert (await raw.post(url, json=_init_body(), headers=_HEADERS)).status_code == 401
        http = create_mcp_http_client(headers={"Authorization": "Bearer tok-env-0123456789abcdef"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            assert _out(await client.call_tool("request_context", {"section": "billing/plans"}))["section"]


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """Run `prehydrate serve ARGS` in-process (argument checks fail before anything is served)."""
    monkeypatch.setenv("PREHYDRATE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREHYDRATE_TOKENS", raising=False)
    result = CliRunner().invoke(app, ["serve", *args])
    return result.exit_code, " ".join(result.stderr.split())  # rich wraps long lines


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_refuses_remote_http_without_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    code, err = _cli(tmp_path, monkeypatch, "--transport", "http", "--host", host, "--port", "9")
    assert code == 2
    assert "refusing to serve without auth" in err and "--allow-remote" in err


def test_tokens_on_stdio_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "tokens.json"
    token_file.write_text(json.dumps(TOKENS), encoding="utf-8")
    code, err = _cli(tmp_path, monkeypatch, "--tokens", str(token_file))
    assert code == 2
    assert "--tokens applies to --transport http only" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["tok-acme-0123456789abcdef"]', "expected a JSON object"),
        ('{"short": "acme"}', "at least 16 characters"),
        ('{"tok-acme-0123456789abcdef": ""}', "non-empty tenant"),
    ],
)
def test_malformed_token_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    token_file = tmp_path / "tokens.json"
    token_file.write_text(content, encoding="utf-8")
    code, err = _cli(tmp_path, monkeypatch, "--transport", "http", "--tokens", str(token_file))
    assert code == 2
    assert message in err and "0123456789abcdef" not in err  # the error never echoes a token
