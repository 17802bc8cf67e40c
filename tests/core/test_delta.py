"""Delta on re-request: a unified diff from a version the caller holds, when the cache has it and it is smaller."""

from __future__ import annotations

from pathlib import Path

import pytest

import prehydrate as ph

LONG = "".join(f"Line {i} of a long section that barely changes between versions.\n" for i in range(60))


async def _two_versions(tmp_path: Path, old: str, new: str) -> tuple[ph.ContextResult, ph.Engine, Path]:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.txt").write_text(old)
    engine = ph.Engine(sources=[ph.DirectorySource(root, watch=False)], predictor=ph.SequentialPredictor())
    await engine.start()
    async with engine.session("s") as session, session.turn(query="q") as turn:
        first = await turn.request_context("guide")
    (root / "guide.txt").write_text(new)
    engine.refresh()
    return first, engine, root


async def _again(engine: ph.Engine, since: str | None) -> ph.ContextResult:
    async with engine.session("s2") as session, session.turn(query="q") as turn:
        return await turn.request_context("guide", since_version=since)


async def test_a_small_change_comes_back_as_a_unified_diff(tmp_path: Path) -> None:
    new = LONG.replace("Line 30 of", "Line thirty of")
    first, engine, _ = await _two_versions(tmp_path, LONG, new)
    async with engine:
        r = await _again(engine, first.version)
    assert r.delta and r.base_version == first.version and r.version != first.version
    assert r.content == new  # the engine result keeps the whole text beside the diff
    assert r.diff is not None and len(r.diff) < len(new)
    assert "-Line 30 of a long" in r.diff and "+Line thirty of a long" in r.diff
    assert r.diff.startswith(f"--- guide@{first.version}\n+++ guide@{r.version}\n")


async def test_a_rewrite_bigger_as_a_diff_comes_back_whole(tmp_path: Path) -> None:
    first, engine, _ = await _two_versions(tmp_path, "Short old text.\n", "Entirely different words now.\n")
    async with engine:
        r = await _again(engine, first.version)
    assert not r.delta and r.diff is None and r.base_version is None
    assert r.content == "Entirely different words now.\n"


@pytest.mark.parametrize("since", ["0123456789abcdef", ""])
async def test_an_unknown_since_version_gets_the_full_content(tmp_path: Path, since: str) -> None:
    new = LONG.replace("Line 3 of", "Line three of")
    _, engine, _ = await _two_versions(tmp_path, LONG, new)
    async with engine:
        r = await _again(engine, since)
    assert not r.delta and r.content == new


async def test_an_evicted_base_gets_the_full_content(tmp_path: Path) -> None:
    new = LONG.replace("Line 3 of", "Line three of")
    first, engine, _ = await _two_versions(tmp_path, LONG, new)
    async with engine:
        await engine.cache.clear()
        r = await _again(engine, first.version)
    assert not r.delta and r.content == new


async def test_the_current_version_gives_an_empty_diff(tmp_path: Path) -> None:
    first, engine, _ = await _two_versions(tmp_path, LONG, LONG)
    async with engine:
        r = await _again(engine, first.version)
    assert r.delta and r.diff == "" and r.version == first.version


async def test_a_since_version_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    _, engine, _ = await _two_versions(tmp_path, LONG, LONG)
    async with engine, engine.session("s3") as session, session.turn(query="q") as turn:
        with pytest.raises(ph.InputError, match="since_version"):
            await turn.request_context("guide", since_version=3)  # type: ignore[arg-type]
