"""Faults: sources that raise, hang, return partial content or change version; a disk tier that turns
read-only, fills up, or is killed mid-write. In every case the engine keeps answering, and what it
serves is either the right content or a clear error, never a torn, stale or foreign entry.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import prehydrate as ph
from tests.conftest import require

from ._disk_worker import key_of, make_content, mock_source, section_id

WORKER = Path(__file__).with_name("_disk_worker.py")
IDS = [f"doc/{i}" for i in range(10)]


def engine_with(source: ph.Source, **kw: object) -> ph.Engine:
    return ph.Engine(sources=[source], **kw)  # type: ignore[arg-type]


def no_tasks_left(before: set[asyncio.Task[object]]) -> bool:
    now = {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}
    return now <= before


# --------------------------------------------------------------------------------------------------
# Sources that raise, hang, return partial content or change version


async def test_sources_that_raise_give_source_errors_and_serving_goes_on() -> None:
    """Half the sections always fail, on prefetch and on demand; many requests run at once."""

    def handler(sid: str, scope: ph.Scope) -> str:
        if int(sid.split("/")[1]) % 2:
            raise ConnectionResetError(f"backend reset while reading {sid}")
        return f"content {sid}"

    src = ph.MockSource(handler, IDS, latency_s=0.005)
    async with engine_with(src) as engine, engine.session("s") as session:
        before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        async with session.turn(expect=IDS[:6]) as turn:
            results = await asyncio.gather(*(turn.request_context(i) for i in IDS * 3), return_exceptions=True)
        for sid, r in zip(IDS * 3, results, strict=True):
            if int(sid.split("/")[1]) % 2:
                assert isinstance(r, ph.SourceError) and "backend reset" in str(r) and r.section_id == sid
            else:
                assert isinstance(r, ph.ContextResult) and r.content == f"content {sid}"
        assert no_tasks_left(before) and engine.fetches_running == 0
        for sid in IDS[1::2]:  # nothing was cached for a failed section, under any version
            assert not any(k.section_id == sid for k in engine.cache.tiers[0]._data)  # type: ignore[attr-defined]
        report = turn.report
        assert report is not None and report.errors == 15 and report.calls == 15


async def test_hanging_source_times_out_and_is_cancelled() -> None:
    hang = {"doc/1", "doc/2"}

    async def handler(sid: str, scope: ph.Scope) -> str:
        if sid in hang:
            await asyncio.sleep(3600)
        return f"content {sid}"

    src = ph.MockSource(handler, IDS)
    policy = ph.PrefetchPolicy(timeout_s=0.1)
    async with engine_with(src, policy=policy) as engine, engine.session("s") as session:
        before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        async with asyncio.timeout(30):  # a guard against a hang, not a speed assertion
            async with session.turn(expect=["doc/1", "doc/3"]) as turn:
                with pytest.raises(ph.HydrationTimeout) as info:
                    await turn.request_context("doc/1")  # joins the hanging prefetch, then tries once itself
                assert info.value.section_id == "doc/1"
                assert (await turn.request_context("doc/3")).content == "content doc/3"
                with pytest.raises(ph.HydrationTimeout):
                    await turn.request_context("doc/2")
                assert (await turn.request_context("doc/4")).content == "content doc/4"
        assert src.active == 0 and no_tasks_left(before) and engine.fetches_running == 0
        assert turn.report is not None and (turn.report.errors, turn.report.failed) == (2, 1)


async def test_a_blocking_sync_callable_holds_its_own_threads_never_the_event_loop() -> None:
    """A sync callable that blocks (here on an Event) stalls neither another source nor its own other sections."""
    release = threading.Event()
    timer = threading.Timer(5.0, release.set)  # ends the block if it ever holds the loop (the bug)
    timer.start()

    def blocking(sid: str, scope: ph.Scope) -> str:
        if sid == "slow":
            release.wait(30)
        return f"content {sid}"

    callable_src = ph.CallableSource(blocking, ["slow", "fast"], name="api", max_threads=2)
    other = ph.MockSource(lambda sid, scope: f"content {sid}", ["other"])
    engine = ph.Engine(sources=[callable_src, other], policy=ph.PrefetchPolicy(enabled=False))
    try:
        async with engine, engine.session("s") as session, session.turn() as turn:
            slow = asyncio.create_task(turn.request_context("slow"))
            await asyncio.sleep(0.2)  # the slow call is blocking in fn now
            assert (await turn.request_context("other")).content == "content other"
            assert (await turn.request_context("fast")).content == "content fast"  # the second thread
            assert not release.is_set(), "the other sections waited for the blocked call"
            release.set()
            assert (await slow).content == "content slow"
    finally:
        release.set()
        timer.cancel()


def test_callable_source_max_threads_must_be_positive() -> None:
    with pytest.raises(ph.ConfigError, match="max_threads"):
        ph.CallableSource(lambda sid, scope: "", ["a"], max_threads=0)


async def test_bailout_cancels_a_hanging_prefetch_nobody_asked_for() -> None:
    async def handler(sid: str, scope: ph.Scope) -> str:
        await asyncio.sleep(3600)
        return "never"

    src = ph.MockSource(handler, IDS)
    async with engine_with(src) as engine, engine.session("s") as session:
        before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        async with session.turn(expect=IDS[:3]) as turn:
            await asyncio.sleep(0.01)
        assert src.active == 0 and no_tasks_left(before)
        assert turn.report is not None and turn.report.cancelled == 3


async def test_partial_content_from_a_failing_read_is_never_cached() -> None:
    """A source that dies half-way (after producing part of the content) leaves nothing behind."""
    calls = {"n": 0}

    async def handler(sid: str, scope: ph.Scope) -> str:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionError("incomplete read: got 512 of 4096 bytes")
        return "complete content"

    src = ph.MockSource(handler, ["a"], latency_s=0.01)
    cache = ph.WarmCache([ph.MemoryTier()])
    async with engine_with(src, cache=cache) as engine, engine.session("s") as session:
        async with session.turn(expect=["a"]) as turn:  # the prefetch fails ...
            with pytest.raises(ph.SourceError, match="incomplete read"):  # ... and so does the retry
                await turn.request_context("a")
            assert len(cache.tiers[0]) == 0  # type: ignore[arg-type]
            r = await turn.request_context("a")
        assert (r.outcome, r.content) == ("miss", "complete content")


async def test_half_written_file_is_never_served_after_refresh_or_restart(tmp_path: Path) -> None:
    """A file caught mid-write is served as the source gave it, but never again once the file is whole."""
    root = tmp_path / "docs"
    root.mkdir()
    doc = root / "guide.md"
    full_v1 = "# Guide\n\nStep one.\nStep two.\nStep three.\n"
    full_v2 = "# Guide\n\nStep one (revised).\nStep two (revised).\nStep three (revised).\n"
    doc.write_text(full_v1, encoding="utf-8")
    cache_dir = tmp_path / "cache"

    def make_cache() -> ph.WarmCache:
        return ph.WarmCache([ph.MemoryTier(), ph.DiskTier(cache_dir)])

    policy = ph.PrefetchPolicy(enabled=False)
    async with engine_with(ph.DirectorySource(root), cache=make_cache(), policy=policy) as engine:
        async with engine.session("s") as session, session.turn() as turn:
            assert (await turn.request_context("guide")).content == full_v1
        doc.write_text(full_v2[:30], encoding="utf-8")  # a writer is half-way through
        engine.cache.tiers[0].__init__()  # type: ignore[misc]  # the memory tier restarted: force a hydration
        await engine.cache.tiers[1].clear()
        async with engine.session("s2") as session, session.turn() as turn:
            partial = await turn.request_context("guide")
        assert partial.content == full_v2[:30] + "\n"  # what the file held at that moment
        doc.write_text(full_v2, encoding="utf-8")  # the write completes
        engine.refresh()
        async with engine.session("s3") as session, session.turn() as turn:
            r = await turn.request_context("guide")
        assert (r.content, r.outcome) == (full_v2, "miss")
    async with engine_with(ph.DirectorySource(root), cache=make_cache(), policy=policy) as engine:
        async with engine.session("s4") as session, session.turn() as turn:
            r = await turn.request_context("guide")
        assert (r.content, r.outcome, r.tier) == (full_v2, "hit", "disk")


class Versioned(ph.MockSource):
    """A source whose content (and version) a test can change between listing and hydration."""

    def __init__(self, state: dict[str, str], **kw: object) -> None:
        self.state = state
        super().__init__(self.handle, self.sections(), **kw)  # type: ignore[arg-type]

    def sections(self) -> list[ph.Section]:
        return [ph.Section(id=sid, title=sid, version=v, order=i) for i, (sid, v) in enumerate(self.state.items())]

    def list_sections(self) -> list[ph.Section]:  # type: ignore[override]
        return self.sections()

    def handle(self, sid: str, scope: ph.Scope) -> ph.Hydrated:
        v = self.state[sid]
        return ph.Hydrated(section_id=sid, content=f"{sid} at {v}", version=v)


async def test_version_changing_during_a_prefetch_serves_the_new_version() -> None:
    state = {"a": "v1", "b": "v1"}
    src = Versioned(state, latency_s=0.1)
    async with engine_with(src) as engine, engine.session("s") as session:
        async with session.turn(expect=["a"]) as turn:
            await asyncio.sleep(0.02)
            state["a"] = "v2"  # changes while the prefetch is in flight (it reads at the end)
            r = await turn.request_context("a")
            assert (r.outcome, r.content, r.version) == ("inflight", "a at v2", "v2")
            assert engine.catalog.get("a").version == "v2"
            again = await turn.request_context("a")
            assert (again.outcome, again.content) == ("hit", "a at v2")


async def test_version_changing_between_turns_never_serves_the_old_one_after_refresh(tmp_path: Path) -> None:
    state = {"a": "v1", "b": "v1"}
    cache = ph.WarmCache([ph.MemoryTier(), ph.DiskTier(tmp_path / "cache")])
    async with engine_with(Versioned(state), cache=cache) as engine, engine.session("s") as session:
        async with session.turn(expect=["a", "b"]) as turn:
            assert (await turn.request_context("a")).content == "a at v1"
        for version in ("v2", "v3", "v4"):
            state["a"] = version
            engine.refresh()
            async with session.turn(expect=["a"]) as turn:
                await asyncio.sleep(0.01)
                r = await turn.request_context("a")
                assert (r.content, r.version) == (f"a at {version}", version)
                assert (await turn.request_context("a")).content == f"a at {version}"
    state["a"] = "v2"  # back to an old version after a restart: that version's entry is still right
    async with engine_with(Versioned(state), cache=ph.WarmCache([ph.DiskTier(tmp_path / "cache")])) as engine:
        async with engine.session("s2") as session, session.turn() as turn:
            r = await turn.request_context("a")
        assert (r.content, r.tier) == ("a at v2", "disk")


async def test_ttl_bounds_how_long_an_unrefreshed_change_can_be_served() -> None:
    state = {"a": "v1"}

    class Etagless(ph.MockSource):
        def list_sections(self) -> list[ph.Section]:  # type: ignore[override]
            return [ph.Section(id="a", title="a", version="")]

    src = Etagless(lambda sid, scope: f"content {state['a']}", ["a"])
    cache = ph.WarmCache([ph.MemoryTier()], ttl_s=0.05)
    async with engine_with(src, cache=cache, policy=ph.PrefetchPolicy(enabled=False)) as engine:
        async with engine.session("s") as session, session.turn() as turn:
            assert (await turn.request_context("a")).content == "content v1"
            state["a"] = "v2"
            await asyncio.sleep(0.1)
            r = await turn.request_context("a")
        assert (r.content, r.outcome) == ("content v2", "miss")


# --------------------------------------------------------------------------------------------------
# The disk tier: read-only, full, killed mid-write


def run_worker(*args: str, env: dict[str, str] | None = None, drop_root: bool = False) -> dict[str, object]:
    cmd = [sys.executable, str(WORKER), *args]
    if drop_root and os.geteuid() == 0:
        # root ignores file modes; drop the capabilities that let it, so read-only means read-only.
        setpriv = shutil.which("setpriv")
        require(setpriv, "running the suite as root needs util-linux setpriv to make a directory read-only")
        assert setpriv is not None
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def verify_directory(directory: Path, upto: int) -> set[int]:
    """Every entry a fresh tier returns for indexes < ``upto`` is intact and exactly what was written."""
    tier = ph.DiskTier(directory)
    found: set[int] = set()
    try:
        for i in range(upto):
            entry = await tier.get(key_of(i))
            if entry is not None:
                assert entry.intact() and entry.content == make_content(i), f"entry {i} is torn or wrong"
                found.add(i)
        assert tier.rejected == 0
    finally:
        await tier.aclose()
    return found


async def serve_all(directory: Path, n: int) -> list[ph.ContextResult]:
    cache = ph.WarmCache([ph.MemoryTier(), ph.DiskTier(directory)])
    policy = ph.PrefetchPolicy(enabled=False)  # outcomes then say exactly what the disk held
    async with (
        engine_with(mock_source(n), cache=cache, policy=policy) as engine,
        engine.session("c", tenant="tenant") as s,
    ):
        async with s.turn() as turn:
            results = [await turn.request_context(section_id(i)) for i in range(n)]
    assert [r.content for r in results] == [make_content(i) for i in range(n)]
    return results


async def test_disk_filling_up_degrades_to_the_miss_path(tmp_path: Path) -> None:
    result = run_worker("full", str(tmp_path / "cache"), env={"FSIZE_LIMIT": str(300_000)})
    assert result["served"] == 120 and result["wrong"] == [] and result["errors"] == []
    warnings = result["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1 and "disk cache write failed" in warnings[0]
    assert await verify_directory(tmp_path / "cache", 120)
    await serve_all(tmp_path / "cache", 120)


async def test_disk_turning_read_only_degrades_to_the_miss_path(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    os.chmod(tmp_path, 0o777)
    try:
        result = run_worker("readonly", str(directory), drop_root=True)
        assert result["served"] == 120 and result["wrong"] == [] and result["errors"] == []
        assert await verify_directory(directory, 120)
    finally:
        for dirpath, _, _ in os.walk(directory):
            os.chmod(dirpath, 0o755)


async def test_read_only_directory_at_start_is_a_clear_error(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    subprocess.run([sys.executable, str(WORKER), "fill", str(directory), "5"], check=True, capture_output=True)
    try:
        result = run_worker("readonly-start", str(directory), drop_root=True)
        if result.get("opened") is False:  # refused at start, naming the directory and the reason
            assert result["error"] == f"cannot open disk cache at {directory}: attempt to write a readonly database"
        else:  # or opened for reading: then it must serve everything right
            assert (result["served"], result["wrong"], result["errors"]) == (60, [], [])
    finally:
        for dirpath, _, _ in os.walk(directory):
            os.chmod(dirpath, 0o755)


def kill_writer_midway(directory: Path, start: int, after: int) -> int:
    """Start a writer, SIGKILL it once it has stored ``after`` entries; the last index it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "write", str(directory), str(start)], stdout=subprocess.PIPE, text=True
    )
    last = start - 1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            last = int(line)
            if last >= start + after:
                break
        time.sleep(0.003 * (start % 7))  # land the kill at varying points of the next write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return last


async def test_sigkill_during_disk_writes_never_leaves_a_torn_entry(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    start = 0
    for round_ in range(4):
        acknowledged = kill_writer_midway(directory, start, after=40 + 10 * round_)
        found = await verify_directory(directory, acknowledged + 50)
        # Every acknowledged write survived the kill (a process crash, not a power cut).
        assert set(range(acknowledged + 1)) <= found
        start = max(found) + 1
    found = await verify_directory(directory, start + 100)
    results = await serve_all(directory, start + 100)
    assert [r.outcome for r in results] == ["hit" if i in found else "miss" for i in range(start + 100)]


class Broken:
    """A third-party source that breaks the protocol by returning the wrong type."""

    name = "broken"
    speculative = True

    def __init__(self, ret: object) -> None:
        self.ret = ret

    def list_sections(self) -> list[ph.Section]:
        return [ph.Section(id="a", title="a", version="v"), ph.Section(id="b", title="b", version="v")]

    async def hydrate(self, section_id: str, *, scope: ph.Scope) -> object:
        return self.ret if section_id == "a" else ph.Hydrated(section_id="b", content="fine", version="v")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    "ret",
    [
        None,
        "a bare string",
        ph.Hydrated(section_id="a", content=b"bytes", version="v"),  # type: ignore[arg-type]
        ph.Hydrated(section_id="a", content="ok", version=5),  # type: ignore[arg-type]
        ph.Hydrated(section_id="b", content="the wrong section", version="v"),
    ],
    ids=repr,
)
async def test_a_source_breaking_the_protocol_is_a_source_error(ret: object) -> None:
    async with engine_with(Broken(ret)) as engine, engine.session("s") as session:  # type: ignore[arg-type]
        async with session.turn(expect=["a"]) as turn:
            with pytest.raises(ph.SourceError, match="'broken' returned"):
                await turn.request_context("a")
            assert (await turn.request_context("b")).content == "fine"
        assert turn.report is not None and turn.report.failed == 1


async def test_closing_a_disk_tier_leaves_no_file_open(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    results = await serve_all(directory, 20)  # writes go through worker threads
    assert len(results) == 20

    def open_files() -> list[str]:
        fds = Path("/proc/self/fd")
        return [str(p.resolve()) for p in fds.iterdir() if str(p.resolve()).startswith(str(directory))]

    assert open_files() == []


async def test_processes_writing_one_disk_tier_at_once_leave_only_intact_entries(tmp_path: Path) -> None:
    """Two server processes sharing a cache directory (same keys, same moment), one killed mid-way."""
    directory = tmp_path / "cache"
    directory.mkdir()
    filler = subprocess.Popen([sys.executable, str(WORKER), "fill", str(directory), "150"], stdout=subprocess.DEVNULL)
    acknowledged = kill_writer_midway(directory, 0, after=60)
    assert filler.wait(timeout=120) == 0
    found = await verify_directory(directory, 200)
    assert set(range(150)) <= found and set(range(acknowledged + 1)) <= found
