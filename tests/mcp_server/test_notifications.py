"""Section changes reach subscribed MCP clients: handshake-era ``resources/subscribe`` and 2026-07-28
``subscriptions/listen``, in memory and over a real ``prehydrate serve DIR`` stdio subprocess.

Latency is checked against a generous bound only where the test needs an upper limit to finish;
the 1 s goal is measured in tests/benchmarks/live_freshness.py.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import ResourceListChangedNotification, ResourceUpdatedNotification

import prehydrate as ph
from prehydrate.mcp_server import create_server

from .conftest import child_env, serve_argv

WAIT_S = 10.0
"""Upper bound for a notification to arrive in a test (the 1 s goal is a benchmark's, not a test's)."""


def _tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "guide.md").write_text("# Guide\n\nThe first version of the guide.\n")
    (root / "a#b.md").write_text("# Odd name\n\nA file whose id needs percent-encoding in a URI.\n")
    (root / "other.md").write_text("# Other\n\nUnrelated text that is not changed.\n")
    return root


class Inbox:
    """Notifications a legacy client received, with the monotonic time each arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self.changed = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, (ResourceUpdatedNotification, ResourceListChangedNotification)):
            self.items.append((time.monotonic(), message))
            self.changed.set()

    def updated(self) -> list[str]:
        return [m.params.uri for _, m in self.items if isinstance(m, ResourceUpdatedNotification)]

    def list_changed(self) -> int:
        return sum(isinstance(m, ResourceListChangedNotification) for _, m in self.items)

    async def wait_for(self, predicate: Any) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def _subscribe(client: Client, uri: str) -> None:
    with warnings.catch_warnings():  # deprecated for 2026-07-28, the era this test is not about
        warnings.simplefilter("ignore")
        await client.subscribe_resource(uri)


async def _unsubscribe(client: Client, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await client.unsubscribe_resource(uri)


async def test_legacy_subscribe_in_memory_gets_updated_for_subscribed_sections_only(tmp_path: Path) -> None:
    root = _tree(tmp_path / "docs")
    inbox = Inbox()
    async with ph.Engine(sources=[ph.DirectorySource(root)]) as engine:
        server = create_server(engine)
        async with Client(server, mode="legacy", message_handler=inbox) as client:
            caps = client.server_capabilities.resources
            assert caps is not None and caps.subscribe and caps.list_changed
            await _subscribe(client, "prehydrate://sections/guide")
            await _subscribe(client, "prehydrate://sections/a%23b")
            await _subscribe(client, "prehydrate://sections/other")
            await _unsubscribe(client, "prehydrate://sections/other")
            (root / "guide.md").write_text("# Guide\n\nThe second version of the guide.\n")
            (root / "a#b.md").unlink()
            await inbox.wait_for(
                lambda: {"prehydrate://sections/guide", "prehydrate://sections/a%23b"} <= set(inbox.updated())
            )
            await inbox.wait_for(lambda: inbox.list_changed() >= 1)  # a section was removed
            assert "prehydrate://sections/other" not in inbox.updated()
            assert "prehydrate://sections" not in inbox.updated()  # not subscribed
            r = await client.read_resource("prehydrate://sections/guide")
            assert "second version" in r.contents[0].text  # type: ignore[union-attr]


async def test_modern_listen_in_memory_gets_updated_and_list_changed(tmp_path: Path) -> None:
    root = _tree(tmp_path / "docs")
    async with ph.Engine(sources=[ph.DirectorySource(root)]) as engine:
        server = create_server(engine)
        async with Client(server) as client:
            assert client.protocol_version == "2026-07-28"
            caps = client.server_capabilities.resources
            assert caps is not None and caps.subscribe and caps.list_changed  # served through listen
            got: list[object] = []
            async with client.listen(
                resources_list_changed=True, resource_subscriptions=["prehydrate://sections/guide"]
            ) as sub:

                async def collect() -> None:
                    async for event in sub:
                        got.append(event)
                        if any(isinstance(e, ResourcesListChanged) for e in got):
                            return

                (root / "guide.md").write_text("# Guide\n\nThe second version of the guide.\n")
                await asyncio.sleep(0)
                (root / "new.md").write_text("# New\n\nA section that was not there.\n")
                async with asyncio.timeout(WAIT_S):
                    await collect()
            assert ResourceUpdated("prehydrate://sections/guide") in got
            assert ResourceUpdated("prehydrate://sections/other") not in got  # not asked for


def _params(tmp_path: Path, *args: str) -> StdioServerParameters:
    argv = serve_argv("--traces", str(tmp_path / "traces.jsonl"), *args)
    return StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(tmp_path))


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_subscriber_is_told_of_a_file_edit(tmp_path: Path, mode: str) -> None:
    root = _tree(tmp_path / "docs")
    uri = "prehydrate://sections/guide"
    inbox = Inbox()
    async with Client(_params(tmp_path, str(root)), mode=mode, message_handler=inbox) as client:  # type: ignore[arg-type]
        before = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
        assert "first version" in before
        if mode == "legacy":
            await _subscribe(client, uri)
            (root / "guide.md").write_text("# Guide\n\nThe second version of the guide.\n")
            await inbox.wait_for(lambda: uri in inbox.updated())
        else:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                (root / "guide.md").write_text("# Guide\n\nThe second version of the guide.\n")
                async with asyncio.timeout(WAIT_S):
                    event = await anext(aiter(sub))
                assert event == ResourceUpdated(uri)
        after = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
        assert "second version" in after


async def test_request_context_since_version_answers_with_a_delta(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    long = "".join(f"Rule {i}: a line of the policy that stays as it is.\n" for i in range(50))
    (root / "policy.txt").write_text(long)
    async with ph.Engine(sources=[ph.DirectorySource(root)]) as engine:
        server = create_server(engine)
        async with Client(server) as client:
            first = (await client.call_tool("request_context", {"section": "policy"})).structured_content
            assert first is not None and first["delta"] is False and first["base_version"] is None
            async with client.listen(resource_subscriptions=["prehydrate://sections/policy"]) as sub:
                (root / "policy.txt").write_text(long.replace("Rule 7: a line", "Rule 7: a changed line"))
                async with asyncio.timeout(WAIT_S):
                    await anext(aiter(sub))
            args = {"section": "policy", "since_version": first["version"]}
            again = (await client.call_tool("request_context", args)).structured_content
            assert again is not None and again["delta"] is True and again["base_version"] == first["version"]
            assert "+Rule 7: a changed line" in again["content"] and len(again["content"]) < len(long)
            args["since_version"] = "not-a-version-we-had"
            whole = (await client.call_tool("request_context", args)).structured_content
            assert whole is not None and whole["delta"] is False and "Rule 7: a changed line" in whole["content"]
