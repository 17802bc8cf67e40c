"""The small items of the hardening issue that concern starting ``prehydrate serve``.

A cache directory that cannot be opened (read-only or full) costs the disk tier, not the server;
``--allow-remote`` without tokens is allowed but said out loud.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._net import free_port, stop_process, wait_for_port

SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]


def _unprivileged(cmd: list[str]) -> list[str]:
    """Root ignores file modes: drop the capabilities that let it, so read-only means read-only."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running the suite as root needs util-linux setpriv to make a directory read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]


def test_a_read_only_cache_dir_at_start_skips_the_disk_tier_with_a_warning(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o555)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PREHYDRATE_HOME": str(tmp_path / "home")}
    cmd = [*SERVE, "--transport", "http", "--port", str(port), "--no-record", "--cache-dir", str(cache)]
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(_unprivileged(cmd), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(proc, port, timeout_s=60, log=lambda: log.read_text(errors="replace"))
        finally:
            stop_process(proc)
    finally:
        os.chmod(cache, 0o755)
    text = " ".join(log.read_text(errors="replace").split())
    assert "skipping the disk cache tier" in text and "Traceback" not in text


def test_allow_remote_without_tokens_warns(tmp_path: Path) -> None:
    """The warning comes before anything else can fail (here: a path that does not exist)."""
    env = {**os.environ, "PREHYDRATE_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    env.pop("PREHYDRATE_TOKENS", None)
    missing = str(tmp_path / "missing")
    args = ["--transport", "http", "--host", "0.0.0.0", "--allow-remote", "--port", str(free_port())]
    proc = subprocess.run([*SERVE, missing, *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "warning: serving without auth on '0.0.0.0'" in proc.stderr
    assert "--tokens" in proc.stderr
