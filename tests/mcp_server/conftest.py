"""Shared helpers for the MCP server tests: real `prehydrate serve` subprocesses and event barriers.

Subprocess tests run the real command line (the same entry point as the console script) so that
argument parsing, engine building, transports and shutdown are all exercised as a user runs them.
Waiting is done on observable facts (a port accepting connections, an engine event), never on a
fixed sleep, so the tests do not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

import prehydrate as ph
from tests._net import free_port, stop_process, wait_for_port

SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]
"""`prehydrate serve` exactly as the console script runs it, with this interpreter."""


def serve_argv(*args: str) -> list[str]:
    """The argv of `prehydrate serve ARGS...`."""
    return [*SERVE, *args]


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a server subprocess: state under tmp_path, no inherited tokens."""
    env = {k: v for k, v in os.environ.items() if k != "PREHYDRATE_TOKENS"}
    env["PREHYDRATE_HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


@contextmanager
def http_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """Run `prehydrate serve --transport http` on a free loopback port; yields (url, traces path).

    Stops it with SIGTERM (what a process manager sends) and checks it exits cleanly.
    """
    port = free_port()
    traces = tmp_path / "traces.jsonl"
    log = (tmp_path / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        serve_argv("--transport", "http", "--port", str(port), "--traces", str(traces), *args),
        env=env if env is not None else child_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def server_log() -> str:
        log.flush()
        return (tmp_path / f"server-{port}.log").read_text()

    try:
        wait_for_port(proc, port, timeout_s=60, log=server_log)
        yield f"http://127.0.0.1:{port}/mcp", traces
    finally:
        stop_process(proc)
        log.close()


@asynccontextmanager
async def event_barrier(engine: ph.Engine, predicate: Callable[[object], bool]) -> AsyncIterator[asyncio.Event]:
    """An Event set when the engine emits an event matching ``predicate`` (subscribed while open)."""
    seen = asyncio.Event()

    def on_event(event: object) -> None:
        if predicate(event):
            seen.set()

    unsubscribe = engine.subscribe(on_event)  # type: ignore[arg-type]
    try:
        yield seen
    finally:
        unsubscribe()


@pytest.fixture
def engine(tmp_path: Path) -> ph.Engine:
    """An engine over the bundled sample corpus recording into a temporary trace store."""
    from prehydrate.mcp_server import build_engine

    return build_engine(traces=tmp_path / "traces.jsonl")
