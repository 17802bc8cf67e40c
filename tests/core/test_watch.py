"""A watched DirectorySource: edits, atomic saves, adds, removes, renames and symlinks seen by the engine."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import prehydrate as ph


def save_atomically(path: Path, text: str) -> None:
    """What editors do: write a temp file beside it, then rename it over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Watched:
    """An engine over a watched folder, with the SectionsChanged events it emitted."""

    def __init__(self, engine: ph.Engine) -> None:
        self.engine = engine
        self.events: asyncio.Queue[ph.SectionsChanged] = asyncio.Queue()
        engine.subscribe(lambda e: self.events.put_nowait(e) if isinstance(e, ph.SectionsChanged) else None)

    async def next_change(self) -> ph.SectionsChanged:
        return await asyncio.wait_for(self.events.get(), timeout=10)

    async def fetch(self, section_id: str) -> ph.ContextResult:
        async with self.engine.session("s", record=False) as session, session.turn(query="q") as turn:
            return await turn.request_context(section_id)


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[Watched]:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "refunds.md").write_text("Refunds within 14 days.\n", encoding="utf-8")
    (root / "intro.md").write_text("Welcome.\n", encoding="utf-8")
    async with ph.Engine(sources=[ph.DirectorySource(root)]) as engine:
        w = Watched(engine)
        await asyncio.sleep(0.3)  # the watcher's baseline listing runs in a thread at start
        yield w


async def test_an_atomic_save_is_served_at_its_new_content(watched: Watched, tmp_path: Path) -> None:
    assert (await watched.fetch("guides/refunds")).content.startswith("Refunds within 14 days.")
    save_atomically(tmp_path / "docs" / "guides" / "refunds.md", "Refunds within 30 days.\n")
    change = await watched.next_change()
    assert change.changed == ("guides/refunds",)
    assert (await watched.fetch("guides/refunds")).content.startswith("Refunds within 30 days.")


async def test_added_removed_and_renamed_files(watched: Watched, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "new.md").write_text("Fresh.\n", encoding="utf-8")
    assert (await watched.next_change()).added == ("new",)
    assert (await watched.fetch("new")).content == "Fresh.\n"
    os.rename(root / "intro.md", root / "welcome.md")
    change = await watched.next_change()
    assert (change.added, change.removed) == (("welcome",), ("intro",))
    with pytest.raises(ph.UnknownSectionError):
        await watched.fetch("intro")
    (root / "new.md").unlink()
    assert (await watched.next_change()).removed == ("new",)


async def test_a_file_replaced_by_a_symlink_to_outside_is_refused(watched: Watched, tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("TOP SECRET\n", encoding="utf-8")
    target = tmp_path / "docs" / "intro.md"
    target.unlink()
    target.symlink_to(outside)
    change = await watched.next_change()
    assert change.removed == ("intro",)
    with pytest.raises(ph.UnknownSectionError):
        await watched.fetch("intro")


async def test_watch_off_waits_for_a_refresh(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("one\n", encoding="utf-8")
    async with ph.Engine(sources=[ph.DirectorySource(root, watch=False)]) as engine:
        w = Watched(engine)
        save_atomically(root / "a.md", "two\n")
        await asyncio.sleep(0.6)
        assert w.events.empty()
        engine.refresh()
        assert (await w.fetch("a")).content == "two\n"


class SlowDirectory(ph.DirectorySource):
    """A watched folder whose reads take a while, so prefetches are still running when it changes."""

    async def hydrate(self, section_id: str, *, scope: ph.Scope) -> ph.Hydrated:
        await asyncio.sleep(0.6)
        return await super().hydrate(section_id, scope=scope)


async def test_a_directory_removed_while_its_prefetches_run(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.md").write_text("# A\n\nSection a.\n")
    (root / "sub" / "b.md").write_text("# B\n\nSection b.\n")
    (root / "other.md").write_text("# Other\n\nStays.\n")
    removed = asyncio.Event()
    async with ph.Engine(sources=[SlowDirectory(root)], predictor=ph.SequentialPredictor()) as engine:
        engine.subscribe(lambda e: removed.set() if isinstance(e, ph.SectionsChanged) and e.removed else None)
        async with engine.session("s") as session:
            async with session.turn(query="q", expect=["sub/a", "sub/b"]) as turn:
                await asyncio.sleep(0.1)  # both prefetches are reading
                assert engine.fetches_running == 2
                shutil.rmtree(root / "sub")
                async with asyncio.timeout(10):
                    await removed.wait()
                assert (await turn.request_context("other")).content.endswith("Stays.\n")
                with pytest.raises(ph.UnknownSectionError):
                    await turn.request_context("sub/a")
            report = turn.report
    assert report is not None and report.cancelled == 2 and report.wasted == 2 and report.prefetched == 2
    assert not {"sub/a", "sub/b"} & set(engine.catalog.ids)


def test_relisting_only_the_changed_files_gives_the_full_listing(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for name in ("a.md", "b.md", "sub/c.md", "sub/d.md"):
        (root / name).write_text(f"# {name}\n\nText of {name}.\n\n## Part\n\nMore of {name}.\n")
    src = ph.DirectorySource(root, watch=False)
    src.list_sections()

    def check(*changed: str) -> None:
        incremental = src.relist({root / rel for rel in changed})
        assert [(s.id, s.version, s.order) for s in incremental] == [
            (s.id, s.version, s.order) for s in ph.DirectorySource(root, watch=False).list_sections()
        ]

    (root / "a.md").write_text("# a.md\n\nEdited.\n")
    check("a.md")
    (root / ".b.md.tmp").write_text("# b\n\nSaved atomically.\n")
    os.replace(root / ".b.md.tmp", root / "b.md")
    check(".b.md.tmp", "b.md")
    (root / "sub" / "e.md").write_text("# e\n\nNew file.\n")
    check("sub/e.md")
    (root / "a.txt").write_text("A text file whose short id clashes with a.md.\n")  # both keep their suffix
    check("a.txt")
    shutil.rmtree(root / "sub")
    check("sub")
    (root / "new").mkdir()
    (root / "new" / "f.md").write_text("# f\n\nIn a folder that appeared.\n")
    check("new")
