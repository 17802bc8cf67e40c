"""Loopback helpers the tests share: a free port, waiting for a server's port, stopping it."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Callable

__all__ = ["free_port", "stop_process", "wait_for_port", "wait_for_task_port"]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[bytes], port: int, *, timeout_s: float, log: Callable[[], str]) -> None:
    """Block until ``proc`` accepts connections on ``port``.

    Raises:
        AssertionError: the process exited first (with the tail of its ``log()``) or the port stayed
            closed for ``timeout_s``; an assertion, so a test fails with the server's own words.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not open port {port} within {timeout_s:g} s") from None
            time.sleep(0.05)


async def wait_for_task_port(port: int, task: asyncio.Task[None], *, timeout_s: float = 10.0) -> None:
    """Wait until a server running as ``task`` in this loop (``run_http``) accepts connections on ``port``.

    Raises:
        AssertionError: the port stayed closed for ``timeout_s``; the task's own exception if it ended first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"port {port} never opened") from None
            await asyncio.sleep(0.025)


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
    """SIGTERM (the server bails out and records), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
