"""An independent implementation: the TypeScript SDK calls `request_context` over stdio.

The client lives in tests/mcp_server/ts_client (package.json pins the SDK). Install it once with
``npm install --prefix tests/mcp_server/ts_client`` (node 20+); without it this test skips and says so
(and fails under ``PREHYDRATE_REQUIRE_ALL=1``, which CI sets after installing it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import require

from .conftest import child_env, serve_argv

HERE = Path(__file__).parent / "ts_client"
INSTALL = "npm install --prefix tests/mcp_server/ts_client"


def _run_ts_client(tmp_path: Path, *serve_args: str, **env: str) -> dict[str, Any]:
    node = shutil.which("node")
    require(node, "node (20+) is not installed; the TypeScript MCP client test needs it")
    installed = (HERE / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()
    require(installed, f"the TypeScript MCP client is not installed: run `{INSTALL}`")
    assert node is not None
    argv = serve_argv("--traces", str(tmp_path / "traces.jsonl"), *serve_args)
    proc = subprocess.run(
        [node, str(HERE / "client.mjs"), *argv],
        env=child_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_typescript_sdk_client_over_stdio(tmp_path: Path) -> None:
    import prehydrate as ph

    out = _run_ts_client(tmp_path)
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["@modelcontextprotocol/sdk"]
    installed = json.loads((HERE / "node_modules/@modelcontextprotocol/sdk/package.json").read_text())["version"]
    assert installed == pinned

    assert out["protocolVersion"] == "2025-11-25"  # the TS SDK speaks the handshake era
    assert out["server"]["name"] == "prehydrate"
    tool = out["tool"]
    assert tool["annotations"]["readOnlyHint"] is True and tool["annotations"]["idempotentHint"] is True
    assert set(tool["inputSchema"]["properties"]) == {"section", "query", "since_version"}
    assert {"section", "title", "content", "outcome", "waited_ms", "version"} <= set(tool["outputSchema"]["properties"])

    calls = out["calls"]
    ids = out["catalogIds"]
    for name in ("first", "second", "secondAgain", "query", "afterErrors", "metaSession"):
        assert calls[name]["isError"] is False, (name, calls[name]["text"])
    assert calls["first"]["structured"]["section"] == ids[0]
    assert calls["second"]["structured"]["outcome"] in ("hit", "inflight")  # predicted after the first call
    assert calls["secondAgain"]["structured"]["outcome"] == "hit"
    assert calls["secondAgain"]["structured"]["content"] == calls["second"]["structured"]["content"]
    assert "Did you mean 'billing/refunds'" in calls["unknown"]["text"]
    assert "not both" in calls["both"]["text"]
    assert "neither" in calls["neither"]["text"]
    assert "not file paths" in calls["traversal"]["text"]
    assert "too long" in calls["huge"]["text"]
    for name in ("unknown", "both", "neither", "traversal", "huge"):
        assert calls[name]["isError"] is True and calls[name]["structured"] is None

    # the connection's session and the explicit `_meta` session were both recorded at shutdown
    traces = {t.session: t for t in ph.read_traces(tmp_path / "traces.jsonl")}
    assert "ts-explicit" in traces
    (conn,) = [t for s, t in traces.items() if s.startswith("conn-")]
    assert [c.key for turn in conn.turns for c in turn.calls][:3] == [ids[0], ids[1], ids[1]]


def test_typescript_sdk_client_is_told_of_a_file_edit(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    guide = root / "guide.md"
    guide.write_text("# Guide\n\nThe first version.\n")
    (root / "other.md").write_text("# Other\n\nUnchanged.\n")
    uri = "prehydrate://sections/guide"
    out = _run_ts_client(tmp_path, str(root), PREHYDRATE_TS_EDIT_FILE=str(guide), PREHYDRATE_TS_EDIT_URI=uri)
    assert out["resourcesCapability"]["subscribe"] is True and out["resourcesCapability"]["listChanged"] is True
    assert set(out["updated"]) == {uri}, out  # only the subscribed section
    assert out["latencyMs"] is not None
    assert "TypeScript client wrote" in out["contentAfter"]
