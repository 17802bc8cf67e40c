"""The small CLI commands of the core: ``sections``, ``fetch`` and ``traces``, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import prehydrate as ph

SAMPLE = str(ph.sample_sections_path())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from prehydrate.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_sections_lists_what_a_source_yields() -> None:
    out = run("sections", SAMPLE, "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == [s.id for s in ph.JsonlSource(SAMPLE).list_sections()]


def test_fetch_prints_a_section_and_names_unknown_ids() -> None:
    out = run("fetch", SAMPLE, "billing/refunds")
    assert out.returncode == 0, out.stderr
    lines = Path(SAMPLE).read_text(encoding="utf-8").splitlines()
    text = {json.loads(line)["id"]: json.loads(line)["text"] for line in lines}
    assert out.stdout == text["billing/refunds"].rstrip("\n") + "\n"
    bad = run("fetch", SAMPLE, "billing/refund")
    assert bad.returncode == 2
    assert "unknown section 'billing/refund'; did you mean 'billing/refunds'" in bad.stderr


def test_traces_summarises_and_checks_keys(tmp_path: Path) -> None:
    out = run("traces", str(ph.sample_traces_path("test")), "--sections", SAMPLE, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    traces = ph.read_traces(ph.sample_traces_path("test"))
    assert summary["sessions"] == len(traces)
    assert summary["calls"] == sum(len(s.keys) for s in traces)
    assert summary["unknown_keys"] == []
    stray = tmp_path / "t.jsonl"
    stray.write_text(json.dumps({"session": "s", "turns": [{"query": "q", "calls": [{"key": "nope"}]}]}) + "\n")
    out = run("traces", str(stray), "--sections", SAMPLE, "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["unknown_keys"] == ["nope"]


def test_traces_names_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"session": "ok", "turns": []}\n{"session": "x", "turns": "no"}\n')
    out = run("traces", str(bad), "--json")
    assert out.returncode == 1  # checked, and found a problem
    assert out.stderr.splitlines() == [f"warning: {bad}:2: 'turns' must be a list; line skipped"]
    assert json.loads(out.stdout)["sessions"] == 1


def test_sections_never_cuts_an_id_on_real_code() -> None:
    """The stdlib's asyncio package: long ids (``base_events.py#BaseEventLoop.create_connection``) in full."""
    import asyncio

    folder = str(Path(asyncio.__file__).parent)
    out = run("sections", folder)  # piped, as a user's `| grep` would be
    assert out.returncode == 0, out.stderr
    printed = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert printed == [s.id for s in ph.DirectorySource(folder).list_sections()]
    assert max(map(len, printed)) > 60 and "…" not in out.stdout  # an 80-column table had cut them
    assert "base_events.py#BaseEventLoop.create_connection" in printed


def test_same_stem_files_and_bad_files_do_not_abort_a_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"retries": 3}\n')
    (tmp_path / "config.yaml").write_text("retries: 3\n")
    (tmp_path / "latin1.md").write_bytes(b"# Caf\xe9\n")
    (tmp_path / "loop.md").symlink_to("loop.md")
    out = run("sections", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert [line.split("\t")[0] for line in out.stdout.splitlines()] == ["config.json", "config.yaml"]
    assert "latin1.md" in out.stderr and "loop.md" in out.stderr  # each skipped file named
    fetched = run("fetch", str(tmp_path), "config.yaml")
    assert (fetched.returncode, fetched.stdout) == (0, "retries: 3\n")


def test_fetch_outside_the_root_names_the_real_root(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\n\nRead me first.\n")
    out = run("fetch", str(tmp_path), "../../etc/passwd")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"outside the source root {str(tmp_path.resolve())!r}" in out.stderr
    assert "<section ids>" not in out.stderr and "root:x:" not in out.stdout
