"""Watching files: a source's sections re-listed when the files under it change (watchfiles).

The watcher (inotify on Linux, via the ``watchfiles`` package) groups the writes of an editor's
save (write a temp file, rename it over the old one) into one batch: a batch ends after
``step_ms`` without a new event, or after ``debounce_ms`` at most. After each batch the source
re-lists in a worker thread (told which paths changed, so a large tree re-reads only those files)
and the difference (by id and version) is yielded as one :class:`~prehydrate.SectionChanges`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence, Set
from pathlib import Path

from ._live import SectionChanges, diff_sections
from ._sections import Section

__all__ = ["watch_paths"]

DEBOUNCE_MS = 200
"""At most this long from a batch's first file event to its re-listing."""
STEP_MS = 30
"""A batch ends after this long without a new file event."""
WAKE_MS = 250
"""How often the watcher thread checks in, so cancelling a watch takes at most this long."""


async def watch_paths(
    paths: Sequence[Path],
    relist: Callable[[Set[Path]], Sequence[Section]],
    baseline: Sequence[Section] | None = None,
) -> AsyncIterator[SectionChanges]:
    """Yield a change set each time the files under ``paths`` change (runs until cancelled).

    ``relist`` is the source's own listing, given the paths of the batch (an empty set: list
    everything); it runs off the event loop. ``baseline`` is the listing the caller already holds
    (the engine's catalog was built from it); without one, a first listing is taken.
    """
    import watchfiles

    before = {s.id: s for s in (baseline if baseline is not None else await asyncio.to_thread(relist, set()))}
    async for batch in watchfiles.awatch(
        *paths, debounce=DEBOUNCE_MS, step=STEP_MS, rust_timeout=WAKE_MS, watch_filter=None
    ):
        changed = {Path(p) for _, p in batch}
        after = await asyncio.to_thread(relist, changed)
        found = diff_sections(before, after)
        before = {s.id: s for s in after}
        if found:
            yield found
