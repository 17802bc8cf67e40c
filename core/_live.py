"""Live sources: sections that change while agents work, and how the engine follows them.

A source that can tell when its sections change implements :class:`LiveSource`: ``changes()`` is
an async iterator of :class:`SectionChanges` (new stubs for added and changed sections, ids of
removed ones). The engine runs one :class:`Follower` task per such source and folds every change
set into its catalog, so the next lookup is keyed on the new version: an entry cached at the old
version is never looked up again, and a prefetch of an old version is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from ._sections import Section

__all__ = ["Follower", "LiveSource", "SectionChanges", "diff_sections", "merge_changes"]

logger = logging.getLogger("prehydrate.live")


@dataclass(frozen=True, slots=True)
class SectionChanges:
    """What a source's sections did between two looks: new stubs for added and changed ones, removed ids."""

    added: tuple[Section, ...] = ()
    changed: tuple[Section, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id the change set touches: added, then changed, then removed."""
        return tuple(s.id for s in self.added) + tuple(s.id for s in self.changed) + self.removed


@runtime_checkable
class LiveSource(Protocol):
    """A source that reports its own changes (a watched folder, a polled table)."""

    name: str

    def changes(self) -> AsyncIterator[SectionChanges]:
        """Yield each change set as it is observed; runs until cancelled."""
        ...


def diff_sections(before: Mapping[str, Section], after: Sequence[Section]) -> SectionChanges:
    """What changed between two listings of one source: added and changed stubs, removed ids."""
    now = {s.id: s for s in after}
    return SectionChanges(
        added=tuple(s for s in after if s.id not in before),
        changed=tuple(s for s in after if s.id in before and s.version != before[s.id].version),
        removed=tuple(sid for sid in before if sid not in now),
    )


def merge_changes(sections: Sequence[Section], changes: SectionChanges, source: str) -> list[Section]:
    """The catalog's sections with one source's change set folded in, renumbered in document order.

    Changed stubs take their old place, removed ones leave, added ones follow the source's last
    section (or go last). An "added" id the catalog already has counts as changed, and a change
    to an id it does not have as added, so a change set that crosses a refresh still applies.
    """
    fresh = {s.id: s for s in (*changes.added, *changes.changed)}
    gone = set(changes.removed)
    out: list[Section] = []
    last_of_source = -1
    for s in sections:
        if s.id in gone:
            continue
        out.append(fresh.pop(s.id, s))
        if out[-1].source == source:
            last_of_source = len(out) - 1
    tail = [replace(s, source=s.source or source) for s in fresh.values()]
    out[last_of_source + 1 : last_of_source + 1] = tail
    return [replace(s, order=i) for i, s in enumerate(out)]


class Follower:
    """One task per live source, handing each change set to ``apply`` in the order observed.

    A source whose ``changes()`` fails is logged and followed no further; serving goes on with the
    catalog as it was (an ``engine.refresh()`` still picks changes up).
    """

    def __init__(self, apply: Callable[[LiveSource, SectionChanges], Awaitable[None]]) -> None:
        self._apply = apply
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, sources: Iterable[object]) -> int:
        """Follow every source that is a :class:`LiveSource`; returns how many are followed."""
        for src in sources:
            if isinstance(src, LiveSource):
                self._tasks.append(asyncio.get_running_loop().create_task(self._follow(src)))
        return len(self._tasks)

    async def _follow(self, src: LiveSource) -> None:
        try:
            async for found in src.changes():
                if found:
                    await self._apply(src, found)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken watcher must not take the engine down; it stops following
            logger.warning(
                "source %r stopped reporting changes (%s: %s); refresh to pick up changes",
                src.name,
                type(exc).__name__,
                exc,
            )

    async def aclose(self) -> None:
        """Stop following (cancel the tasks and wait for them)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
