"""Live sources: change sets folded into the catalog, stale prefetches cancelled, events emitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import prehydrate as ph

SCOPE = ph.Scope()


def stub(sid: str, version: str = "v1", source: str = "live") -> ph.Section:
    return ph.Section(id=sid, title=sid, version=version, source=source)


def test_merge_keeps_places_drops_removed_and_adds_after_the_source() -> None:
    from prehydrate._live import merge_changes

    sections = [stub("a"), stub("b"), stub("x", source="other"), stub("c")]
    changes = ph.SectionChanges(added=(stub("d"),), changed=(stub("b", "v2"),), removed=("a",))
    merged = merge_changes(sections, changes, "live")
    assert [(s.id, s.version, s.order) for s in merged] == [
        ("b", "v2", 0),
        ("x", "v1", 1),
        ("c", "v1", 2),
        ("d", "v1", 3),
    ]


class QueueSource(ph.MockSource):
    """A MockSource whose content can change, reporting each change through ``changes()``."""

    def __init__(self, texts: dict[str, str], latency_s: float) -> None:
        self.texts = texts
        self.queue: asyncio.Queue[ph.SectionChanges] = asyncio.Queue()
        super().__init__(lambda sid, scope: self.texts[sid], list(texts), name="live", latency_s=latency_s)

    def section(self, sid: str) -> ph.Section:
        return ph.Section(id=sid, title=sid, version=ph.content_version(self.texts[sid]), source="live")

    def list_sections(self) -> list[ph.Section]:
        return [self.section(sid) for sid in self.texts]

    async def changes(self) -> AsyncIterator[ph.SectionChanges]:
        while True:
            yield await self.queue.get()


async def test_a_change_cancels_the_old_versions_prefetch_and_the_request_gets_the_new_text() -> None:
    src = QueueSource({"a": "old a", "b": "old b"}, latency_s=0.5)
    events: list[object] = []
    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor()) as engine:
        assert isinstance(src, ph.LiveSource)
        engine.subscribe(events.append)
        async with engine.session("s") as session:
            async with session.turn(query="q", expect=["b"]) as turn:
                await asyncio.sleep(0.1)  # the prefetch of b (old version) is running
                src.texts["b"] = "new b"
                await src.queue.put(ph.SectionChanges(changed=(src.section("b"),)))
                while not any(isinstance(e, ph.SectionsChanged) for e in events):
                    await asyncio.sleep(0.01)
                result = await turn.request_context("b")
            report = turn.report
    assert result.content == "new b"
    assert result.outcome == "miss"
    assert report is not None and report.cancelled == 1 and report.wasted == 1
    assert engine.catalog.get("b").version == ph.content_version("new b")


async def test_a_removed_section_is_unknown_and_its_prefetch_is_cancelled_without_an_error() -> None:
    src = QueueSource({"a": "a text", "b": "b text"}, latency_s=0.5)
    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor()) as engine:
        async with engine.session("s") as session:
            async with session.turn(query="q", expect=["b"]) as turn:
                await asyncio.sleep(0.1)
                del src.texts["b"]
                await src.queue.put(ph.SectionChanges(removed=("b",)))
                for _ in range(200):
                    if "b" not in engine.catalog:
                        break
                    await asyncio.sleep(0.01)
                assert "b" not in engine.catalog
                assert (await turn.request_context("a")).content == "a text"
            report = turn.report
    assert report is not None and report.cancelled == 1


async def test_a_broken_change_stream_stops_following_but_serving_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(QueueSource):
        async def changes(self) -> AsyncIterator[ph.SectionChanges]:
            raise OSError("watcher died")
            yield ph.SectionChanges()  # pragma: no cover - makes this an async generator

    src = Broken({"a": "a text"}, latency_s=0.0)
    async with ph.Engine(sources=[src]) as engine:
        await asyncio.sleep(0.01)
        async with engine.session("s") as session, session.turn(query="q") as turn:
            assert (await turn.request_context("a")).content == "a text"
    assert "source 'live' stopped reporting changes" in caplog.text


async def test_a_change_to_an_id_the_catalog_lacks_is_added_and_following_goes_on() -> None:
    class Hiding(QueueSource):
        def list_sections(self) -> list[ph.Section]:  # z exists but was not listed at start
            return [self.section("a")]

    src = Hiding({"a": "a text", "z": "z text"}, latency_s=0.0)
    events: list[ph.SectionsChanged] = []
    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor()) as engine:
        engine.subscribe(lambda e: events.append(e) if isinstance(e, ph.SectionsChanged) else None)
        await src.queue.put(ph.SectionChanges(changed=(src.section("z"),)))  # crossed a refresh: really new
        src.texts["a"] = "a edited"
        await src.queue.put(ph.SectionChanges(changed=(src.section("a"),)))  # the fast, in-place path
        async with asyncio.timeout(5):
            while len(events) < 2:
                await asyncio.sleep(0.01)
        assert engine.catalog.ids == ["a", "z"]
        async with engine.session("s") as session, session.turn(query="q", expect=[]) as turn:
            assert (await turn.request_context("a")).content == "a edited"
            assert (await turn.request_context("z")).content == "z text"
