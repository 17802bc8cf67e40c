"""``prehydrate serve`` on a real, messy folder: what it says at start, and that it serves anyway.

The folder holds what real folders hold: two files with one stem, a symlink loop, a file that is
not UTF-8 and one the server may not read; next to it an empty folder and a single file passed
as a path. The server must start, say on stderr what it serves and what it skipped, and answer a
real MCP client over stdio.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import require

from .conftest import child_env, serve_argv


def messy_folder(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nStart with the install.\n\n## Install\n\npip install prehydrate here.\n")
    (docs / "config.json").write_text('{"retries": 3}\n')
    (docs / "config.yaml").write_text("retries: 3\n")
    (docs / "loop.md").symlink_to("loop.md")
    (docs / "latin1.txt").write_bytes(b"caf\xe9 au lait\n")
    secret = docs / "secret.md"
    secret.write_text("# Secret\n\nnobody may read this\n")
    secret.chmod(0)
    return docs


def unprivileged(argv: list[str]) -> list[str]:
    """Root reads any file whatever its mode: drop the capabilities that allow it, as in test_faults."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    require(setpriv, "running the suite as root needs util-linux setpriv to make a file unreadable")
    return [str(setpriv), "--bounding-set=-dac_override,-dac_read_search", *argv]


async def test_serve_reports_what_it_serves_and_survives_a_messy_folder(tmp_path: Path) -> None:
    docs = messy_folder(tmp_path)
    (empty := tmp_path / "empty").mkdir()
    single = tmp_path / "NOTES.md"
    single.write_text("# Notes\n\nA single file passed as a path.\n")
    argv = unprivileged(serve_argv(str(docs), str(empty), str(single), "--traces", str(tmp_path / "t.jsonl")))
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(tmp_path), cwd="/")
    log_path = tmp_path / "stderr.txt"
    with log_path.open("w") as log:
        async with Client(stdio_client(params, errlog=log)) as client:
            result = await client.call_tool("request_context", {"section": "config.yaml"})
            assert not result.is_error and result.structured_content is not None
            assert result.structured_content["content"] == "retries: 3\n"
            notes = await client.call_tool("request_context", {"section": "NOTES"})
            assert not notes.is_error, notes.content
    stderr = log_path.read_text()
    for skipped in ("loop.md", "latin1.txt", "secret.md"):
        assert f"skipped {skipped}" in stderr, stderr
    assert f"no sections found in {empty}" in stderr
    assert f"serving 5 sections from {docs}, {empty}, {single}" in stderr  # guide x2, config x2, NOTES
    assert f"recording sessions in {tmp_path / 't.jsonl'}" in stderr
    assert "no recorded sessions yet" in stderr
    assert "Traceback" not in stderr
