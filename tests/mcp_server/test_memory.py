"""The MCP server through the SDK's in-memory `Client`, in both protocol eras.

`mode="auto"` is the 2026-07-28 era over the direct dispatcher; `mode="legacy"` runs the real
JSON-RPC loop with the `initialize` handshake. Clients are entered inside each test body (anyio
scopes must be entered and exited by the same task).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

import prehydrate as ph
import prehydrate.mcp_server as pm
from prehydrate.mcp_server import ServerSettings, SessionPolicy, create_server, session_manager

from .conftest import event_barrier

MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


def _out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error_text(result: CallToolResult) -> str:
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


def test_all_is_sorted_and_complete() -> None:
    public = {n for n in dir(pm) if not n.startswith("_")} - {"annotations"}
    assert pm.__all__ == sorted(pm.__all__)
    assert set(pm.__all__) == public


@MODES
async def test_tool_is_described_read_only_and_structured(engine: ph.Engine, mode: str) -> None:
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["request_context"]
        tool = tools[0]
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.description is not None and "Call this whenever" in tool.description
        assert set(tool.input_schema["properties"]) == {"section", "query", "since_version"}
        assert tool.output_schema is not None
        assert {"section", "title", "content", "outcome", "waited_ms", "version"} <= set(
            tool.output_schema["properties"]
        )


@MODES
async def test_predicted_section_is_a_hit_in_the_same_turn(engine: ph.Engine, mode: str) -> None:
    first = engine.catalog.ids[0]

    def prefetched_other(event: object) -> bool:
        return isinstance(event, ph.PrefetchFinished) and event.status == "ok" and event.section_id != first

    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        prefetched: list[str] = []
        unsubscribe = engine.subscribe(
            lambda e: prefetched.append(e.section_id) if prefetched_other(e) else None  # type: ignore[attr-defined]
        )
        async with event_barrier(engine, prefetched_other) as ready:
            r1 = _out(await client.call_tool("request_context", {"section": first}))
            await asyncio.wait_for(ready.wait(), 30)  # the model "thinks"; the server prefetches
        unsubscribe()
        assert r1["section"] == first and r1["outcome"] in ("hit", "inflight", "miss")
        predicted = prefetched[0]
        r2 = _out(await client.call_tool("request_context", {"section": predicted}))
        assert r2["outcome"] == "hit"
        assert r2["section"] == predicted
        assert r2["content"] and r2["title"] == engine.catalog.get(predicted).title
        assert r2["version"] == engine.catalog.get(predicted).version
        # both calls ran in one turn, which is still open (the idle gap has not passed)
        session = next(iter(engine.open_sessions))
        assert session.current is not None
        assert [c.key for c in session.current.calls] == [first, predicted]


@MODES
async def test_query_resolves_to_a_section(engine: ph.Engine, mode: str) -> None:
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        out = _out(await client.call_tool("request_context", {"query": "refund policy"}))
        assert out["section"].startswith(("billing/refunds", "refunds/"))


@MODES
async def test_actionable_errors_and_the_server_keeps_answering(engine: ph.Engine, mode: str) -> None:
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        unknown = _error_text(await client.call_tool("request_context", {"section": "billing/refund"}))
        assert "Unknown section 'billing/refund'" in unknown and "'billing/refunds'" in unknown

        both = _error_text(await client.call_tool("request_context", {"section": "billing/plans", "query": "x"}))
        assert "exactly one" in both and "not both" in both

        neither = _error_text(await client.call_tool("request_context", {}))
        assert "exactly one" in neither and "neither" in neither

        for bad in ("../../etc/passwd", "/etc/passwd", "billing/../../secret", "C:\\Windows"):
            traversal = _error_text(await client.call_tool("request_context", {"section": bad}))
            assert "not allowed" in traversal and "not file paths" in traversal

        huge = _error_text(await client.call_tool("request_context", {"query": "refund " * 150_000}))
        assert "too long" in huge and "1050000 characters" in huge

        nomatch = _error_text(await client.call_tool("request_context", {"query": "qqqzzzxxy"}))
        assert "No section matches" in nomatch

        wrong_type = await client.call_tool("request_context", {"section": 42})
        assert wrong_type.is_error

        ok = _out(await client.call_tool("request_context", {"section": "billing/plans"}))
        assert ok["section"] == "billing/plans"


async def test_source_failure_is_a_tool_error(tmp_path: Path) -> None:
    def broken(section_id: str, scope: ph.Scope) -> ph.Hydrated:
        raise OSError("disk on fire")

    engine = ph.Engine(sources=[ph.CallableSource(broken, ["a/one", "a/two"], speculative=False)])
    async with engine, Client(create_server(engine)) as client:
        text = _error_text(await client.call_tool("request_context", {"section": "a/one"}))
        assert "Could not load section 'a/one'" in text and "disk on fire" in text
        again = _error_text(await client.call_tool("request_context", {"section": "a/two"}))
        assert "a/two" in again


@MODES
async def test_resources_serve_catalog_and_sections(engine: ph.Engine, mode: str) -> None:
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["prehydrate://sections/{+id}"]

        catalog = await client.read_resource("prehydrate://sections")
        assert catalog.contents[0].mime_type == "application/json"
        stubs = json.loads(catalog.contents[0].text)  # type: ignore[union-attr]
        assert [s["id"] for s in stubs] == engine.catalog.ids
        assert {"id", "title", "summary", "tokens", "version", "uri"} <= set(stubs[0])

        sid = "billing/refunds"
        section = await client.read_resource(f"prehydrate://sections/{sid}")
        tool = _out(await client.call_tool("request_context", {"section": sid}))
        assert section.contents[0].text == tool["content"]  # type: ignore[union-attr]
        assert tool["outcome"] == "hit"  # the resource read warmed the same cache

        with pytest.raises(MCPError, match="unknown section 'billing/nope'"):
            await client.read_resource("prehydrate://sections/billing/nope")
        with pytest.raises(MCPError):
            await client.read_resource("prehydrate://sections/../secret")
        with pytest.raises(MCPError):
            await client.read_resource("prehydrate://sections/%2E%2E/secret")


@MODES
async def test_compiled_context_prompt_starts_a_prefetching_turn(engine: ph.Engine, mode: str) -> None:
    started: list[ph.TurnStarted] = []
    engine.subscribe(lambda e: started.append(e) if isinstance(e, ph.TurnStarted) else None)
    server = create_server(engine)
    async with engine, Client(server, mode=mode) as client:  # type: ignore[arg-type]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["compiled_context"]
        got = await client.get_prompt("compiled_context", {"task": "billing", "query": "How do refunds work?"})
        text = got.messages[0].content.text  # type: ignore[union-attr]
        expected = ph.compile_context(sections=engine.catalog.sections, task="billing", query="How do refunds work?")
        assert text == expected.text  # byte-stable: exactly the compiler's prefix
        assert len(started) == 1
        assert started[0].query == "How do refunds work?" and started[0].task_type == "billing"
        assert started[0].candidates  # predictions were made and prefetches launched

        # a second prompt bails out of the first turn and opens another
        await client.get_prompt("compiled_context", {"task": "billing", "query": "And invoices?"})
        assert len(started) == 2
        assert session_manager(server).reports[-1].turn_id == started[0].turn_id


@MODES
async def test_the_json_rpc_id_is_not_passed_as_a_tool_call_id(engine: ph.Engine, mode: str) -> None:
    """MCP does not carry the model's tool call id; the JSON-RPC id (repeating per connection) is not one."""
    lookups: list[ph.Lookup] = []
    engine.subscribe(lambda e: lookups.append(e) if isinstance(e, ph.Lookup) else None)
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        await client.call_tool("request_context", {"section": "billing/plans"})
        await client.call_tool("request_context", {"section": "billing/plans"})
    assert [lk.tool_call_id for lk in lookups] == [None, None]


async def test_meta_session_key_separates_sessions_and_is_recorded(tmp_path: Path, engine: ph.Engine) -> None:
    server = create_server(engine)
    async with engine:
        async with Client(server) as client:
            for who, sid in (("alice", "billing/plans"), ("bob", "billing/invoices"), ("alice", "billing/taxes")):
                await client.call_tool("request_context", {"section": sid}, meta={"prehydrate/session": who})
            bad = await client.call_tool(
                "request_context", {"section": "billing/plans"}, meta={"prehydrate/session": "x" * 500}
            )
            assert "prehydrate/session" in _error_text(bad)
            assert len(session_manager(server)) == 2
        # the client left: the lifespan bailed out of the open turns and recorded both sessions
        traces = {t.session: t for t in ph.read_traces(tmp_path / "traces.jsonl")}
    assert set(traces) == {"alice", "bob"}
    assert [c.key for turn in traces["alice"].turns for c in turn.calls] == ["billing/plans", "billing/taxes"]
    assert [c.key for turn in traces["bob"].turns for c in turn.calls] == ["billing/invoices"]


async def test_no_record_keeps_the_trace_store_untouched(tmp_path: Path, engine: ph.Engine) -> None:
    settings = ServerSettings(sessions=SessionPolicy(record=False))
    async with engine, Client(create_server(engine, settings)) as client:
        await client.call_tool("request_context", {"section": "billing/plans"})
    assert not (tmp_path / "traces.jsonl").exists()


async def test_idle_gap_bails_out_and_the_next_call_starts_a_new_turn(engine: ph.Engine) -> None:
    settings = ServerSettings(sessions=SessionPolicy(idle_gap_s=0.05))
    server = create_server(engine, settings)

    def ended(event: object) -> bool:
        return isinstance(event, ph.TurnEnded)

    async with engine, Client(server) as client:
        async with event_barrier(engine, ended) as bailout:
            await client.call_tool("request_context", {"section": "billing/plans"})
            await asyncio.wait_for(bailout.wait(), 30)  # no further call: the idle gap ends the turn
        report = session_manager(server).reports[-1]
        assert report.calls == 1
        assert report.prefetched >= 1 and report.cancelled + report.wasted + report.used == report.prefetched
        session = next(iter(engine.open_sessions), None)
        assert session is None or session.current is None  # nothing left open or in flight
        await client.call_tool("request_context", {"section": "billing/invoices"})
        session = next(iter(engine.open_sessions))
        assert session.current is not None and session.current.turn_id != report.turn_id
        assert [c.key for c in session.current.calls] == ["billing/invoices"]


async def test_concurrent_calls_share_one_turn(engine: ph.Engine) -> None:
    async with engine, Client(create_server(engine), mode="legacy") as client:
        ids = engine.catalog.ids[:6]
        results = await asyncio.gather(*(client.call_tool("request_context", {"section": sid}) for sid in ids))
        assert [_out(r)["section"] for r in results] == ids
        (session,) = engine.open_sessions
        assert session.current is not None
        assert sorted(c.key for c in session.current.calls) == sorted(ids)


async def test_a_failing_re_prediction_never_fails_a_call(caplog: pytest.LogCaptureFixture) -> None:
    class FailsAfterFirstCall:
        def predict(self, state: ph.PredictionState, k: int) -> list[ph.Candidate]:
            if state.calls:
                raise RuntimeError("predictor bug")
            return []

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], predictor=FailsAfterFirstCall())
    async with engine, Client(create_server(engine)) as client:
        for sid in ("billing/plans", "billing/taxes", "billing/plans"):
            assert _out(await client.call_tool("request_context", {"section": sid}))["section"] == sid
    assert "re-prediction failed" in caplog.text
