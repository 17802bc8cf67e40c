"""A real `prehydrate serve` subprocess over stdio, driven by the SDK client in both protocol eras."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

import prehydrate as ph

from .conftest import child_env, serve_argv

MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


def _params(tmp_path: Path, *args: str) -> StdioServerParameters:
    argv = serve_argv("--traces", str(tmp_path / "traces.jsonl"), *args)
    return StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(tmp_path))


def _out(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error(result: CallToolResult) -> str:
    assert result.is_error
    return str(result.content[0].text)  # type: ignore[union-attr]


@MODES
async def test_stdio_serves_hits_errors_and_records_the_session(tmp_path: Path, mode: str) -> None:
    catalog = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog
    ids = catalog.ids
    async with Client(_params(tmp_path), mode=mode) as client:  # type: ignore[arg-type]
        assert [t.name for t in (await client.list_tools()).tools] == ["request_context"]

        first = _out(await client.call_tool("request_context", {"section": ids[0]}))
        assert first["section"] == ids[0]
        assert first["outcome"] in ("hit", "inflight")  # the turn's start predicted and prefetched it
        predicted = _out(await client.call_tool("request_context", {"section": ids[1]}))
        assert predicted["outcome"] in ("hit", "inflight")  # predicted after the first call
        again = _out(await client.call_tool("request_context", {"section": ids[1]}))
        assert again["outcome"] == "hit" and again["content"] == predicted["content"]

        assert "Did you mean" in _error(await client.call_tool("request_context", {"section": "billing/refund"}))
        assert "not both" in _error(await client.call_tool("request_context", {"section": ids[0], "query": "x"}))
        assert "neither" in _error(await client.call_tool("request_context", {}))
        assert "not file paths" in _error(await client.call_tool("request_context", {"section": "../../etc/passwd"}))
        huge = _error(await client.call_tool("request_context", {"query": "q" * (1 << 20)}))
        assert "too long" in huge and str(1 << 20) in huge

        stubs = json.loads((await client.read_resource("prehydrate://sections")).contents[0].text)  # type: ignore[union-attr]
        assert [s["id"] for s in stubs] == ids
        prompt = await client.get_prompt("compiled_context", {"task": "billing", "query": "refunds?"})
        assert "request_context" in prompt.messages[0].content.text  # type: ignore[union-attr]

        after = _out(await client.call_tool("request_context", {"query": "refund policy"}))
        assert after["content"]

    # stdin closed: the server bailed out and recorded the session before exiting
    traces = ph.read_traces(tmp_path / "traces.jsonl")
    assert len(traces) == 1
    keys = [c.key for turn in traces[0].turns for c in turn.calls]
    assert keys[:3] == [ids[0], ids[1], ids[1]]
    assert traces[0].turns[-1].query == "refunds?"  # the prompt opened the last turn
    assert traces[0].session.startswith("conn-")


async def test_stdio_no_record_and_cache_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    async with Client(_params(tmp_path, "--no-record", "--cache-dir", str(cache))) as client:
        assert _out(await client.call_tool("request_context", {"section": "billing/plans"}))["section"]
    assert not (tmp_path / "traces.jsonl").exists()
    assert any(cache.iterdir())  # the disk tier was written

    # a second process starts with the disk tier warm: the first request is a hit
    async with Client(_params(tmp_path, "--no-record", "--cache-dir", str(cache))) as client:
        out = _out(await client.call_tool("request_context", {"section": "billing/plans"}))
        assert out["outcome"] == "hit"


async def test_serve_serves_given_paths(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nIntro.\n\n## Setup\n\nRun the installer.\n", encoding="utf-8")
    sections = tmp_path / "extra.jsonl"
    sections.write_text(json.dumps({"id": "x/one", "title": "One", "text": "first", "tags": []}) + "\n")
    async with Client(_params(tmp_path, str(docs), str(sections))) as client:
        stubs = json.loads((await client.read_resource("prehydrate://sections")).contents[0].text)  # type: ignore[union-attr]
        ids = [s["id"] for s in stubs]
        assert "x/one" in ids and any(i.startswith("guide") for i in ids)
        assert _out(await client.call_tool("request_context", {"section": "x/one"}))["content"] == "first"


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for the client transport to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_sigterm_on_stdio_bails_out_and_records(tmp_path: Path) -> None:
    """A host that stops the server with SIGTERM still gets the session recorded."""
    pidfile = tmp_path / "server.pid"
    boot = f"import os; open({str(pidfile)!r}, 'w').write(str(os.getpid())); from prehydrate.cli import main; main()"
    argv = [sys.executable, "-c", boot, "serve", "--traces", str(tmp_path / "traces.jsonl")]
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(tmp_path))
    async with Client(params, mode="legacy") as client:
        await client.call_tool("request_context", {"section": "billing/plans"})
        await client.call_tool("request_context", {"section": "billing/taxes"})
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):  # the process exits once the bailout ran and the trace is written
            await asyncio.sleep(0.05)
            if _exited(pid):
                break
        else:
            raise AssertionError("the server did not exit after SIGTERM")
    (trace,) = ph.read_traces(tmp_path / "traces.jsonl")
    assert [c.key for turn in trace.turns for c in turn.calls] == ["billing/plans", "billing/taxes"]
