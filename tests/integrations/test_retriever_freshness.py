"""A retriever's changed results are never served as a hit past the unversioned TTL.

The retriever cannot tell a version before it runs, so its sections have none in the catalog and
their entries live at most ``WarmCache.unversioned_ttl_s``. The bug this pins: after the
retriever's output changed, the next run got the old text as a ``hit`` indefinitely.
"""

from __future__ import annotations

import asyncio
import time

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

import prehydrate as ph
from prehydrate.integrations.langchain import RetrieverSource


class Index(BaseRetriever):
    """A real BaseRetriever whose one document can be rewritten (an index rebuilt)."""

    text: str

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=self.text)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=self.text)]


async def fetch(engine: ph.Engine, session: str) -> ph.ContextResult:
    async with engine.session(session, record=False) as s, s.turn(query="refunds") as turn:
        return await turn.request_context("refunds")


async def test_changed_results_are_served_once_the_unversioned_ttl_passes() -> None:
    index = Index(text="Refunds within 14 days.")
    cache = ph.WarmCache(unversioned_ttl_s=0.3)
    async with ph.Engine(sources=[RetrieverSource(index, {"refunds": "refund policy"})], cache=cache) as engine:
        first = await fetch(engine, "run-1")
        index.text = "Refunds within 30 days."
        soon = await fetch(engine, "run-2")
        await asyncio.sleep(0.35)
        later = await fetch(engine, "run-3")
    assert first.content == "Refunds within 14 days."
    assert (soon.content, soon.outcome) == ("Refunds within 14 days.", "hit")  # within the TTL: documented
    assert later.content == "Refunds within 30 days." and later.outcome != "hit"  # hydrated again


def test_versioned_entries_keep_the_caches_own_ttl() -> None:
    cache = ph.WarmCache(ttl_s=None, unversioned_ttl_s=5)
    versioned = cache.entry(ph.CacheKey("t", "a", "v1"), "x")
    unversioned = cache.entry(ph.CacheKey("t", "a", ""), "x")
    assert versioned.expires_at is None
    assert unversioned.expires_at is not None and unversioned.expires_at - time.time() <= 5
