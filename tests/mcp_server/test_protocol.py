# ruff: noqa: E501  (the expected messages stay whole, as a user reads them)
"""Protocol hygiene: bad prompt calls, wrong or misspelled tool arguments, completions, setLevel,
and the compiled_context prompt's budget, through a real MCP client (in memory and over stdio)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import INVALID_PARAMS, PromptReference, ResourceTemplateReference, TextContent

import prehydrate as ph
from prehydrate.mcp_server import ServerSettings, create_server
from prehydrate.mcp_server._prompt import DEFAULT_PROMPT_BUDGET_TOKENS

from .conftest import child_env, serve_argv

TEMPLATE = "prehydrate://sections/{+id}"


def sample_engine() -> ph.Engine:
    return ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], policy=ph.PrefetchPolicy(enabled=False))


def text(result: object) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_bad_prompt_calls_are_invalid_params(mode: str) -> None:
    engine = sample_engine()
    async with engine, Client(create_server(engine), mode=mode) as client:  # type: ignore[arg-type]
        cases = [
            ("compiled_contxt", {"task": "t", "query": "q"}, "Unknown prompt 'compiled_contxt'; this server offers 'compiled_context'."),
            ("compiled_context", {"task": "billing"}, "Prompt 'compiled_context' needs the argument(s) `query`."),
            ("compiled_context", {"task": "t", "query": "q", "qurey": "x"}, "Unknown argument `qurey` for prompt 'compiled_context', which takes `task`, `query`. Did you mean `query`?"),
        ]  # fmt: skip
        for name, arguments, message in cases:
            with pytest.raises(MCPError) as info:
                await client.get_prompt(name, arguments)
            assert (info.value.error.code, info.value.error.message) == (INVALID_PARAMS, message)
        ok = await client.get_prompt("compiled_context", {"task": "billing", "query": "refund"})
        assert "billing/refunds" in ok.messages[0].content.text  # type: ignore[union-attr]


async def test_wrong_and_misspelled_tool_arguments_name_the_argument() -> None:
    engine = sample_engine()
    async with engine, Client(create_server(engine)) as client:
        cases = [
            ({"section": 5}, "The argument `section` of request_context must be a string or null, not an integer."),
            ({"query": ["refund"]}, "The argument `query` of request_context must be a string or null, not a list."),
            ({"sect": "billing/refunds"}, "Unknown argument `sect` for request_context, which takes `section`, `query`, `since_version`. Did you mean `section`?"),
        ]  # fmt: skip
        for arguments, message in cases:
            result = await client.call_tool("request_context", arguments)
            assert result.is_error and text(result) == message
            assert "pydantic" not in text(result)
        good = await client.call_tool("request_context", {"section": "billing/refunds"})
        assert not good.is_error


async def test_completion_of_section_ids_and_task_types(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    store.extend(ph.read_traces(ph.sample_traces_path("train"))[:20])
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())], traces=store)
    async with engine, Client(create_server(engine), mode="legacy") as client:
        assert client.server_capabilities is not None and client.server_capabilities.completions is not None
        done = await client.complete(ResourceTemplateReference(type="ref/resource", uri=TEMPLATE), {"name": "id", "value": "billing/r"})
        assert done.completion.values == [i for i in engine.catalog.ids if i.startswith("billing/r")]
        assert done.completion.values and done.completion.total == len(done.completion.values)
        tasks = await client.complete(PromptReference(type="ref/prompt", name="compiled_context"), {"name": "task", "value": ""})
        assert sorted(tasks.completion.values) == sorted({t.task.type for t in store.load() if t.task.type})
        assert client.server_capabilities.logging is not None
        with pytest.warns(MCPDeprecationWarning):  # the client's warning: deprecated in the 2026-07-28 era
            await client.set_logging_level("debug")  # accepted, not "method not found"


async def test_compiled_context_keeps_to_its_budget_and_says_how_to_get_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    lines = [
        {"id": f"area{i % 37}/topic-{i}", "title": f"Topic {i} of area {i % 37}",
         "text": f"Everything about topic {i}: limits, steps and exceptions for case {i}. " * 3}
        for i in range(1500)
    ] + [{"id": "billing/chargebacks", "title": "Chargebacks", "text": "How a chargeback suspends a workspace."}]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    engine = ph.Engine(sources=[ph.JsonlSource(path)], policy=ph.PrefetchPolicy(enabled=False))
    async with engine, Client(create_server(engine)) as client:
        prompt = await client.get_prompt("compiled_context", {"task": "billing", "query": "chargeback suspended"})
    body = prompt.messages[0].content.text  # type: ignore[union-attr]
    full = ph.compile_context(None, sections=engine.catalog.sections, task="billing", query="chargeback suspended")
    assert ph.estimate_tokens(full.text) > 10 * DEFAULT_PROMPT_BUDGET_TOKENS  # without a budget: ~60k tokens
    assert ph.estimate_tokens(body) <= DEFAULT_PROMPT_BUDGET_TOKENS + 300
    assert "[billing/chargebacks]" in body  # the section matching the query is listed first of all
    shown = body.count("\n- [")
    assert f"shows {shown} of the 1501 sections" in body and "prehydrate://sections" in body and "`query`" in body
    unbounded = create_server(engine, ServerSettings(prompt_budget_tokens=None))  # the budget can be lifted
    async with engine, Client(unbounded) as client:
        everything = await client.get_prompt("compiled_context", {"task": "billing", "query": "chargeback suspended"})
    assert everything.messages[0].content.text == full.text  # type: ignore[union-attr]


async def test_compiled_context_of_a_small_catalog_is_unchanged_by_the_budget() -> None:
    engine = sample_engine()
    async with engine, Client(create_server(engine)) as client:
        prompt = await client.get_prompt("compiled_context", {"task": "billing", "query": "refund"})
    full = ph.compile_context(None, sections=engine.catalog.sections, task="billing", query="refund")
    assert prompt.messages[0].content.text == full.text  # type: ignore[union-attr]


async def test_bad_prompt_call_over_stdio_logs_no_traceback(tmp_path: Path) -> None:
    params = StdioServerParameters(command=serve_argv()[0], args=[*serve_argv()[1:], "--traces", str(tmp_path / "t.jsonl")], env=child_env(tmp_path))
    log_path = tmp_path / "stderr.txt"
    with log_path.open("w") as log:
        async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
            with pytest.raises(MCPError) as info:
                await client.get_prompt("nope", {})
            assert info.value.error.code == INVALID_PARAMS
            assert not (await client.call_tool("request_context", {"section": "billing/refunds"})).is_error
    stderr = log_path.read_text()
    assert "Traceback" not in stderr and "serving 52 sections" in stderr
