"""Optional extras missing at run time: one line naming the extra, exit code 2, no traceback.

The extra is made "missing" by blocking its modules in ``sys.modules`` (``None`` there makes the
import fail exactly as an absent package does) in a real ``prehydrate`` subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate.cli._extras import run_guarded

SAMPLE = str(ph.sample_sections_path())


def run_without(blocked: list[str], *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from prehydrate.cli import main\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "PREHYDRATE_HOME": str(home), "COLUMNS": "60"},
    )  # fmt: skip


def assert_one_line_hint(out: subprocess.CompletedProcess[str], extra: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # one line even on a 60-column terminal
    assert f'pip install "prehydrate[{extra}]"' in lines[0]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_otel_flag_without_the_otel_sdk(command: str, tmp_path: Path) -> None:
    # the mcp extra brings opentelemetry-api, so `import prehydrate.tracing` works: the SDK is what is missing
    args = [command, "--otel", SAMPLE] if command == "serve" else [command, "--otel", "--sessions", "1"]
    out = run_without(["opentelemetry.sdk"], *args, home=tmp_path)
    assert_one_line_hint(out, "otel")
    assert "--otel" in out.stderr and "opentelemetry.sdk" in out.stderr


def test_serve_without_the_mcp_extra(tmp_path: Path) -> None:
    out = run_without(["mcp"], "serve", SAMPLE, home=tmp_path)
    assert_one_line_hint(out, "mcp")
    assert "prehydrate serve" in out.stderr


def test_serve_redis_without_redis_py(tmp_path: Path) -> None:
    out = run_without(["redis"], "serve", SAMPLE, "--redis", "redis://127.0.0.1:1/0", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "prehydrate[redis]" in out.stderr  # the extra's name survives the printing (no markup eats it)


def test_any_unguarded_import_of_an_extra_is_the_same_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def app() -> None:
        raise ModuleNotFoundError("No module named 'langgraph'", name="langgraph.graph")

    monkeypatch.setattr(sys, "argv", ["prehydrate", "--verbose", "demo"])
    with pytest.raises(SystemExit) as info:
        run_guarded(app)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: prehydrate demo needs the langgraph extra (langgraph.graph is not installed): "
        'pip install "prehydrate[langgraph]"'
    )


def test_other_import_errors_are_not_disguised_as_a_missing_extra() -> None:
    def app() -> None:
        raise ModuleNotFoundError("No module named 'nosuch'", name="nosuch")

    with pytest.raises(ModuleNotFoundError, match="nosuch"):
        run_guarded(app)


@pytest.mark.parametrize("command", ["demo", "replay"])
def test_plot_without_matplotlib(command: str, tmp_path: Path) -> None:
    png = str(tmp_path / "out.png")
    if command == "demo":
        args = ["demo", "--sessions", "1", "--plot", png]
    else:
        data = ph.sample_traces_path("train")
        args = ["replay", "--sections", SAMPLE, "--train", str(data), "--test", str(data), "--plot", png]
    out = run_without(["matplotlib"], *args, home=tmp_path)
    assert_one_line_hint(out, "plot")
    assert out.stderr.startswith("error: --plot needs the plot extra (matplotlib is not installed)"), out.stderr
    assert not Path(png).exists()


def test_replay_without_looptime(tmp_path: Path) -> None:
    data = str(ph.sample_traces_path("train"))
    out = run_without(["looptime"], "replay", "--sections", SAMPLE, "--train", data, "--test", data, home=tmp_path)
    assert_one_line_hint(out, "replay")
    assert "prehydrate replay" in out.stderr and "looptime" in out.stderr


def test_replay_api_without_looptime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from prehydrate._replay import _run

    monkeypatch.setitem(sys.modules, "looptime", None)

    async def nothing() -> None:
        return None

    coro = nothing()
    with pytest.raises(ModuleNotFoundError, match=r'pip install "prehydrate\[replay\]"') as info:
        _run(coro)
    coro.close()
    assert info.value.name == "looptime"
