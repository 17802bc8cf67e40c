"""What stands before the HTTP port, and what a burst leaves behind.

``prehydrate serve`` opens its port after the imports and the listing of the sources only: the
engine's warm-up (the lexical index, the learning worker that reads the trace store) starts once
``run_http`` reports the port listening. After requests, once none is in progress, the server
hands freed heap memory back to the system (glibc's ``malloc_trim``); POST requests beyond
``HttpLimits.max_active_posts`` are refused with ``503`` before the MCP SDK allocates for them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from uvicorn.server import ServerState

import prehydrate as ph
from prehydrate.mcp_server import HttpLimits, create_server, run_http
from prehydrate.mcp_server._http import _malloc_trim, _trim_when_quiet
from tests._mcp_raw import post_request
from tests._net import free_port, stop_process, wait_for_port, wait_for_task_port


async def test_on_listening_runs_once_the_port_accepts_connections() -> None:
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    port = free_port()
    accepted: list[bool] = []
    listening = asyncio.Event()

    def on_listening() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            accepted.append(True)  # the callback ran after the listening socket existed
        listening.set()

    async with engine:
        serving = run_http(create_server(engine), host="127.0.0.1", port=port, on_listening=on_listening)
        task = asyncio.create_task(serving)
        try:
            await asyncio.wait_for(listening.wait(), 30)
            await asyncio.sleep(0.2)
            assert accepted == [True]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _recorded(tmp_path: Path) -> ph.TraceStore:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    calls = (ph.Call(key="billing/refunds"), ph.Call(key="billing/invoices"))
    for i in range(12):
        store.append(ph.SessionTrace(session=f"s-{i}", turns=(ph.TurnTrace(query="refund", calls=calls),)))
    return store


async def test_start_without_warm_up_learns_nothing_until_warm_up(tmp_path: Path) -> None:
    engine = ph.Engine(
        sources=[ph.JsonlSource(ph.sample_sections_path())],
        traces=_recorded(tmp_path),
        learning=ph.LearningPolicy(wait_at_start=False, online=False),
    )
    await engine.start(warm_up=False)
    try:
        assert len(engine.catalog) > 0  # the sources are listed: requests by id can be served
        await asyncio.sleep(0.5)
        assert engine.learning.fits == 0  # no worker reads the trace store before warm_up()
        await engine.warm_up()
        deadline = time.monotonic() + 60
        while engine.learning.fits == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert engine.learning.fits == 1
        assert engine.catalog.search("refund", k=1)  # the index is there
    finally:
        await engine.aclose()


class _Trims:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pad: int) -> int:
        assert pad == 0
        self.calls += 1
        return 1


async def test_freed_memory_is_handed_back_after_requests_once_none_is_in_progress() -> None:
    state = ServerState()  # uvicorn's own bookkeeping of requests served and in progress
    trims = _Trims()
    trimmer = asyncio.create_task(_trim_when_quiet(state, trims, every_s=0.02))
    try:
        await asyncio.sleep(0.1)
        assert trims.calls == 0  # nothing served yet: nothing to hand back
        busy = asyncio.create_task(asyncio.sleep(10))
        state.tasks.add(busy)
        state.total_requests += 500
        await asyncio.sleep(0.1)
        assert trims.calls == 0  # a request in progress: not now
        state.tasks.discard(busy)
        busy.cancel()
        deadline = time.monotonic() + 10
        while trims.calls == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert trims.calls == 1  # quiet after requests: once
        await asyncio.sleep(0.2)
        assert trims.calls == 1  # no request since: not again
    finally:
        trimmer.cancel()
        await asyncio.gather(trimmer, return_exceptions=True)


def test_malloc_trim_is_found_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's; elsewhere the server skips it")
    trim = _malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)


async def test_posts_beyond_the_bound_get_503_before_the_sdk_and_later_ones_are_served() -> None:
    """One tool call held inside the server: the next POST is refused at once, then served once it is done."""
    release = asyncio.Event()

    async def slow(section_id: str, scope: ph.Scope) -> str:
        if section_id == "held":
            await release.wait()
        return f"content of {section_id}"

    source = ph.MockSource(slow, ["held", "free"], speculative=False)
    engine = ph.Engine(sources=[source], policy=ph.PrefetchPolicy(enabled=False))
    port = free_port()
    limits = HttpLimits(max_active_posts=1)
    async with engine:
        task = asyncio.create_task(run_http(create_server(engine), host="127.0.0.1", port=port, limits=limits))
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            await wait_for_task_port(port, task)
            async with httpx.AsyncClient(timeout=30) as http:
                held = asyncio.create_task(_post_call(http, url, "held", 1))
                while source.active == 0:  # the held call is inside the tool, its POST in progress
                    await asyncio.sleep(0.02)
                t0 = time.monotonic()
                refused = await _post_call(http, url, "free", 2)
                assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
                assert time.monotonic() - t0 < 5  # refused at once, not queued
                release.set()
                assert (await held).status_code == 200
                served = await _post_call(http, url, "free", 3)
                assert served.status_code == 200 and "content of free" in served.text
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _post_call(http: httpx.AsyncClient, url: str, section: str, rid: int) -> httpx.Response:
    """A 2026-07-28-era ``tools/call`` as one plain JSON POST (the era needs no handshake)."""
    params = {"name": "request_context", "arguments": {"section": section}}
    return await post_request(http, url, "tools/call", params, request_id=rid)


SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]


async def test_serve_max_active_posts_bounds_the_requests_inside_the_server(tmp_path: Path) -> None:
    """``prehydrate serve --max-active-posts 1``: a call held by a slow hydration makes the next POST a 503."""
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [*SERVE, "--transport", "http", "--port", str(port), "--no-record", "--no-prefetch"]
    argv += ["--simulate-latency-ms", "3000", "--max-active-posts", "1"]
    env = {**os.environ, "PREHYDRATE_HOME": str(tmp_path / "home")}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_for_port, proc, port, timeout_s=60, log=lambda: log.read_text(errors="replace"))
        url = f"http://127.0.0.1:{port}/mcp"
        async with httpx.AsyncClient(timeout=30) as http, httpx.AsyncClient(timeout=30) as other:
            held = asyncio.create_task(_post_call(http, url, "billing/refunds", 1))
            await asyncio.sleep(1.0)  # inside the server: its hydration sleeps 3 s
            refused = await _post_call(other, url, "billing/plans", 2)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert (await held).status_code == 200
    finally:
        stop_process(proc)


def test_serve_refuses_a_max_active_posts_below_one() -> None:
    done = subprocess.run([*SERVE, "--transport", "http", "--max-active-posts", "0"], capture_output=True, timeout=60)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "Invalid value for '--max-active-posts'" in err and "Traceback" not in err
