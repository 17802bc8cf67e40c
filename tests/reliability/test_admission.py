"""Admission control: floods cost answers (a busy error, a closed connection), never the process.

The flood test is the attack from the hardening issue, bounded: the real ``prehydrate serve``
command over HTTP in a subprocess whose descriptor limit is 256, against 600 idle loopback
connections held for a few seconds. Before the fix, the event loop's report of the failed
``accept()`` went through the SDK's Rich log handler, which needed a descriptor itself, and the
process exited.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

import prehydrate as ph
from prehydrate.mcp_server import HttpLimits, ServerSettings, SessionPolicy, create_server, run_http
from tests._net import free_port, stop_process, wait_for_port, wait_for_task_port

SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]

resource = pytest.importorskip("resource", reason="descriptor limits are POSIX only")


def _limit_descriptors(n: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


@contextmanager
def _serve_http(tmp_path: Path, *, fd_limit: int) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PREHYDRATE_HOME": str(tmp_path / "home")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SERVE, "--transport", "http", "--port", str(port), "--no-record"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_descriptors(fd_limit),
        )
    try:
        wait_for_port(proc, port, timeout_s=60, log=lambda: log.read_text(errors="replace"))
        yield f"http://127.0.0.1:{port}/mcp", proc, log
    finally:
        stop_process(proc)


def _open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that send nothing (the flood), connecting in parallel (non-blocking)."""
    out: list[socket.socket] = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        out.append(s)
    return out


async def _call(url: str, section: str = "billing/refunds") -> dict[str, Any]:
    async with Client(streamable_http_client(url)) as client:  # type: ignore[arg-type]
        result = await client.call_tool("request_context", {"section": section})
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def test_an_idle_connection_flood_under_a_low_descriptor_limit_leaves_the_server_answering(tmp_path: Path) -> None:
    with _serve_http(tmp_path, fd_limit=256) as (url, proc, log):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert asyncio.run(_call(url))["section"] == "billing/refunds"
        for _ in range(2):  # two waves: the second finds the loop after its first accept failures
            socks = _open_idle(port, 600)
            time.sleep(3)
            assert proc.poll() is None, f"the server died under the flood:\n{log.read_text(errors='replace')[-3000:]}"
            for s in socks:
                s.close()
        time.sleep(1.5)  # asyncio pauses accepting for 1 s after running out of descriptors
        result = asyncio.run(_call(url))
        assert result["content"] and proc.poll() is None


@asynccontextmanager
async def _running(server: Any, limits: HttpLimits) -> AsyncIterator[int]:
    port = free_port()
    task = asyncio.create_task(run_http(server, host="127.0.0.1", port=port, limits=limits))
    try:
        await wait_for_task_port(port, task)
        yield port
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_a_connection_that_never_finishes_its_headers_is_closed() -> None:
    """Slow-loris: a request head trickled (or never sent) is cut off after ``header_timeout_s``."""
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    async with engine, _running(create_server(engine), HttpLimits(header_timeout_s=0.5)) as port:
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(4):  # keep trickling: each byte arrives well inside any per-read timeout
            await asyncio.sleep(0.3)
            with suppress(OSError):
                slow.sendall(b"X")
        await asyncio.sleep(0.5)
        assert await asyncio.to_thread(slow.recv, 100) == b"", "the slow client was never cut off"
        assert await asyncio.to_thread(idle.recv, 100) == b"", "the idle client was never cut off"
        slow.close()
        idle.close()


async def test_connections_beyond_the_cap_are_closed_at_once_and_the_rest_served() -> None:
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    async with engine, _running(create_server(engine), HttpLimits(max_connections=4)) as port:
        await asyncio.sleep(0.5)  # the port probe's connection is gone
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        await asyncio.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            assert await asyncio.to_thread(extra.recv, 100) == b""
        except ConnectionResetError:
            pass  # aborted: the kernel may report the reset instead of EOF
        finally:
            extra.close()
        for s in held:
            s.close()
        await asyncio.sleep(0.3)
        assert (await _call(f"http://127.0.0.1:{port}/mcp"))["section"] == "billing/refunds"


async def test_requests_beyond_the_concurrency_limit_get_503_at_once_not_a_queue() -> None:
    """Beyond ``max_requests`` (uvicorn's ``limit_concurrency``) a request is answered ``503`` when its head arrives.

    The socket timeout (5 s) is far below the request-head deadline (60 s here): a request that was
    queued or left waiting instead of refused would time out on the client's read.
    """
    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    limits = HttpLimits(max_connections=16, max_requests=2, header_timeout_s=60)
    async with engine, _running(create_server(engine), limits) as port:
        await asyncio.sleep(0.5)  # the port probe's connection is gone
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        await asyncio.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            extra.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}")
            head = await asyncio.to_thread(extra.recv, 200)
        finally:
            extra.close()
        assert head.startswith(b"HTTP/1.1 503"), head
        for s in held:
            s.close()
        await asyncio.sleep(0.3)
        assert (await _call(f"http://127.0.0.1:{port}/mcp"))["section"] == "billing/refunds"


async def test_tool_calls_beyond_the_bound_get_a_fast_busy_error_and_later_calls_are_served() -> None:
    sections = [ph.Section(id=f"doc/{i}", title=f"Doc {i}", order=i) for i in range(8)]
    source = ph.MockSource(lambda sid, scope: f"content of {sid}", sections, latency_s=1.0)
    engine = ph.Engine(sources=[source], policy=ph.PrefetchPolicy(enabled=False))
    settings = ServerSettings(sessions=SessionPolicy(max_concurrent_calls=2, record=False))
    server = create_server(engine, settings)
    async with engine, Client(server) as client:  # type: ignore[arg-type]

        async def call(i: int) -> tuple[bool, str, float]:
            t0 = time.monotonic()
            meta = {"prehydrate/session": f"s{i}"}
            result = await client.call_tool("request_context", {"section": f"doc/{i}"}, meta=meta)
            text = str(result.content[0].text) if result.is_error else ""  # type: ignore[union-attr]
            return result.is_error, text, time.monotonic() - t0

        results = await asyncio.gather(*(call(i) for i in range(6)))
        busy = [r for r in results if r[0]]
        assert len(busy) == 4 and all("busy" in text for _, text, _ in busy)
        assert all(elapsed < 0.5 for _, _, elapsed in busy), "busy errors must not wait for the slow calls"
        assert len([r for r in results if not r[0]]) == 2
        again = await client.call_tool("request_context", {"section": "doc/7"}, meta={"prehydrate/session": "s7"})
        assert not again.is_error  # the bound counts calls in progress, not calls ever made
