"""Start to first answer of ``prehydrate serve`` over stdio, and where the time goes.

Run: ``python tests/benchmarks/stdio_startup.py [--runs 5] [--json out.json]``

A host starts the server when it starts (or on first use) and waits for the handshake before the
model can call anything, so the time from spawning the process to the first ``request_context``
answer is what a user waits. Each run spawns ``python -m prehydrate serve`` (the bundled corpus, no
trace store) with a real MCP client over stdio, in the 2025-11-25 handshake era, and times:

- ``first_answer_s``: spawn -> the first ``request_context`` result (handshake and one miss included);
- ``import_mcp_s``: a bare interpreter importing the MCP SDK's server (``mcp.server.mcpserver``);
- ``import_prehydrate_s``: a bare interpreter importing ``prehydrate`` and its CLI;
- ``interpreter_s``: a bare interpreter doing nothing (the floor).

Medians over ``--runs``. The imports overlap in a real start (both load anyio, pydantic, ...), so
they do not add up to ``first_answer_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_python(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


async def first_answer(home: Path) -> float:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "prehydrate", "serve", "--no-record", "--traces", str(home / "t.jsonl")],
        env={"PATH": "/usr/bin:/bin", "PREHYDRATE_HOME": str(home)},
    )
    start = time.perf_counter()
    with (home / "stderr.txt").open("w") as log:
        async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
            result = await client.call_tool("request_context", {"section": "billing/refunds"})
            elapsed = time.perf_counter() - start
            assert not result.is_error, result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = ("first_answer_s", "import_mcp_s", "import_prehydrate_s", "interpreter_s")
    samples: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            samples["first_answer_s"].append(asyncio.run(first_answer(Path(tmp))))
        samples["import_mcp_s"].append(time_python("import mcp.server.mcpserver"))
        samples["import_prehydrate_s"].append(time_python("import prehydrate, prehydrate.cli"))
        samples["interpreter_s"].append(time_python("pass"))
    result = {k: round(statistics.median(v), 3) for k, v in samples.items()} | {"runs": args.runs}
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
