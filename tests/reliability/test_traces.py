"""Trace files that never block a start: torn tails, garbage lines, failed writes, rotation, tenants."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

import prehydrate as ph
from tests.mcp_server.conftest import child_env, serve_argv


def session(sid: str, key: str = "billing/refunds", tenant: str | None = None) -> ph.SessionTrace:
    turn = ph.TurnTrace(query=f"query of {sid}", calls=(ph.Call(key=key, think_ms=400),))
    return ph.SessionTrace(session=sid, task=ph.TaskSpec(type="billing"), turns=(turn,), tenant=tenant)


def line(sid: str) -> bytes:
    return session(sid).dumps().encode() + b"\n"


def quarantined(store: ph.TraceStore) -> list[dict[str, Any]]:
    side = store.quarantine_path()
    return [json.loads(x) for x in side.read_text().splitlines()] if side.exists() else []


def test_a_torn_last_line_is_cut_off_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_bytes(line("a") + line("b") + line("c")[:25])  # disk full in the middle of an append
    store = ph.TraceStore(path)
    with caplog.at_level(logging.WARNING, "prehydrate.traces"):
        assert [t.session for t in store.load()] == ["a", "b"]
    assert f"{path}:3: a torn last line" in caplog.text
    assert path.read_bytes() == line("a") + line("b")  # truncated: the next append starts clean
    [q] = quarantined(store)
    assert q["where"] == f"{path}:3" and q["line"] == line("c")[:25].decode()
    store.append(session("d"))
    assert [t.session for t in ph.read_traces(path)] == ["a", "b", "d"]  # strictly valid again


def test_an_append_after_a_crash_starts_on_a_new_line(tmp_path: Path) -> None:
    """A writer that finds a torn tail (nobody loaded since) must not glue its line onto it."""
    path = tmp_path / "traces.jsonl"
    path.write_bytes(line("a") + line("b")[:30])
    store = ph.TraceStore(path)
    store.append(session("c"))
    assert path.read_bytes() == line("a") + line("b")[:30] + b"\n" + line("c")
    assert [t.session for t in store.load()] == ["a", "c"]
    assert [q["where"] for q in quarantined(store)] == [f"{path}:2"]


@pytest.mark.parametrize(
    "bad",
    [b"\x00\x00\x00\x00", bytes(range(256)).replace(b"\n", b""), b"{not json", b'{"session": 5}', b"\xff\xfe{}"],
    ids=["nul", "binary", "not-json", "wrong-type", "bad-utf8"],
)
def test_bad_lines_are_quarantined_once_and_never_fatal(
    tmp_path: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_bytes(line("a") + bad + b"\n" + line("b"))
    store = ph.TraceStore(path)
    with caplog.at_level(logging.WARNING, "prehydrate.traces"):
        assert [t.session for t in store.load()] == ["a", "b"]
    assert f"{path}:2" in caplog.text and "1 bad line(s)" in caplog.text
    assert [q["where"] for q in quarantined(store)] == [f"{path}:2"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "prehydrate.traces"):
        assert [t.session for t in store.load()] == ["a", "b"]
    assert caplog.text == ""  # blanked in place: reported once, not at every start
    assert len(quarantined(store)) == 1


async def test_an_engine_starts_and_learns_from_a_damaged_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_bytes(line("a") + b"\x00\n" + b"\x8b\x08garbage\n" + line("b") + line("c")[:10])
    fitted: list[list[str]] = []

    class Fitting(ph.SequentialPredictor):
        def fit(self, traces: list[ph.SessionTrace], catalog: object) -> None:  # noqa: D102
            fitted.append([t.session for t in traces])

    engine = ph.Engine(
        sources=[ph.JsonlSource(ph.sample_sections_path())], predictor=Fitting(), traces=ph.TraceStore(path)
    )
    async with engine:
        pass
    assert fitted == [["a", "b"]]


def test_a_failed_append_keeps_the_session_and_writes_it_later(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "traces.jsonl"
    (tmp_path / "sub").write_text("a file where the directory should be")
    store = ph.TraceStore(path)
    store.append(session("a"))  # ENOTDIR: logged, kept
    assert store.pending == 1
    (tmp_path / "sub").unlink()
    store.append(session("b"))
    assert store.pending == 0
    assert [t.session for t in store.load()] == ["a", "b"]


def test_close_writes_sessions_it_could_not_record_to_a_named_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "sub").write_text("not a directory")
    store = ph.TraceStore(tmp_path / "sub" / "traces.jsonl")
    store.append(session("a"))
    with caplog.at_level(logging.WARNING, "prehydrate.traces"):
        kept = store.close()
    assert kept is not None and str(kept) in caplog.text
    try:
        assert [t.session for t in ph.read_traces(kept)] == ["a"]
    finally:
        kept.unlink()


def _append_many(path: str, prefix: str, n: int) -> None:
    store = ph.TraceStore(path, retention=ph.TraceRetention(max_file_bytes=40_000, backups=50))
    pad = "x" * 3000  # lines longer than a pipe buffer: interleaving would show
    for i in range(n):
        t = session(f"{prefix}-{i}")
        store.append(ph.SessionTrace(session=t.session, task=ph.TaskSpec(type=pad), turns=t.turns))


def test_processes_appending_and_rotating_at_once_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), f"p{k}", 60)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ph.TraceStore(path, retention=ph.TraceRetention(max_file_bytes=40_000, backups=50))
    got = [t.session for t in store.load()]
    assert sorted(got) == sorted(f"p{k}-{i}" for k in range(3) for i in range(60))
    assert not store.quarantine_path().exists()
    assert len(list(tmp_path.glob("traces.jsonl.*"))) > 1  # it did rotate while others appended


def test_retention_rotates_bounds_backups_and_fits_on_a_recent_window(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    size = len(line("s-000"))
    retention = ph.TraceRetention(max_file_bytes=10 * size, backups=2, fit_window=15)
    store = ph.TraceStore(path, retention=retention)
    store.extend([session(f"s-{i:03d}") for i in range(100)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"]
    kept = [t.session for t in store.load()]
    assert kept == [f"s-{i:03d}" for i in range(100 - len(kept), 100)] and len(kept) <= 30
    assert [t.session for t in store.recent(None)] == [f"s-{i:03d}" for i in range(85, 100)]


def test_old_rotated_files_expire(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.with_name("traces.jsonl.1").write_bytes(line("old"))
    os.utime(path.with_name("traces.jsonl.1"), (0, 0))
    path.write_bytes(line("new"))
    store = ph.TraceStore(path, retention=ph.TraceRetention(max_age_days=30))
    assert [t.session for t in store.load()] == ["new"]
    assert not path.with_name("traces.jsonl.1").exists()


def test_each_tenant_is_stored_in_its_own_file(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    store.extend(
        [session("d"), session("a1", tenant="acme"), session("g1", tenant="../globex"), session("a2", tenant="acme")]
    )
    assert store.tenants() == ["../globex", "acme", "default"]
    assert [t.session for t in store.load("acme")] == ["a1", "a2"]
    assert [t.session for t in store.load("../globex")] == ["g1"]
    assert [t.session for t in store.load("default")] == ["d"]
    assert "acme" not in (tmp_path / "traces.jsonl").read_text()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "traces.tenants").iterdir())
    assert files == ["traces.tenants/%2E%2E%2Fglobex.jsonl", "traces.tenants/acme.jsonl"]


def test_a_long_tenant_name_gets_a_hashed_file_and_is_listed(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    tenant = "t" * 500
    store.append(session("x", tenant=tenant))
    assert store.tenants() == [tenant]
    assert [t.session for t in store.load(tenant)] == ["x"]


async def test_serve_starts_on_a_damaged_trace_file_and_quarantines(tmp_path: Path) -> None:
    """A torn last line, binary garbage and a NUL line: the server starts, warns and serves."""
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(
        line("a") + bytes(range(1, 256)).replace(b"\n", b"") + b"\n" + b"\x00" * 8 + b"\n" + line("b")[:40]
    )
    argv = serve_argv("--traces", str(traces))
    errlog = (tmp_path / "stderr.log").open("w")
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=child_env(tmp_path))
    async with Client(stdio_client(params, errlog=errlog)) as client:
        out = await client.call_tool("request_context", {"section": "billing/refunds"})
        assert not out.is_error and out.structured_content is not None
    errlog.close()
    err = " ".join((tmp_path / "stderr.log").read_text().split())  # the SDK's rich log handler wraps lines
    assert "a torn last line" in err and "2 bad line(s)" in err
    where = [json.loads(x)["where"] for x in traces.with_name("traces.jsonl.quarantine").read_text().splitlines()]
    assert where == [f"{traces}:2", f"{traces}:3", f"{traces}:4"]
    assert ph.read_traces(traces)[0].session == "a"  # strictly valid again, and the new session appended


async def test_an_io_error_at_shutdown_loses_no_other_session(tmp_path: Path) -> None:
    """One session's recording fails with an OSError: the shutdown goes on and records the rest."""
    from prehydrate.mcp_server import SessionManager, SessionPolicy

    class Flaky(ph.TraceStore):
        def append(self, trace: ph.SessionTrace) -> None:  # noqa: D102
            if trace.session == "first":
                raise OSError(5, "Input/output error")
            super().append(trace)

    store = Flaky(tmp_path / "traces.jsonl")
    engine = ph.Engine(
        sources=[ph.JsonlSource(ph.sample_sections_path())], traces=store, policy=ph.PrefetchPolicy(enabled=False)
    )
    m = SessionManager(engine, SessionPolicy())
    async with engine:
        for name in ("first", "second", "third"):
            key = m.identify(
                meta={"prehydrate/session": name}, principal=None, tenant=None, headers=None, connection=None, peer=None
            )
            turn, entry = await m.begin_call(key)
            await turn.request_context("billing/plans")
            m.end_call(entry)
        await m.aclose()
    assert sorted(t.session for t in store.load()) == ["second", "third"]


def test_a_tenant_whose_file_just_rotated_is_still_listed(tmp_path: Path) -> None:
    size = len(session("s-0", tenant="acme").dumps()) + 1
    store = ph.TraceStore(tmp_path / "traces.jsonl", retention=ph.TraceRetention(max_file_bytes=size - 1, backups=2))
    store.append(session("s-0", tenant="acme"))  # past the bound: rotated to .1, no live file left
    assert not store.path_for("acme").exists()
    assert store.tenants() == ["acme"] and [t.session for t in store.load("acme")] == ["s-0"]


def test_the_traces_command_reads_a_damaged_file_on_with_one_warning_per_bad_line(tmp_path: Path) -> None:
    """``prehydrate traces`` on what a crash leaves: binary garbage, a NUL line, a torn last line."""
    good = [
        ph.SessionTrace(session=f"s-{i}", turns=(ph.TurnTrace(query="q", calls=(ph.Call(key="a"),)),)) for i in range(3)
    ]
    path = tmp_path / "traces.jsonl"
    torn = good[2].dumps()[:25]
    path.write_bytes(
        b"".join(
            [
                (good[0].dumps() + "\n").encode(),
                b"\xff\xfe\x00garbage\x81\n",
                b"\x00\x00\x00\n",
                (good[1].dumps() + "\n").encode(),
                torn.encode(),  # the last append, cut off by a full disk or a crash
            ]
        )
    )
    before = path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", "from prehydrate.cli import main; main()", "traces", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["sessions"] == 2  # the good lines, around the bad ones
    warnings = out.stderr.splitlines()
    assert len(warnings) == 3 and all(w.startswith("warning: ") for w in warnings), out.stderr
    assert [w.split(": ", 2)[1] for w in warnings] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    assert "torn last line" in warnings[2]
    assert "Traceback" not in out.stderr
    assert path.read_bytes() == before  # a check changes nothing
