"""A watched DirectorySource: edits, atomic saves, adds, removes, renames and symlinks seen by the engine."""

from __future__ import annotations

import asyncio
import os
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
