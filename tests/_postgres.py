"""A real PostgreSQL server for tests: a fresh cluster in a temp dir, on a free loopback port.

PostgreSQL refuses to run as root, so under root (CI, this sandbox) the cluster belongs to the
``postgres`` system user that Debian's package creates and the server runs as that user. Tests that
need it skip with a reason when PostgreSQL is not installed, and fail instead when
``PREHYDRATE_REQUIRE_ALL=1`` (CI installs it with ``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests._net import free_port
from tests.conftest import require

__all__ = ["PostgresServer", "postgres_bin", "running_postgres"]


def postgres_bin() -> Path:
    """The folder holding initdb and pg_ctl, or a skip (a failure under PREHYDRATE_REQUIRE_ALL)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, str(Path(found).resolve().parent))
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    require(None, "PostgreSQL is not installed (apt-get install postgresql); the SqlSource server tests need it")
    raise AssertionError("unreachable: require() skips or fails")


def _as_user() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        require(None, "running as root and there is no 'postgres' user to run PostgreSQL as (apt-get install postgresql)")  # noqa: E501
    return ["runuser", "-u", "postgres", "--"]


class PostgresServer:
    """One throwaway cluster (trust auth on loopback, no fsync: test data only)."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: that sits in a root-only folder the postgres user cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="prehydrate-pg-"))
        self.port = free_port()
        self.bin = postgres_bin()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*_as_user(), *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            os.chmod(self.directory, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        opts = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / "log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l", log, "-w", "start")

    def stop(self) -> None:
        data = self.directory / "data"
        if data.exists():
            subprocess.run(
                [*_as_user(), str(self.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started PostgresServer, stopped and deleted on exit (immediate shutdown: test data only)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
