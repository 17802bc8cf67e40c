"""RetrieverSource and DiskNodeCache pass the conformance suites and work where users put them."""

from __future__ import annotations

import asyncio
import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy
from typing_extensions import TypedDict

import prehydrate as ph
from prehydrate.integrations.langchain import RetrieverSource
from prehydrate.integrations.langgraph import DiskNodeCache
from prehydrate.testing import SourceConformance

from .conformance import check_node_cache

CORPUS = {
    json.loads(line)["id"]: json.loads(line)["text"]
    for line in ph.sample_sections_path().read_text("utf-8").splitlines()
    if line.strip()
}


class KeywordRetriever(BaseRetriever):
    """A real BaseRetriever over the sample corpus: documents whose text contains every query word."""

    k: int = 2
    calls: list[str] = []

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise NotImplementedError("async only")

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        self.calls.append(query)
        await asyncio.sleep(0.01)
        if query == "explode":
            raise RuntimeError("vector store unavailable")
        words = query.lower().split()
        hits = [sid for sid, text in CORPUS.items() if all(w in text.lower() for w in words)]
        return [Document(page_content=CORPUS[sid], metadata={"id": sid}) for sid in sorted(hits)[: self.k]]


QUERIES = {"billing/refund-docs": "refund", "api/limits-docs": "rate limit", "sso": "sso"}


def make_retriever_source(**kw: Any) -> RetrieverSource:
    return RetrieverSource(KeywordRetriever(calls=[]), QUERIES, **kw)


# -- sources -----------------------------------------------------------------------------------------


class TestRetrieverSource(SourceConformance):
    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        return make_retriever_source


async def test_retriever_source_hydrates_declared_queries_by_joining_documents() -> None:
    src = make_retriever_source()
    assert [s.id for s in src.list_sections()] == list(QUERIES)
    h = await src.hydrate("billing/refund-docs", scope=ph.Scope())
    retriever = src.retriever
    assert isinstance(retriever, KeywordRetriever)
    assert retriever.calls == ["refund"]
    docs = await retriever.ainvoke("refund")
    assert h.content == "\n\n".join(d.page_content.strip() for d in docs)
    assert h.content.count("\n\n# ") == 1  # two documents joined
    with pytest.raises(ph.UnknownSectionError):
        await src.hydrate("nope", scope=ph.Scope())


async def test_retriever_source_is_prefetched_and_served_warm_by_the_engine() -> None:
    src = make_retriever_source()
    engine = ph.Engine(sources=[src], policy=ph.PrefetchPolicy(top_n=2))
    async with engine, engine.session("c", tenant="acme") as session:
        async with session.turn(query="refunds", expect=["billing/refund-docs"]) as turn:
            await asyncio.sleep(0.1)
            r = await turn.request_context("billing/refund-docs")
        assert r.outcome == "hit"
        assert "refund" in r.content.lower()
        assert turn.report is not None and turn.report.used == 1


async def test_a_failing_retriever_is_a_source_error_with_the_cause() -> None:
    src = RetrieverSource(KeywordRetriever(calls=[]), {"boom": "explode"})
    with pytest.raises(ph.SourceError, match="vector store unavailable") as info:
        await src.hydrate("boom", scope=ph.Scope())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_retriever_source_validates_its_queries() -> None:
    with pytest.raises(ph.ConfigError):
        RetrieverSource(KeywordRetriever(calls=[]), {})
    with pytest.raises(ph.ConfigError):
        RetrieverSource(KeywordRetriever(calls=[]), {"a": "  "})
    with pytest.raises(ph.PathTraversalError):
        RetrieverSource(KeywordRetriever(calls=[]), {"../etc": "x"})
    src = RetrieverSource(KeywordRetriever(calls=[]), ["refund", "sso"], speculative=False)
    assert [s.id for s in src.list_sections()] == ["refund", "sso"] and not src.speculative


# -- node cache --------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_disk_node_cache_passes_the_node_cache_conformance_suite(tmp_path: Path) -> None:
    clock = FakeClock()
    opened: list[DiskNodeCache[Any]] = []

    def factory() -> DiskNodeCache[Any]:
        opened.append(DiskNodeCache(tmp_path / "nodes", clock=clock))
        return opened[-1]

    try:
        await check_node_cache(factory, clock=clock.advance)
    finally:
        for c in opened:
            c.close()


async def test_the_node_cache_suite_rejects_langgraphs_in_memory_cache() -> None:
    from langgraph.cache.memory import InMemoryCache

    shared: InMemoryCache[Any] = InMemoryCache()  # it ignores our clock, so the TTL rule catches it
    with pytest.raises(AssertionError, match="TTL"):
        await check_node_cache(lambda: shared, clock=FakeClock().advance)


class CState(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def build_cached_graph(cache: DiskNodeCache[Any], calls: list[int]) -> Any:
    async def expensive(state: CState) -> dict[str, Any]:
        calls.append(state["n"])
        return {"log": [f"computed {state['n'] * 2}"]}

    g = StateGraph(CState)
    g.add_node("expensive", expensive, cache_policy=CachePolicy(ttl=3600))
    g.add_edge(START, "expensive")
    g.add_edge("expensive", END)
    return g.compile(cache=cache)


async def test_node_results_survive_a_restart_with_disk_node_cache(tmp_path: Path) -> None:
    calls: list[int] = []
    first = DiskNodeCache[Any](tmp_path / "nodes")
    app = build_cached_graph(first, calls)
    out1 = await app.ainvoke({"n": 21})
    await asyncio.sleep(0.05)  # LangGraph writes the cache in the background after the node
    for _ in range(100):
        if len(first):
            break
        await asyncio.sleep(0.02)
    first.close()

    second = DiskNodeCache[Any](tmp_path / "nodes")  # a new process would do exactly this
    app2 = build_cached_graph(second, calls)
    out2 = await app2.ainvoke({"n": 21})
    out3 = await app2.ainvoke({"n": 5})
    second.close()
    assert out1["log"] == out2["log"] == ["computed 42"]
    assert out3["log"] == ["computed 10"]
    assert calls == [21, 5]  # the second run of n=21 came from disk
