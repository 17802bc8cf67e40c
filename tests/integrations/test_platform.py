"""The LangGraph Platform example (``examples/platform/langgraph.json``) served by ``langgraph dev``.

``langgraph dev`` runs offline with its in-memory server, so the test starts the real thing on a free
loopback port and drives it with LangGraph's own SDK client, as a deployed app would be called.
``langgraph-cli[inmem]`` is a dev dependency (CI installs it); where it is missing the test skips
with a reason, and fails under ``PREHYDRATE_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests._net import free_port, stop_process, wait_for_port
from tests.conftest import require

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform"


async def test_the_platform_example_serves_prehydrated_runs_from_langgraph_dev(tmp_path: Path) -> None:
    cli = shutil.which("langgraph", path=os.path.dirname(sys.executable)) or shutil.which("langgraph")
    require(
        cli and importlib.util.find_spec("langgraph_api") and importlib.util.find_spec("langgraph_sdk"),
        "langgraph dev is not installed (pip install 'langgraph-cli[inmem]')",
    )
    from langgraph_sdk import get_client

    app_dir = tmp_path / "platform"  # langgraph dev keeps its state beside langgraph.json: not in the repo
    shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns(".langgraph_api", "__pycache__"))
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PREHYDRATE_TRACES": str(tmp_path / "traces.jsonl"), "LANGSMITH_TRACING": "false"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=app_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_port(proc, port, timeout_s=120, log=lambda: log.read_text(errors="replace"))
        client = get_client(url=f"http://127.0.0.1:{port}")
        outcomes: list[list[Any]] = []
        try:
            for tenant in ("acme", "globex"):
                thread = await client.threads.create()
                out = await client.runs.wait(
                    thread["thread_id"],
                    "support",
                    input={"messages": [{"role": "user", "content": "How do refunds work?"}]},
                    context={"tenant": tenant},
                )
                assert isinstance(out, dict), out
                outcomes.append([m["artifact"]["outcome"] for m in out["messages"] if m.get("type") == "tool"])
        finally:
            await client.aclose()
    finally:
        stop_process(proc)
    # The node declares billing/refunds: the run's start fetched it while the model thought.
    assert outcomes == [["hit"], ["hit"]], log.read_text(errors="replace")[-3000:]
