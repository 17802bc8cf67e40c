"""The engine through its public surface: outcomes, single-flight, bailout, budgets, scope, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import prehydrate as ph

IDS = [f"doc/{i}" for i in range(20)]


def make_source(latency: float = 0.05, **kw: object) -> ph.MockSource:
    return ph.MockSource(lambda sid, scope: f"content of {sid} for {scope.tenant}", IDS, latency_s=latency, **kw)  # type: ignore[arg-type]


def make_engine(source: ph.Source, **kw: object) -> ph.Engine:
    return ph.Engine(sources=[source], **kw)  # type: ignore[arg-type]


async def test_predicted_section_is_a_hit_and_unpredicted_a_miss() -> None:
    src = make_source()
    async with make_engine(src) as engine, engine.session("c1", tenant="acme") as session:
        async with session.turn(query="q", expect=["doc/3"]) as turn:
            await asyncio.sleep(0.1)  # the model "thinks" longer than the hydration takes
            hit = await turn.request_context("doc/3")
            miss = await turn.request_context("doc/7")
        assert (hit.outcome, miss.outcome) == ("hit", "miss")
        assert hit.content == "content of doc/3 for acme"
        assert hit.waited_ms < miss.waited_ms
        report = turn.report
        assert report is not None
        assert (report.hits, report.inflight, report.misses) == (1, 0, 1)
        assert (report.prefetched, report.used, report.wasted) == (1, 1, 0)
    assert src.calls == ["doc/3", "doc/7"]


async def test_request_during_prefetch_joins_it_with_one_hydration() -> None:
    src = make_source(latency=0.2)
    async with make_engine(src) as engine, engine.session("c1") as session:
        async with session.turn(expect=["doc/5"]) as turn:
            await asyncio.sleep(0.05)
            r = await turn.request_context("doc/5")
        assert r.outcome == "inflight"
        assert 0 < r.waited_ms < 200
    assert src.calls == ["doc/5"]


async def test_concurrent_misses_share_one_hydration() -> None:
    src = make_source(latency=0.05)
    async with make_engine(src, policy=ph.PrefetchPolicy(enabled=False)) as engine, engine.session("c") as s:
        async with s.turn() as turn:
            results = await asyncio.gather(*(turn.request_context("doc/9") for _ in range(5)))
    assert sorted(r.outcome for r in results) == ["inflight"] * 4 + ["miss"]
    assert src.calls == ["doc/9"]


async def test_bailout_cancels_running_prefetches_and_counts_waste() -> None:
    src = make_source(latency=10.0)
    async with make_engine(src) as engine, engine.session("c1") as session:
        before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        async with session.turn(expect=["doc/1", "doc/2"]) as turn:
            await asyncio.sleep(0.01)
            assert src.active == 2
        after = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        assert after <= before, "a prefetch task outlived its turn"
        assert src.active == 0
        report = turn.report
        assert report is not None
        assert (report.prefetched, report.wasted, report.cancelled) == (2, 2, 2)


async def test_unused_prefetched_entries_are_discarded_at_bailout() -> None:
    src = make_source(latency=0.01)
    cache = ph.WarmCache([ph.MemoryTier()])
    async with make_engine(src, cache=cache) as engine, engine.session("c1") as session:
        async with session.turn(expect=["doc/1", "doc/2"]) as turn:
            await asyncio.sleep(0.05)
            await turn.request_context("doc/1")
        report = turn.report
        assert report is not None
        assert (report.used, report.wasted) == (1, 1)
        assert report.bytes_wasted == len("content of doc/2 for default")
        sec = engine.catalog.get("doc/2")
        assert await cache.get(engine.key_for(sec, session.scope)) is None
        kept = engine.catalog.get("doc/1")
        assert await cache.get(engine.key_for(kept, session.scope)) is not None


async def test_budget_and_max_inflight_are_never_exceeded() -> None:
    src = make_source(latency=0.05)
    policy = ph.PrefetchPolicy(top_n=20, max_inflight=2, budget_count=5)
    async with make_engine(src, policy=policy) as engine, engine.session("c1") as session:
        async with session.turn(expect=IDS[:12]) as turn:
            await asyncio.sleep(0.5)
        report = turn.report
        assert report is not None
    assert src.max_active == 2
    assert len(src.calls) == 5
    assert report.prefetched == 5
    assert report.max_inflight == 2


class _NextTwo:
    """Names the two sections after the last call (a predictor that is right, or always wrong)."""

    def __init__(self, right: bool) -> None:
        self.right = right

    def predict(self, state: ph.PredictionState, k: int) -> list[ph.Candidate]:
        n = len(state.calls)
        first = n + 1 if self.right else 100 + 2 * n
        return [ph.Candidate(section_id=f"doc/{i}", probability=0.9) for i in (first, first + 1)][:k]


@pytest.mark.parametrize("right", [True, False])
async def test_count_budget_bounds_unused_prefetches_not_used_ones(right: bool) -> None:
    """A used prefetch stops counting against the budget: good guesses go on, bad ones stop at it."""
    sections = [ph.Section(id=f"doc/{i}", title=f"doc {i}", version="v") for i in range(1, 140)]
    src = ph.MockSource(lambda sid, scope: sid, sections, latency_s=0.01)
    policy = ph.PrefetchPolicy(top_n=2, max_inflight=2, budget_count=3)
    engine = ph.Engine(sources=[src], predictor=_NextTwo(right), policy=policy, learn_on_start=False)
    async with engine, engine.session("c") as session:
        async with session.turn() as turn:
            for i in range(1, 11):
                await asyncio.sleep(0.05)
                await turn.request_context(f"doc/{i}")
    report = turn.report
    assert report is not None
    if right:
        # Every call was prefetched: far more than 3 prefetches, none wasted but the two guesses after the last call.
        assert report.hits == 10 and report.prefetched == 12 and report.wasted == 2
    else:
        assert report.hits == 0 and report.prefetched == 3 and report.wasted == 3


async def test_byte_budget_limits_prefetch() -> None:
    sections = [ph.Section(id=f"s{i}", title=f"s{i}", size_bytes=100, version="v") for i in range(6)]
    src = ph.MockSource(lambda sid, scope: "x" * 100, sections, latency_s=0.01)
    policy = ph.PrefetchPolicy(top_n=6, budget_bytes=250, budget_count=None)
    async with make_engine(src, policy=policy) as engine, engine.session("c") as session:
        async with session.turn(expect=[s.id for s in sections]):
            await asyncio.sleep(0.1)
    assert len(src.calls) == 2


async def test_priority_is_by_probability_times_latency() -> None:
    order: list[str] = []

    class Ranked:
        def predict(self, state: ph.PredictionState, k: int) -> list[ph.Candidate]:
            return [
                ph.Candidate(section_id="doc/1", probability=0.2),
                ph.Candidate(section_id="doc/2", probability=0.9),
                ph.Candidate(section_id="doc/3", probability=0.5),
            ]

    def handler(sid: str, scope: ph.Scope) -> str:
        order.append(sid)
        return sid

    src = ph.MockSource(handler, IDS, latency_s=0.01)
    policy = ph.PrefetchPolicy(top_n=3, max_inflight=1)
    async with make_engine(src, predictor=Ranked(), policy=policy) as engine, engine.session("c") as s:
        async with s.turn():
            await asyncio.sleep(0.1)
    assert order == ["doc/2", "doc/3", "doc/1"]


async def test_non_speculative_source_is_never_prefetched() -> None:
    src = make_source(speculative=False)
    async with make_engine(src) as engine, engine.session("c") as session:
        async with session.turn(expect=["doc/1"]) as turn:
            await asyncio.sleep(0.1)
            r = await turn.request_context("doc/1")
    assert r.outcome == "miss"
    assert src.calls == ["doc/1"]


async def test_disk_entry_survives_a_new_engine(tmp_path: Path) -> None:
    src = make_source(latency=0.0)
    cache_dir = tmp_path / "cache"
    async with make_engine(src, cache=ph.WarmCache([ph.MemoryTier(), ph.DiskTier(cache_dir)])) as engine:
        async with engine.session("c") as s, s.turn() as turn:
            assert (await turn.request_context("doc/4")).outcome == "miss"
    src2 = make_source(latency=0.0)
    async with make_engine(src2, cache=ph.WarmCache([ph.MemoryTier(), ph.DiskTier(cache_dir)])) as engine:
        async with engine.session("c2") as s, s.turn() as turn:
            r = await turn.request_context("doc/4")
    assert (r.outcome, r.tier) == ("hit", "disk")
    assert src2.calls == []


async def test_stale_version_is_never_served() -> None:
    content = {"a": "first"}

    def handler(sid: str, scope: ph.Scope) -> ph.Hydrated:
        return ph.Hydrated(section_id=sid, content=content[sid], version=content[sid])

    def sections() -> list[ph.Section]:
        return [ph.Section(id="a", title="A", version=content["a"])]

    class Versioned(ph.MockSource):
        def list_sections(self) -> list[ph.Section]:  # type: ignore[override]
            return sections()

    src = Versioned(handler, sections())
    async with make_engine(src) as engine, engine.session("c") as s:
        async with s.turn() as turn:
            assert (await turn.request_context("a")).content == "first"
        content["a"] = "second"
        engine.refresh()
        async with s.turn() as turn:
            r = await turn.request_context("a")
    assert (r.content, r.outcome, r.version) == ("second", "miss", "second")


async def test_source_version_change_moves_the_catalog_on() -> None:
    state = {"v": "one"}
    src = ph.MockSource(
        lambda sid, scope: ph.Hydrated(section_id=sid, content=state["v"], version=state["v"]),
        [ph.Section(id="a", title="A", version="one")],
    )
    async with make_engine(src) as engine, engine.session("c") as s, s.turn() as turn:
        await turn.request_context("a")
        state["v"] = "two"
        engine.cache.tiers[0].__init__()  # type: ignore[misc]  # drop the warm copy: force a refetch
        r = await turn.request_context("a")
        assert (r.content, r.version) == ("two", "two")
        assert engine.catalog.get("a").version == "two"


async def test_one_tenant_never_reads_another_tenants_entry() -> None:
    src = make_source(latency=0.0)
    async with make_engine(src, policy=ph.PrefetchPolicy(enabled=False)) as engine:
        async with engine.session("c1", tenant="acme") as s, s.turn() as turn:
            await turn.request_context("doc/1")
        async with engine.session("c2", tenant="globex") as s, s.turn() as turn:
            r = await turn.request_context("doc/1")
    assert (r.outcome, r.content) == ("miss", "content of doc/1 for globex")


async def test_prefetch_failure_leaves_no_entry_and_request_answers_by_miss() -> None:
    attempts: list[str] = []

    def handler(sid: str, scope: ph.Scope) -> str:
        attempts.append(sid)
        if len(attempts) == 1:
            raise RuntimeError("backend down")
        return "ok"

    src = ph.MockSource(handler, IDS, latency_s=0.01)
    async with make_engine(src) as engine, engine.session("c") as s:
        async with s.turn(expect=["doc/1"]) as turn:
            await asyncio.sleep(0.05)
            assert await engine.cache.get(engine.key_for(engine.catalog.get("doc/1"), s.scope)) is None
            r = await turn.request_context("doc/1")
        assert (r.outcome, r.content) == ("miss", "ok")
        assert turn.report is not None and turn.report.failed == 1


async def test_prefetch_timeout_leaves_no_entry_and_request_answers() -> None:
    slow = {"on": True}

    async def handler(sid: str, scope: ph.Scope) -> str:
        if slow["on"]:
            slow["on"] = False
            await asyncio.sleep(5)
        return "fresh"

    src = ph.MockSource(handler, IDS)
    async with make_engine(src, policy=ph.PrefetchPolicy(timeout_s=0.05)) as engine, engine.session("c") as s:
        async with s.turn(expect=["doc/2"]) as turn:
            await asyncio.sleep(0.1)
            r = await turn.request_context("doc/2")
        assert (r.outcome, r.content) == ("miss", "fresh")


async def test_source_error_on_demand_raises_source_error() -> None:
    src = ph.MockSource(lambda sid, scope: (_ for _ in ()).throw(OSError("disk gone")), IDS)
    async with make_engine(src) as engine, engine.session("c") as s, s.turn() as turn:
        with pytest.raises(ph.SourceError, match="disk gone"):
            await turn.request_context("doc/1")
        assert engine.fetches_running == 0


async def test_unknown_id_raises_one_clear_error_with_suggestions() -> None:
    async with make_engine(make_source()) as engine, engine.session("c") as s, s.turn() as turn:
        with pytest.raises(ph.UnknownSectionError) as info:
            await turn.request_context("doc/77")
    assert isinstance(info.value, ph.PrehydrateError)
    assert info.value.key == "doc/77"
    assert "doc/7" in info.value.suggestions
    assert "unknown section 'doc/77'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ph.InputError),
        ({"key": "doc/1", "query": "x"}, ph.InputError),
        ({"key": "../etc/passwd"}, ph.PathTraversalError),
        ({"query": "x" * 100_000}, ph.RequestTooLargeError),
        ({"key": "a\x00b"}, ph.InputError),
    ],
)
async def test_bad_requests_raise_input_errors(kwargs: dict[str, str], error: type[Exception]) -> None:
    async with make_engine(make_source()) as engine, engine.session("c") as s, s.turn() as turn:
        with pytest.raises(error):
            await turn.request_context(**kwargs)
        assert (await turn.request_context("doc/1")).content == "content of doc/1 for default"  # still answering


async def test_query_resolves_to_best_section(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"id": "billing/refunds", "title": "Refunds", "text": "How refunds are issued to cards.", "tags": []}\n'
        '{"id": "auth/sso", "title": "Single sign-on", "text": "Configure SAML for your team.", "tags": []}\n'
    )
    async with ph.Engine(sources=[ph.JsonlSource(path)]) as engine, engine.session("c") as s, s.turn() as turn:
        r = await turn.request_context(query="refund to my card")
        assert r.section_id == "billing/refunds"
        with pytest.raises(ph.NoMatchError):
            await turn.request_context(query="zzzz qqqq")


async def test_events_are_emitted_for_the_whole_lifecycle() -> None:
    seen: list[str] = []
    src = make_source(latency=0.01)
    async with make_engine(src) as engine:
        engine.subscribe(lambda ev: seen.append(type(ev).__name__))
        async with engine.session("c") as s, s.turn(expect=["doc/1"]) as turn:
            await asyncio.sleep(0.05)
            await turn.request_context("doc/1")
            with pytest.raises(ph.UnknownSectionError):
                await turn.request_context("nope")
    assert seen == [
        "TurnStarted",
        "PrefetchStarted",
        "PrefetchFinished",
        "Lookup",
        "LookupFailed",
        "PrefetchSettled",
        "TurnEnded",
    ]


async def test_failing_subscriber_does_not_break_serving(caplog: pytest.LogCaptureFixture) -> None:
    def broken(ev: object) -> None:
        raise ValueError("observer bug")

    async with make_engine(make_source(latency=0.0)) as engine:
        engine.subscribe(broken)
        async with engine.session("c") as s, s.turn() as turn:
            assert (await turn.request_context("doc/1")).content == "content of doc/1 for default"
    assert "observer bug" in caplog.text


async def test_sessions_are_recorded_in_the_trace_format(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    async with make_engine(make_source(latency=0.0), traces=store) as engine:
        async with engine.session("s-1", task_type="billing", tags=["billing"]) as s:
            async with s.turn(query="refunds?") as turn:
                await turn.request_context("doc/1")
                await asyncio.sleep(0.02)
                await turn.request_context("doc/2", node="billing_agent")
            async with s.turn(query="thanks"):
                pass
    (trace,) = store.load()
    assert trace.session == "s-1"
    assert trace.task == ph.TaskSpec(type="billing", query="refunds?", tags=("billing",))
    assert [t.query for t in trace.turns] == ["refunds?", "thanks"]
    assert trace.keys == ["doc/1", "doc/2"]
    assert trace.turns[0].calls[1].think_ms >= 15
    assert trace.turns[0].calls[1].node == "billing_agent"


async def test_learner_is_fitted_from_the_trace_store_on_start(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "t.jsonl")
    store.append(ph.SessionTrace(session="x", turns=(ph.TurnTrace(calls=(ph.Call(key="doc/1"),)),)))
    fitted: list[int] = []

    class Learning(ph.SequentialPredictor):
        def fit(self, traces: list[ph.SessionTrace], catalog: ph.Catalog) -> None:
            fitted.append(len(traces))

    async with make_engine(make_source(), predictor=Learning(), traces=store):
        pass
    assert fitted == [1]


async def test_repredict_after_each_call_prefetches_the_next_section() -> None:
    src = make_source(latency=0.02)
    policy = ph.PrefetchPolicy(top_n=1)
    async with make_engine(src, predictor=ph.SequentialPredictor(), policy=policy) as engine:
        async with engine.session("c") as s, s.turn() as turn:
            await asyncio.sleep(0.05)
            first = await turn.request_context("doc/0")
            await asyncio.sleep(0.05)
            second = await turn.request_context("doc/1")
    assert (first.outcome, second.outcome) == ("hit", "hit")


async def test_engine_close_bails_out_open_turns() -> None:
    src = make_source(latency=10.0)
    engine = make_engine(src)
    await engine.start()
    session = engine.session("c")
    turn = await session.turn(expect=["doc/1"]).start()
    await asyncio.sleep(0.01)
    await engine.aclose()
    assert turn.report is not None and turn.report.cancelled == 1
    assert src.active == 0


async def test_prefetch_cancelled_before_it_ran_is_reported_as_cancelled() -> None:
    seen: list[tuple[str, str]] = []
    src = make_source(latency=1.0)
    async with make_engine(src) as engine, engine.session("c") as s:
        engine.subscribe(lambda ev: seen.append((type(ev).__name__, getattr(ev, "outcome", getattr(ev, "status", "")))))
        turn = await s.turn(expect=["doc/1"]).start()
        report = await turn.end()  # no await in between: the prefetch task never ran
    assert (report.prefetched, report.cancelled, report.wasted) == (1, 1, 1)
    assert src.calls == []
    assert seen[1:4] == [("PrefetchStarted", ""), ("PrefetchFinished", "cancelled"), ("PrefetchSettled", "cancelled")]
