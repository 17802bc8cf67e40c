"""Reads under a DirectorySource root that races and bad file types cannot turn into leaks or stalls.

The swap test is the attack from the hardening issue: a thread replaces a directory inside the root
with a symlink to an outside directory of the same shape, and back, in a loop, while sessions of
many tenants request the files below it. Before the fix, the source checked the resolved path and
then opened the path again, so a swap between the two served outside content, which the engine then
adopted as the section's new version and wrote to every cache tier.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import prehydrate as ph

from .conftest import SECRET
from .test_tenants import all_entries

FILES = 4


@pytest.fixture
def twin_trees(tmp_path: Path) -> tuple[Path, Path]:
    """A root with ``sub/aN.md`` and, outside it, a tree of the same shape holding the secret."""
    root, outside = tmp_path / "root", tmp_path / "outside" / "sub"
    (root / "sub").mkdir(parents=True)
    outside.mkdir(parents=True)
    (root / "top.md").write_text("# Top\n\nalways here\n", encoding="utf-8")
    for i in range(FILES):
        (root / "sub" / f"a{i}.md").write_text(f"# A{i}\n\ninside {i}\n", encoding="utf-8")
        (outside / f"a{i}.md").write_text(f"# A{i}\n\n{SECRET} {i}\n", encoding="utf-8")
    return root, outside


def _swap_loop(root: Path, outside: Path, stop: threading.Event, swaps: list[int]) -> None:
    real, moved = root / "sub", root / "sub.real"
    while not stop.is_set():
        os.rename(real, moved)
        os.symlink(outside, real, target_is_directory=True)
        time.sleep(0)
        os.unlink(real)
        os.rename(moved, real)
        swaps[0] += 1
        time.sleep(0)  # as long in the real state as in the swapped one


@contextmanager
def swapping(root: Path, outside: Path) -> Iterator[list[int]]:
    """Run the swap loop in a thread for the duration of the block; yields the swap count."""
    stop, swaps = threading.Event(), [0]
    thread = threading.Thread(target=_swap_loop, args=(root, outside, stop, swaps), daemon=True)
    thread.start()
    try:
        yield swaps
    finally:
        stop.set()
        thread.join(5)


async def test_a_directory_swapped_for_an_escaping_symlink_in_a_loop_never_serves_outside_content(
    twin_trees: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = twin_trees
    src = ph.DirectorySource(root, watch=False)  # the read path under test, not the relisting
    cache = ph.WarmCache([ph.MemoryTier(), ph.DiskTier(tmp_path / "cache")])
    served: list[str] = []
    failed = 0
    async with ph.Engine(sources=[src], cache=cache, policy=ph.PrefetchPolicy(enabled=False)) as engine:
        ids = [s.id for s in engine.catalog if s.id.startswith("sub/")]
        assert len(ids) == FILES
        with swapping(root, tmp_path / "outside" / "sub") as swaps:
            for n in range(400):  # a fresh tenant each round: every request is a miss that reads the file
                async with engine.session(f"s{n}", tenant=f"t{n}") as session, session.turn() as turn:
                    for sid in ids:
                        try:
                            served.append((await turn.request_context(sid)).content)
                        except ph.PrehydrateError as exc:
                            failed += 1
                            assert SECRET not in str(exc)
        entries = await all_entries(engine.cache)
        versions = {s.id: s.version for s in engine.catalog}
    assert swaps[0] > 50, "the swap loop barely ran; the test exercised nothing"
    assert served, "every request failed; the test exercised nothing"
    leaked = [c for c in served if SECRET in c]
    assert not leaked, f"{len(leaked)} of {len(served)} responses served content from outside the root"
    assert not [e for e in entries if SECRET in e.content], "outside content was cached"
    for blob in (tmp_path / "cache").rglob("*"):
        if blob.is_file():
            assert SECRET.encode() not in blob.read_bytes(), f"outside content reached the disk tier ({blob.name})"
    fresh = {s.id: s.version for s in ph.DirectorySource(root, watch=False).list_sections()}
    assert versions == fresh, "the catalog adopted a version that is not the content inside the root"


def test_direct_reads_during_swaps_never_return_outside_content(twin_trees: tuple[Path, Path]) -> None:
    """The source alone, many reads: every read is inside content or an error, never the secret."""
    root, outside = twin_trees
    src = ph.DirectorySource(root, watch=False)
    assert len(src.list_sections()) == FILES + 1  # listed before the swapping starts
    ok = refused = 0
    with swapping(root, outside) as swaps:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for i in range(FILES):
                try:
                    hydrated = asyncio.run(src.hydrate(f"sub/a{i}", scope=ph.Scope()))
                except ph.PrehydrateError:
                    refused += 1
                    continue
                assert SECRET not in hydrated.content
                ok += 1
    assert ok > 0 and refused > 0 and swaps[0] > 50


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX only")
async def test_a_fifo_in_the_root_blocks_neither_start_nor_other_sections(tmp_path: Path) -> None:
    """A FIFO named like a document is skipped at listing, and one swapped in later fails at once."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.md").write_text("# Ok\n\nserved\n", encoding="utf-8")
    (root / "later.md").write_text("# Later\n\nreplaced by a FIFO\n", encoding="utf-8")
    os.mkfifo(root / "x.md")
    src = ph.DirectorySource(root)
    async with asyncio.timeout(10):  # before the fix: listing blocked on open() forever
        async with ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False, timeout_s=5)) as engine:
            assert [rel for rel, _ in src.skipped] == ["x.md"]
            assert "not a regular file" in src.skipped[0][1]
            (root / "later.md").unlink()
            os.mkfifo(root / "later.md")
            async with engine.session("s") as session, session.turn() as turn:
                for _ in range(20):  # more than any thread pool: a blocked read would pin a thread each
                    with pytest.raises(ph.InputError, match="not a regular file"):
                        await turn.request_context("later")
                result = await turn.request_context("ok")
                assert result.content.startswith("# Ok")


async def test_a_deleted_file_error_does_not_show_the_server_path(tmp_path: Path) -> None:
    root = tmp_path / "private-server-dir"
    root.mkdir()
    (root / "gone.md").write_text("# Gone\n\nsoon\n", encoding="utf-8")
    async with ph.Engine(sources=[ph.DirectorySource(root)], policy=ph.PrefetchPolicy(enabled=False)) as engine:
        (root / "gone.md").unlink()
        async with engine.session("s") as session, session.turn() as turn:
            with pytest.raises(ph.SourceError) as info:
                await turn.request_context("gone")
    assert "gone.md" in str(info.value)
    assert str(tmp_path) not in str(info.value)


class _HangingDirectory(ph.DirectorySource):
    """A real DirectorySource whose file system hangs on ``hang*`` files (as a dead network mount
    does) until released: reads of those block a thread, the rest of the source works."""

    def __init__(self, root: Path, release: threading.Event) -> None:
        super().__init__(root, name="hanging", max_threads=2, watch=False)
        self.release = release
        self.listed = False

    def _read(self, rel: str) -> str:
        if self.listed and rel.startswith("hang"):
            self.release.wait(30)
        return super()._read(rel)


async def test_a_hanging_source_holds_only_its_own_threads_and_others_keep_being_served(tmp_path: Path) -> None:
    slow_root, fast_root = tmp_path / "slow", tmp_path / "fast"
    slow_root.mkdir()
    fast_root.mkdir()
    (slow_root / "hang.md").write_text("# Hang\n\nnever arrives\n", encoding="utf-8")
    for i in range(10):
        (fast_root / f"f{i}.md").write_text(f"# F{i}\n\nfast {i}\n", encoding="utf-8")
    release = threading.Event()
    slow = _HangingDirectory(slow_root, release)
    policy = ph.PrefetchPolicy(enabled=False, timeout_s=0.5)
    try:
        async with ph.Engine(sources=[slow, ph.DirectorySource(fast_root)], policy=policy) as engine:
            slow.listed = True
            async with engine.session("s") as session, session.turn() as turn:
                hung = [turn.request_context("hang") for _ in range(12)]  # more than any shared pool
                results = await asyncio.gather(*hung, return_exceptions=True)
                assert all(isinstance(r, ph.HydrationTimeout) for r in results)
                for i in range(10):  # before the fix: the shared default pool was full of hung reads
                    assert (await turn.request_context(f"f{i}")).content.startswith(f"# F{i}")
    finally:
        release.set()
