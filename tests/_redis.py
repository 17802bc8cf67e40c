"""A real redis-server for tests, started on a free loopback port, with kill and restart.

Tests that need Redis skip with a one-line reason when redis-server is missing, and FAIL under
``PREHYDRATE_REQUIRE_ALL=1`` (CI sets it, and installs it with ``apt-get install redis-server``), so a
skipped shared-tier suite never looks green in CI while testing nothing (see tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._net import free_port
from tests.conftest import require

__all__ = ["RedisServer", "free_port", "redis_server_path", "running_redis"]


def redis_server_path() -> str:
    """The redis-server executable, or a skip (a failure in CI) saying how to install it."""
    found = shutil.which("redis-server")
    if found is None and os.path.exists("/usr/bin/redis-server"):
        found = "/usr/bin/redis-server"
    require(found, "redis-server is not installed (apt-get install redis-server); the Redis tests need a real server")
    assert found is not None
    return found


def _die_with_parent() -> None:
    """Run in the child before exec: SIGKILL redis-server when the test process dies (Linux), so
    an interrupted test run never leaves servers behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process without persistence (``--save '' --appendonly no``).

    ``kill()`` is SIGKILL (a crash, not a shutdown); ``start()`` again brings it back on the same
    port with an empty dataset, as a restarted cache would be.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = redis_server_path()
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + 10.0
        while not _ping(self.port):
            if self.proc.poll() is not None:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {text[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port} within 10s")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone (the port refuses connections)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def keys(self, pattern: str = "*") -> list[str]:
        """Key names in the server right now (a fresh connection, so it works across kills)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)
        try:
            return sorted(k.decode() for k in client.keys(pattern))
        finally:
            client.close()

    def command(self, *args: str | bytes | int) -> object:
        """Run one command on a fresh connection (for tests that write raw values)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """A started RedisServer, stopped on exit."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
