"""The contract every source keeps, as a test base class users subclass.

A source test subclasses :class:`SourceConformance` (pytest collects only classes named ``Test*``)
and provides the ``make_source`` fixture: a factory of fresh sources over the same content (the
engine test closes the one it uses). Every test below then runs for that source: listing, hydration,
unknown ids, idempotence of a speculative source (also concurrently), a miss then a warm hit behind
a real :class:`~prehydrate.Engine`, and closing twice. Each assertion names the broken rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import pytest

import prehydrate as ph

from .._sources import check_section_id

__all__ = ["SourceConformance"]

UNKNOWN_ID = "conformance/no-such-section"


class SourceConformance:
    """Inherit, then provide ``make_source``; every test here runs for the subclass."""

    max_sections: ClassVar[int] = 20
    """How many listed sections the hydration tests read (large sources are sampled from the start)."""
    scope: ClassVar[ph.Scope] = ph.Scope(tenant="conformance")
    """The scope every hydration runs in."""

    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        """A factory of fresh sources over this test's content; subclasses override it."""
        raise NotImplementedError("a SourceConformance subclass provides the make_source fixture")

    @pytest.fixture
    async def source(self, make_source: Callable[[], ph.Source]) -> AsyncIterator[ph.Source]:
        src = make_source()
        try:
            yield src
        finally:
            await src.aclose()

    def sample(self, source: ph.Source) -> list[ph.Section]:
        """The sections the hydration tests read: the first ``max_sections`` listed."""
        sections = list(source.list_sections())
        assert sections, "list_sections() returned nothing: give the suite a source with content"
        return sections[: self.max_sections]

    def test_implements_the_source_protocol(self, source: ph.Source) -> None:
        assert isinstance(source, ph.Source), "does not implement the Source protocol"
        assert isinstance(source.name, str) and source.name, "name must be a non-empty string"
        assert isinstance(source.speculative, bool), "speculative must be a bool"

    def test_lists_unique_valid_sections_in_a_stable_order(self, source: ph.Source) -> None:
        sections = list(source.list_sections())
        assert sections, "list_sections() returned nothing"
        ids = [s.id for s in sections]
        assert len(ids) == len(set(ids)), "section ids must be unique"
        for s in sections:
            assert isinstance(s, ph.Section), f"list_sections() must yield Section objects, got {type(s).__name__}"
            check_section_id(s.id)
            assert isinstance(s.title, str), f"{s.id}: title must be a string"
        assert [s.id for s in source.list_sections()] == ids, "listing twice must give the same ids in the same order"

    async def test_hydrates_every_listed_section(self, source: ph.Source) -> None:
        for s in self.sample(source):
            h = await source.hydrate(s.id, scope=self.scope)
            assert isinstance(h, ph.Hydrated), f"{s.id}: hydrate must return Hydrated"
            assert h.section_id == s.id, f"{s.id}: hydrate returned section {h.section_id!r}"
            assert isinstance(h.content, str), f"{s.id}: content must be a string"
            assert isinstance(h.version, str) and h.version, f"{s.id}: version must be a non-empty string"

    async def test_speculative_hydration_is_idempotent_also_concurrently(self, source: ph.Source) -> None:
        if not source.speculative:
            return  # only a speculative source promises this: the engine never prefetches the others
        sample = self.sample(source)
        first = {s.id: await source.hydrate(s.id, scope=self.scope) for s in sample}
        again = await asyncio.gather(*(source.hydrate(s.id, scope=self.scope) for s in sample))
        for h in again:
            before = first[h.section_id]
            assert (h.content, h.version) == (before.content, before.version), (
                f"{h.section_id}: a speculative source must be idempotent"
            )

    async def test_unknown_id_raises_unknown_section_error(self, source: ph.Source) -> None:
        assert UNKNOWN_ID not in {s.id for s in source.list_sections()}
        with pytest.raises(ph.UnknownSectionError):
            await source.hydrate(UNKNOWN_ID, scope=self.scope)

    async def test_a_miss_then_a_warm_hit_behind_an_engine(self, make_source: Callable[[], ph.Source]) -> None:
        source = make_source()
        first = self.sample(source)[0]
        direct = await source.hydrate(first.id, scope=self.scope)
        engine = ph.Engine(sources=[source], learn_on_start=False)
        await engine.start()
        try:
            async with engine.session("conformance", tenant=self.scope.tenant) as session:
                async with session.turn(query="conformance") as turn:
                    r1 = await turn.request_context(first.id)
                    r2 = await turn.request_context(first.id)
        finally:
            await engine.aclose()  # closes the source
        assert r1.content == direct.content, f"{first.id}: the engine served other content than hydrate()"
        assert r2.outcome == "hit" and r2.content == r1.content, f"{first.id}: a second request must hit the cache"
        await source.aclose()  # closing twice is allowed
