"""``prehydrate mcp-config``: the printed block starts a working server the way a host does.

A host runs the command from a folder of its choosing (here ``/``) with its own environment: no
virtual environment activated, nothing of ours on ``PATH``. The block must still start the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prehydrate.cli._mcp_config_cmd import Host, config_path, merge_server

CLI = [sys.executable, "-c", "from prehydrate.cli import main; main()", "mcp-config"]


def mcp_config(*args: str, cwd: Path | str | None = None, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)} if home else None
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "oncall.md").write_text("# On call\n\n## Escalations\n\nPage the lead for refunds over $1,000.\n")
    (docs / "config.json").write_text('{"retries": 3}\n')
    (docs / "config.yaml").write_text("retries: 3\n")
    return docs


async def test_printed_block_starts_a_server_from_root_without_the_venv(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    docs = write_docs(tmp_path)
    out = mcp_config("docs", cwd=tmp_path)  # a relative path: the block must carry it absolute
    assert out.returncode == 0, out.stderr
    entry = json.loads(out.stdout)["mcpServers"]["prehydrate"]
    assert os.path.isabs(entry["command"]) and str(docs) in entry["args"]
    host_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}  # no venv, no PYTHONPATH
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=host_env, cwd="/")
    async with Client(params) as client:
        result = await client.call_tool("request_context", {"section": "oncall#escalations"})
        assert not result.is_error and result.structured_content is not None
        assert "$1,000" in result.structured_content["content"]
        result = await client.call_tool("request_context", {"section": "config.yaml"})
        assert not result.is_error and result.structured_content["content"] == "retries: 3\n"  # type: ignore[index]


def test_write_merges_next_to_other_servers_and_keeps_a_backup(tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    before = {"mcpServers": {"other": {"command": "/bin/other", "args": []}}, "globalShortcut": "Ctrl+Space"}
    config.write_text(json.dumps(before))
    out = mcp_config(str(tmp_path), "--write", "claude-desktop", "--config", str(config))
    assert out.returncode == 0, out.stderr
    after = json.loads(config.read_text())
    assert after["mcpServers"]["other"] == before["mcpServers"]["other"]  # not clobbered
    assert after["globalShortcut"] == "Ctrl+Space"
    assert after["mcpServers"]["prehydrate"]["args"][-1] == str(tmp_path)
    assert json.loads((tmp_path / "claude_desktop_config.json.bak").read_text()) == before
    assert "claude_desktop_config.json.bak" in out.stderr
    again = mcp_config(str(tmp_path / "x"), "--write", "claude-desktop", "--config", str(config))
    assert again.returncode == 2 and "no such file" in again.stderr  # a typo in a path writes nothing
    assert json.loads(config.read_text()) == after


@pytest.mark.parametrize("text", ["{ // a comment\n}", "[1, 2]", '{"mcpServers": []}'])
def test_write_leaves_a_file_it_cannot_merge_untouched(tmp_path: Path, text: str) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(text)
    out = mcp_config("--write", "cursor", "--config", str(config))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert str(config) in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert config.read_text() == text and not (tmp_path / "mcp.json.bak").exists()


def test_each_host_gets_its_file_and_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    home = tmp_path / "home"
    mac = config_path(Host.claude_desktop, home=home, platform="darwin")
    assert mac == home / "Library/Application Support/Claude/claude_desktop_config.json"
    linux = config_path(Host.claude_desktop, home=home, platform="linux")
    assert linux == home / ".config/Claude/claude_desktop_config.json"
    assert config_path(Host.cursor, home=home) == home / ".cursor/mcp.json"
    assert config_path(Host.claude_code, home=home) == tmp_path / ".mcp.json"
    assert config_path(Host.vscode, home=home) == tmp_path / ".vscode/mcp.json"
    shapes: dict[Host, Any] = {}
    for host in Host:
        target = tmp_path / f"{host.value}.json"
        assert merge_server(target, host, "prehydrate", {"command": "/x"}) is None  # a new file: no backup
        shapes[host] = json.loads(target.read_text())
    assert shapes[Host.vscode] == {"servers": {"prehydrate": {"command": "/x"}}}
    assert shapes[Host.cursor] == {"mcpServers": {"prehydrate": {"command": "/x"}}}
    vscode = json.loads(mcp_config("--for", "vscode").stdout)["servers"]["prehydrate"]
    assert vscode["type"] == "stdio" and vscode["args"][:3] == ["-m", "prehydrate", "serve"]
