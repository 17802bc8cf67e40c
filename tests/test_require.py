"""The rule for tests that need something pip does not install: skip locally, fail in CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_ALL, require

ROOT = Path(__file__).resolve().parents[1]


def test_present_requirement_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ALL, "1")
    require("/usr/bin/thing", "thing is not installed")  # returns: nothing to skip or fail


def test_missing_requirement_skips_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ALL, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^thing is not installed \(apt-get install thing\)$"):
        require(None, "thing is not installed (apt-get install thing)")


def test_missing_requirement_fails_when_everything_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ALL, "1")
    with pytest.raises(pytest.fail.Exception, match="thing is not installed.*PREHYDRATE_REQUIRE_ALL=1"):
        require(False, "thing is not installed")


def test_ci_requires_everything_before_running_the_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    exported = re.search(r"^export [^\n]*\bPREHYDRATE_REQUIRE_ALL=1\b", script, re.M)
    assert exported, ".ci/run must export PREHYDRATE_REQUIRE_ALL=1"
    pytest_run = script.find("python -m pytest")
    assert pytest_run > exported.start(), "PREHYDRATE_REQUIRE_ALL=1 must be exported before the test run"


def _pytest_without_programs(test: str, **env: str) -> str:
    """Run one test file in a child pytest whose PATH holds only this interpreter's folder."""
    child_env = {k: v for k, v in os.environ.items() if k != REQUIRE_ALL}
    child_env.update(PATH=str(Path(sys.executable).parent), **env)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def test_typescript_client_test_skips_without_node_and_fails_in_ci() -> None:
    test = "tests/mcp_server/test_ts_client.py"
    local = _pytest_without_programs(test)
    assert "2 skipped" in local and "node (20+) is not installed" in local, local
    ci = _pytest_without_programs(test, **{REQUIRE_ALL: "1"})
    assert "2 failed" in ci and "node (20+) is not installed" in ci, ci


def test_redis_tests_skip_without_redis_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests import _redis

    monkeypatch.delenv(REQUIRE_ALL, raising=False)
    monkeypatch.setattr(_redis.shutil, "which", lambda name: None)
    monkeypatch.setattr(_redis.os.path, "exists", lambda path: False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        with _redis.running_redis(tmp_path):
            pass
    monkeypatch.setenv(REQUIRE_ALL, "1")
    with pytest.raises(pytest.fail.Exception, match="redis-server is not installed"):
        with _redis.running_redis(tmp_path):
            pass
