"""Every ``examples/*.py`` runs offline, as written, in a subprocess (with small arguments where it takes any).

The complete programs shown in docs/concepts.md (Python blocks that end in ``asyncio.run(...)``) run too, and
print what the page says they print.
``examples/claude_desktop_config.json`` starts a real server over stdio, as an MCP host would.

A new example is picked up automatically and runs with no arguments unless it is listed in
``SMALL_ARGS``. Examples with a dedicated test elsewhere are listed in ``TESTED_ELSEWHERE``, and this
module checks that the named test really runs them, so nothing falls through the gap.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

SMALL_ARGS: dict[str, list[str]] = {
    "quickstart.py": ["--train", "50", "--latency-ms", "50"],
}
TESTED_ELSEWHERE: dict[str, str] = {
    "langgraph_agent.py": "tests/integrations/test_example_and_api.py",
}
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "quickstart.py": ["refunds/chargebacks", "hit", "turn: 3 calls", "expected: refunds/request hit"],
}


def _examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in TESTED_ELSEWHERE)


def test_there_is_a_quickstart() -> None:
    assert "quickstart.py" in _examples()


@pytest.mark.parametrize("name", sorted(TESTED_ELSEWHERE))
def test_examples_tested_elsewhere_are_run_there(name: str) -> None:
    assert (EXAMPLES / name).exists()
    assert name in (ROOT / TESTED_ELSEWHERE[name]).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", _examples())
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PREHYDRATE_"))}
    env["PREHYDRATE_HOME"] = str(tmp_path / "home")
    # A proxy pointing nowhere: an example that reaches for the network fails instead of passing.
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *SMALL_ARGS.get(name, [])],
        cwd=tmp_path,  # examples must not depend on the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for expected in EXPECTED_OUTPUT.get(name, []):
        assert expected in proc.stdout, proc.stdout


def _doc_programs(page: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    return [b for b in blocks if "asyncio.run(" in b]


def test_concepts_program_prints_what_the_page_shows(tmp_path: Path) -> None:
    (program,) = _doc_programs(ROOT / "docs" / "concepts.md")
    proc = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    outcomes = [line.split()[:2] for line in proc.stdout.splitlines()[:3]]
    assert outcomes == [["billing/refunds", "inflight"], ["refunds/request", "hit"], ["accounts/sso", "miss"]]
    assert proc.stdout.splitlines()[3] == "prefetched 3, used 2, wasted 1"


async def test_claude_desktop_config_starts_a_working_server(tmp_path: Path) -> None:
    """examples/claude_desktop_config.json, with its placeholder paths pointed at real files, as a host runs it."""
    import json
    import shutil

    from mcp import Client, StdioServerParameters

    import prehydrate as ph

    (handbook := tmp_path / "handbook").mkdir()
    (handbook / "oncall.md").write_text("# On call\n\n## Escalations\n\nPage the lead for refunds over $1,000.\n")
    shutil.copy(ph.sample_sections_path(), tmp_path / "sections.jsonl")
    text = (EXAMPLES / "claude_desktop_config.json").read_text(encoding="utf-8")
    venv_python = "/Users/you/work/prehydrate/.venv/bin/python"  # what `prehydrate mcp-config` prints
    text = text.replace(venv_python, sys.executable)
    text = text.replace("/Users/you/work", str(tmp_path)).replace("/Users/you/.prehydrate", str(tmp_path / "home"))
    server = json.loads(text)["mcpServers"]["prehydrate"]
    assert server["command"] == sys.executable and server["args"][:3] == ["-m", "prehydrate", "serve"]
    # as a host runs it: from its own folder, with no virtual environment on PATH
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **server["env"]}
    params = StdioServerParameters(command=server["command"], args=server["args"], env=env, cwd="/")
    async with Client(params) as client:
        result = await client.call_tool("request_context", {"section": "oncall#escalations"})
        assert not result.is_error and result.structured_content is not None
        assert "$1,000" in result.structured_content["content"]
        result = await client.call_tool("request_context", {"section": "billing/refunds"})
        assert not result.is_error
    assert any((tmp_path / "home" / "cache").iterdir())  # --cache-dir: the disk tier was written
    assert ph.read_traces(tmp_path / "home" / "traces.jsonl")  # the session was recorded under PREHYDRATE_HOME


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_docs_index_links_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "index.md":
            assert f"]({page.name}" in index, f"docs/index.md does not link {page.name}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code blocks are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path) if path else page
        assert dest.exists(), f"{page.name}: link to {target!r} points nowhere"
        if anchor and dest.suffix == ".md":
            body = re.sub(r"```.*?```", "", dest.read_text(encoding="utf-8"), flags=re.S)
            anchors = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", body, re.M)}
            assert anchor in anchors, f"{page.name}: no heading for #{anchor} in {dest.name}"
