"""Predictors on hand-made traces where the right answer is known, and the ensemble on held-back data."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import pytest

import prehydrate as ph
from prehydrate._scoring import prediction_points

SECTIONS = [
    ph.Section(
        id="billing/refunds",
        title="Refund policy",
        tags=("billing",),
        index_text="Refund policy: refunds within 30 days of purchase.",
    ),
    ph.Section(
        id="billing/invoices", title="Invoices", tags=("billing",), index_text="Invoices are issued monthly as PDF."
    ),
    ph.Section(
        id="accounts/password",
        title="Reset your password",
        tags=("accounts",),
        index_text="Reset a forgotten password from the login page.",
    ),
    ph.Section(
        id="accounts/2fa",
        title="Two-factor authentication",
        tags=("accounts",),
        index_text="Two-factor authentication with an app.",
    ),
    ph.Section(
        id="api/limits",
        title="Rate limits",
        tags=("api",),
        index_text="Rate limits: requests per minute, HTTP 429 responses.",
    ),
    ph.Section(
        id="api/errors", title="API errors", tags=("api",), index_text="Error codes returned by the API, 429 and 500."
    ),
]


def catalog() -> ph.Catalog:
    return ph.Catalog(SECTIONS)


def session(
    sid: str, ttype: str, turns: Sequence[tuple[str, Sequence[str]]], tags: Sequence[str] = ()
) -> ph.SessionTrace:
    return ph.SessionTrace(
        session=sid,
        task=ph.TaskSpec(type=ttype, query=turns[0][0] if turns else "", tags=tuple(tags)),
        turns=tuple(
            ph.TurnTrace(query=q, calls=tuple(ph.Call(key=k, think_ms=500) for k in keys)) for q, keys in turns
        ),
    )


def state(
    cat: ph.Catalog,
    query: str = "",
    *,
    task_type: str | None = None,
    calls: Sequence[str] = (),
    history: Sequence[Sequence[str]] = (),
    tags: Sequence[str] = (),
    history_queries: Sequence[str] = (),
) -> ph.PredictionState:
    return ph.PredictionState(
        request=ph.ContextRequest(query=query, task_type=task_type, tags=tuple(tags)),
        catalog=cat,
        calls=tuple(calls),
        history=tuple(tuple(h) for h in history),
        history_queries=tuple(history_queries),
    )


def ids(cands: Sequence[ph.Candidate]) -> list[str]:
    return [c.section_id for c in cands]


# -- sequential -------------------------------------------------------------------------------------


def test_sequential_follows_document_order_after_the_last_call() -> None:
    got = ph.SequentialPredictor().predict(state(catalog(), calls=["accounts/password"]), 2)
    assert ids(got) == ["accounts/2fa", "api/limits"]


# -- trace --------------------------------------------------------------------------------------------

WORKFLOWS = [
    # Refund sessions go refunds -> invoices; a second turn then goes to the password page.
    *(
        session(
            f"r{i}",
            "billing+refund",
            [("money back", ["billing/refunds", "billing/invoices"]), ("and login?", ["accounts/password"])],
        )
        for i in range(6)
    ),
    # API sessions go limits -> errors, in one turn.
    *(session(f"a{i}", "api+debug", [("429s", ["api/limits", "api/errors"])]) for i in range(6)),
    # After invoices within one turn (not at a turn start), api sessions of another type go to 2fa.
    *(session(f"x{i}", "mixed", [("hm", ["billing/invoices", "accounts/2fa"])]) for i in range(3)),
]


def test_trace_predicts_the_recorded_workflow_per_task_type() -> None:
    cat = catalog()
    p = ph.TracePredictor()
    p.fit(WORKFLOWS, cat)
    assert ids(p.predict(state(cat, task_type="billing+refund"), 1)) == ["billing/refunds"]
    assert ids(p.predict(state(cat, task_type="api+debug"), 1)) == ["api/limits"]
    assert ids(p.predict(state(cat, task_type="billing+refund", calls=["billing/refunds"]), 1)) == ["billing/invoices"]
    assert ids(p.predict(state(cat, task_type="api+debug", calls=["api/limits"]), 1)) == ["api/errors"]


def test_trace_carries_the_previous_turns_last_section_into_the_next_turn() -> None:
    cat = catalog()
    p = ph.TracePredictor()
    p.fit(WORKFLOWS, cat)
    second_turn = state(cat, task_type="billing+refund", history=[["billing/refunds", "billing/invoices"]])
    best = p.predict(second_turn, 1)[0]
    assert best.section_id == "accounts/password"
    assert best.probability > 0.5
    # The same last section mid-turn (another workflow) leads elsewhere: position matters.
    mid = state(cat, task_type="mixed", calls=["billing/invoices"])
    assert ids(p.predict(mid, 1)) == ["accounts/2fa"]


def test_trace_backs_off_to_other_task_types_and_never_repeats_a_call() -> None:
    cat = catalog()
    p = ph.TracePredictor()
    p.fit(WORKFLOWS, cat)
    unseen_type = state(cat, task_type="never-seen", calls=["api/limits"])
    assert ids(p.predict(unseen_type, 1)) == ["api/errors"]
    got = ids(p.predict(state(cat, task_type="api+debug", calls=["api/limits", "api/errors"]), 6))
    assert "api/limits" not in got and "api/errors" not in got
    dist = p.next_distribution(state(cat, task_type="api+debug", calls=["api/limits", "api/errors"]))
    assert math.isclose(float(dist.sum()), 1.0)
    assert dist[-1] == max(dist)  # after limits -> errors the api turn ends


def test_trace_knows_what_comes_later_whatever_the_order_in_between() -> None:
    cat = catalog()
    # After limits, errors always comes at some point, but what comes in between varies.
    traces = [
        session("l1", "api", [("q", ["api/limits", "billing/invoices", "api/errors"])]),
        session("l2", "api", [("q", ["api/limits", "accounts/2fa", "api/errors"])]),
        session("l3", "api", [("q", ["api/limits", "billing/refunds", "accounts/password", "api/errors"])]),
    ]
    p = ph.TracePredictor()
    p.fit(traces, cat)
    state_ = state(cat, task_type="api", calls=["api/limits", "accounts/password"])  # a path never seen
    later = p.later(state_)
    view = {sid: i for i, sid in enumerate(cat.ids)}
    assert later[view["api/errors"]] == max(later) > 0.5
    assert later[view["billing/invoices"]] < later[view["api/errors"]]


def test_unfitted_trace_predictor_is_uniform_and_harmless() -> None:
    p = ph.TracePredictor()
    got = p.predict(state(catalog()), 2)
    assert ids(got) == ["billing/refunds", "billing/invoices"]  # ties in document order
    assert got[0].probability == pytest.approx(1 / 7)


# -- lexical ------------------------------------------------------------------------------------------


def test_lexical_matches_the_turn_query() -> None:
    got = ph.LexicalPredictor().predict(state(catalog(), "I forgot my password"), 2)
    assert ids(got)[0] == "accounts/password"
    assert 0 < got[0].probability <= 1


def test_lexical_uses_the_sessions_history_when_the_turn_says_little() -> None:
    got = ph.LexicalPredictor().predict(state(catalog(), "and then?", history_queries=["getting 429 errors"]), 1)
    assert ids(got)[0] in {"api/limits", "api/errors"}


def test_tags_and_task_type_rerank_lexical_candidates() -> None:
    cat = catalog()
    query = "429 errors and invoices"  # matches api and billing sections alike
    assert ids(ph.LexicalPredictor().predict(state(cat, query, tags=["billing"]), 1)) == ["billing/invoices"]
    assert ids(ph.LexicalPredictor().predict(state(cat, query, task_type="api+debug"), 1))[0].startswith("api/")


# -- usage-learned lexical ----------------------------------------------------------------------------


def test_usage_learns_words_that_never_appear_in_the_section() -> None:
    cat = catalog()
    traces = [session(f"u{i}", "t", [("can I get my money back", ["billing/refunds"])]) for i in range(5)]
    traces += [session(f"v{i}", "t", [("locked out, lost my phone", ["accounts/2fa"])]) for i in range(5)]
    usage = ph.UsagePredictor()
    usage.fit(traces, cat)
    assert ids(usage.predict(state(cat, "money back please"), 1)) == ["billing/refunds"]
    assert ids(usage.predict(state(cat, "I lost my phone"), 1)) == ["accounts/2fa"]
    # BM25 alone cannot know: "money" and "phone" are in no section.
    assert ph.LexicalPredictor().predict(state(cat, "money back please"), 1) == []
    # Unknown words give nothing rather than noise.
    assert usage.predict(state(cat, "zebra"), 3) == []


def test_neighbor_follows_what_turns_with_similar_words_did_next() -> None:
    cat = catalog()
    # One task type, two workflows told apart only by the words of the query.
    refund = [("refund for my last order", ["billing/refunds", "billing/invoices"])]
    locked = [("locked out of my account", ["accounts/password", "accounts/2fa"])]
    traces = [session(f"r{i}", "support", refund) for i in range(3)]
    traces += [session(f"p{i}", "support", locked) for i in range(3)]
    nb = ph.NeighborPredictor(k=4)
    nb.fit(traces, cat)
    assert ids(nb.predict(state(cat, "I want a refund", task_type="support"), 1)) == ["billing/refunds"]
    assert ids(nb.predict(state(cat, "I want a refund", calls=["billing/refunds"]), 1)) == ["billing/invoices"]
    # The fourth neighbour shares only the task type: it votes, with a smaller weight.
    locked_out = nb.predict(state(cat, "locked out again", task_type="support"), 2)
    assert ids(locked_out) == ["accounts/password", "billing/refunds"]
    assert locked_out[0].probability > 3 * locked_out[1].probability
    # A call no similar turn made gives no vote rather than a guess; nor does an unfitted predictor.
    assert nb.predict(state(cat, "I want a refund", calls=["api/limits"]), 3) == []
    assert ph.NeighborPredictor().predict(state(cat, "I want a refund"), 3) == []


def test_neighbor_lines_up_repeated_calls_by_occurrence() -> None:
    cat = catalog()
    flow = ["billing/refunds", "billing/invoices", "billing/refunds", "api/errors"]
    nb = ph.NeighborPredictor()
    nb.fit([session("s", "t", [("refund twice", flow)])], cat)
    once = state(cat, "refund", calls=["billing/refunds"])
    twice = state(cat, "refund", calls=["billing/refunds", "billing/invoices", "billing/refunds"])
    assert ids(nb.predict(once, 1)) == ["billing/invoices"]
    assert ids(nb.predict(twice, 1)) == ["api/errors"]
    nxt, later = nb.scores(once)
    view = {s.id: i for i, s in enumerate(cat.sections)}
    assert nxt[view["billing/invoices"]] == 1.0 and later[view["api/errors"]] == 1.0


# -- reference --------------------------------------------------------------------------------------

REFERENCE_TRACES = [
    session("r1", "billing", [("q", ["billing/refunds", "billing/invoices"])]),
    session("r2", "billing", [("q", ["billing/refunds", "billing/invoices"])]),
    session("r3", "billing", [("q", ["billing/refunds", "api/errors"])]),
    session("r4", "api", [("q", ["billing/refunds", "api/limits"])]),
]


def test_reference_reproduces_a_hand_computed_ranking() -> None:
    cat = catalog()
    ref = ph.ReferencePredictor()
    ref.fit(REFERENCE_TRACES, cat)
    # billing after refunds: invoices 2, errors 1 -> 0.5 * (2/3, 1/3); the query matches nothing.
    got = ref.predict(state(cat, "zzz", task_type="billing", calls=["billing/refunds"]), 5)
    assert [(c.section_id, round(c.probability, 4)) for c in got] == [
        ("billing/invoices", 0.3333),
        ("api/errors", 0.1667),
    ]
    # An unseen task type backs off to all types: invoices 2, errors 1, limits 1 of 4; the tie of
    # limits and errors (0.125 each) goes to document order.
    got = ref.predict(state(cat, "zzz", task_type="accounts", calls=["billing/refunds"]), 5)
    assert [(c.section_id, c.probability) for c in got] == [
        ("billing/invoices", 0.25),
        ("api/limits", 0.125),
        ("api/errors", 0.125),
    ]
    # BM25 of "password" matches one section only: 0.5 * 1.0 beats the Markov 0.5 * 2/3.
    got = ref.predict(state(cat, "password", task_type="billing", calls=["billing/refunds"]), 3)
    assert ids(got) == ["accounts/password", "billing/invoices", "api/errors"]
    # The task's tags come first whatever the blend says.
    got = ref.predict(state(cat, "password", task_type="billing", calls=["billing/refunds"], tags=["api"]), 3)
    assert ids(got) == ["api/errors", "accounts/password", "billing/invoices"]
    # A session's first call: the start symbol's row (billing: refunds 3 of 3).
    assert [(c.section_id, c.probability) for c in ref.predict(state(cat, "zzz", task_type="billing"), 3)] == [
        ("billing/refunds", 0.5)
    ]


# -- ensemble -----------------------------------------------------------------------------------------


def test_unfitted_ensemble_falls_back_to_lexical_and_sequential() -> None:
    cat = catalog()
    e = ph.default_predictor()
    assert isinstance(e, ph.EnsemblePredictor) and not e.fitted
    assert ids(e.predict(state(cat, "reset password"), 1)) == ["accounts/password"]
    assert ids(e.predict(state(cat, "", calls=["accounts/password"]), 1)) == ["accounts/2fa"]
    e.fit(WORKFLOWS[:3], cat)  # too few sessions: stays on the fallback
    assert not e.fitted
    assert ids(e.predict(state(cat, "reset password"), 1)) == ["accounts/password"]


def test_ensemble_too_small_to_fit_still_learns_from_the_trace_counts() -> None:
    """Below ``min_sessions`` the ranker is not fitted, yet the recorded transitions count at once."""
    cat = catalog()
    e = ph.default_predictor()
    assert isinstance(e, ph.EnsemblePredictor)
    after_invoices = state(cat, "", task_type="mixed", calls=["billing/invoices"])
    assert ids(e.predict(after_invoices, 1)) != ["accounts/2fa"]  # document order alone says otherwise
    e.fit(WORKFLOWS, cat)  # 15 sessions: too few for the ranker
    assert not e.fitted
    assert ids(e.predict(after_invoices, 1)) == ["accounts/2fa"]
    # A turn the traces say nothing about still ranks by its words.
    assert ids(e.predict(state(cat, "reset password", task_type="other"), 1)) == ["accounts/password"]


def test_ensemble_keeps_the_fallback_when_the_fit_ranks_no_better_on_held_out_tasks() -> None:
    """Grouped validation decides between the fitted ranker and the fallback; a tie keeps the fallback.

    Every session asks for the section its words name, once: the words alone rank it first, so a
    fitted ranker cannot do better on tasks it has not seen, and the fallback (no counts) is kept.
    """
    cat = catalog()
    words = {s.id: s.index_text for s in SECTIONS}
    traces = [session(f"w{i}", "", [(words[sid], [sid])]) for i in range(5) for sid in words]
    e = ph.EnsemblePredictor()
    e.fit(traces, cat)
    report = e.fit_report
    assert report.fallback_chosen and not e.fitted
    assert report.fallback_hit == 1.0 and report.validation_hit <= report.fallback_hit
    assert ids(e.predict(state(cat, "Rate limits, HTTP 429"), 1)) == ["api/limits"]
    assert "not fitted" in e.predict(state(cat, "Rate limits"), 1)[0].reason


def _coverage(predictor: ph.Predictor, traces: Sequence[ph.SessionTrace], cat: ph.Catalog, width: int) -> float:
    """Share of calls whose section was among the top ``width`` at some earlier point of the turn."""
    calls = covered = 0
    offered: set[str] = set()
    for trace in traces:
        for pt in prediction_points(trace, cat):
            if not pt.state.calls:
                offered = set()
            offered.update(c.section_id for c in predictor.predict(pt.state, width)[:width])
            if pt.next_key is not None:
                calls += 1
                covered += pt.next_key in offered or pt.next_key in pt.state.seen
    return covered / calls


@pytest.fixture(scope="module")
def sample() -> tuple[ph.Catalog, list[ph.SessionTrace], list[ph.SessionTrace]]:
    cat = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog
    return cat, ph.read_traces(ph.sample_traces_path("train")), ph.read_traces(ph.sample_traces_path("test"))


def test_ensemble_beats_each_single_predictor_on_held_back_sample_traces(
    sample: tuple[ph.Catalog, list[ph.SessionTrace], list[ph.SessionTrace]],
) -> None:
    cat, train, test = sample
    singles: list[ph.Predictor] = [
        ph.SequentialPredictor(),
        ph.TracePredictor(),
        ph.LexicalPredictor(),
        ph.UsagePredictor(),
        ph.NeighborPredictor(),
    ]
    for p in singles:
        if isinstance(p, ph.Learner):
            p.fit(train, cat)
    ensemble = ph.EnsemblePredictor()
    ensemble.fit(train, cat)
    assert ensemble.fitted  # the fit beat the fallback on the grouped validation split
    assert ensemble.fit_report.validation_hit > ensemble.fit_report.fallback_hit
    ours = _coverage(ensemble, test, cat, 3)
    for p in singles:
        theirs = _coverage(p, test, cat, 3)
        assert ours > theirs, f"ensemble {ours:.3f} <= {type(p).__name__} {theirs:.3f}"
    # Calibration, measured on the validation split carved from the training traces.
    report = ensemble.fit_report
    assert report.validation_sessions > 0 and report.train_sessions + report.validation_sessions == len(train)
    assert report.validation_ece < 0.05


def test_ensemble_probabilities_are_calibrated_on_held_back_traces(
    sample: tuple[ph.Catalog, list[ph.SessionTrace], list[ph.SessionTrace]],
) -> None:
    cat, train, test = sample
    ensemble = ph.EnsemblePredictor()
    ensemble.fit(train, cat)
    predicted = used = 0.0
    for trace in test:
        for pt in prediction_points(trace, cat):
            remaining = set(pt.remaining)
            for c in ensemble.predict(pt.state, 3):
                predicted += c.probability
                used += c.section_id in remaining
    assert abs(predicted - used) / used < 0.25  # expected and observed uses agree


def test_ensemble_is_deterministic(sample: tuple[ph.Catalog, list[ph.SessionTrace], list[ph.SessionTrace]]) -> None:
    cat, train, test = sample
    a, b = ph.EnsemblePredictor(), ph.EnsemblePredictor()
    a.fit(train[:120], cat)
    b.fit(train[:120], cat)
    points = [pt.state for trace in test[:20] for pt in prediction_points(trace, cat)]
    assert [a.predict(s, 5) for s in points] == [b.predict(s, 5) for s in points]
    assert a.fit_report == b.fit_report


# -- adaptive width -----------------------------------------------------------------------------------


def test_fixed_width_never_moves() -> None:
    w = ph.AdaptiveWidth(ph.PrefetchPolicy(top_n=3))
    for _ in range(10):
        w.observe(calls=1, misses=1, prefetched=3, wasted=3)
    assert w.current == 3


def test_adaptive_width_narrows_on_waste_and_widens_on_misses() -> None:
    policy = ph.PrefetchPolicy(top_n=3, adaptive=True, min_top_n=1, max_top_n=5)
    w = ph.AdaptiveWidth(policy)
    for _ in range(10):
        w.observe(calls=2, misses=0, prefetched=6, wasted=5)
    assert w.current == 1
    for _ in range(10):
        w.observe(calls=4, misses=3, prefetched=1, wasted=0)
    assert w.current == 5
    with pytest.raises(ph.ConfigError):
        ph.PrefetchPolicy(min_top_n=4, max_top_n=2)


async def test_engine_applies_the_adaptive_width_across_turns() -> None:
    src = ph.MockSource(lambda sid, scope: sid, [f"d/{i}" for i in range(20)], latency_s=0.0)
    policy = ph.PrefetchPolicy(top_n=3, adaptive=True, min_top_n=1, max_top_n=4)
    async with ph.Engine(sources=[src], policy=policy) as engine, engine.session("s") as s:
        for _ in range(6):  # sequential prefetches d/0..2 but the model asks for d/19: all wasted
            async with s.turn("q") as turn:
                await turn.request_context("d/19")
        assert engine.width.current == 1
        async with s.turn("q") as turn:
            await turn.request_context("d/19")
        assert turn.report is not None and turn.report.prefetched <= 2  # one at the start, one after the call


# -- the waste budget and the one default ------------------------------------------------------------


def test_waste_budget_floor_is_the_lowest_that_would_have_kept_the_offers_within_budget() -> None:
    w = ph.AdaptiveWidth(ph.PrefetchPolicy(top_n=3, waste_budget=1.0, floor_start=0.1, floor_gain=0.0))
    assert w.floor == 0.1  # before any feedback
    offers = [(0.9, True), (0.6, False), (0.5, False), (0.3, False), (0.2, False)]
    w.observe(calls=2, misses=0, prefetched=4, wasted=2, offers=offers)
    # Two calls allow two unused offers: 0.6 and 0.5 fit, 0.3 would be the third: the floor is just above it.
    assert 0.3 < w.floor <= 0.301  # to the floor's resolution (bins of 0.001)
    w.observe(calls=10, misses=0, prefetched=0, wasted=0, offers=[(0.4, False)])
    assert w.floor == 0.0  # within budget at any floor
    assert (w.wasted_total, w.calls_total) == (2, 12)
    # Waste already spent beyond the budget is paid back: 4 calls allow 4 unused offers, less the 2 overspent,
    # so 0.8 and 0.7 fit and the floor is just above 0.6 (without the debt all three would fit: floor 0).
    d = ph.AdaptiveWidth(ph.PrefetchPolicy(top_n=3, waste_budget=1.0, floor_gain=0.0))
    d.observe(calls=4, misses=0, prefetched=6, wasted=6, offers=[(0.8, False), (0.7, False), (0.6, False)])
    assert 0.6 < d.floor <= 0.601
    # The correction: prefetches actually wasted beyond the budget raise the floor by floor_gain each.
    c = ph.AdaptiveWidth(ph.PrefetchPolicy(top_n=3, waste_budget=1.0, floor_gain=0.01))
    c.observe(calls=10, misses=0, prefetched=13, wasted=13)  # 3 beyond the budget, none seen in the offers log
    assert c.floor == pytest.approx(0.03)
    assert ph.AdaptiveWidth(ph.PrefetchPolicy(top_n=3)).floor == 0.0  # no budget: no floor
    with pytest.raises(ph.ConfigError):
        ph.PrefetchPolicy(waste_budget=-1.0)


async def test_engine_floors_guesses_away_while_waste_exceeds_the_budget() -> None:
    src = ph.MockSource(lambda sid, scope: sid, [f"d/{i}" for i in range(20)], latency_s=0.0)
    policy = ph.PrefetchPolicy(top_n=3, waste_budget=1.0)
    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor(), policy=policy) as engine:
        late: list[int] = []
        async with engine.session("s") as s:
            for i in range(40):  # sequential guesses d/1..3 (0.5, 0.25, 0.125); the model only asks for d/0
                async with s.turn("q") as turn:
                    await turn.request_context("d/0")
                assert turn.report is not None
                if i >= 30:
                    late.append(turn.report.wasted)
        # The floor settles between the guesses' probabilities 0.25 and 0.5: the one guess left wastes
        # exactly the budget (1 per request), the two below it are never prefetched again.
        assert 0.25 < engine.width.floor <= 0.5
        assert late == [1] * 10


def test_serve_engine_and_replay_share_one_default() -> None:
    from prehydrate import mcp_server
    from prehydrate._policies import DEFAULT_POLICY, POLICIES

    engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    served = mcp_server.build_engine([], traces=None)
    spec = POLICIES[DEFAULT_POLICY]
    assert engine.policy == served.policy == spec.prefetch(3) == ph.default_policy() == ph.default_policy(3)
    assert engine.policy.waste_budget == 1.0
    assert spec.predictor is ph.default_predictor
    made = ph.default_predictor()
    assert type(engine.predictor) is type(served.predictor) is type(made)
    assert vars(engine.predictor).keys() == vars(made).keys()
    assert (engine.predictor.folds, engine.predictor.candidates) == (made.folds, made.candidates)


# -- fresh() copies: every constructor argument carried over -------------------------------------------

_DAG = ph.WorkflowDAG.from_edges([("__start__", "a"), ("a", "__end__")], name="g")
NON_DEFAULT: dict[type, dict[str, object]] = {
    ph.EnsemblePredictor: {
        "folds": 3,
        "validation": 0.3,
        "candidates": 7,
        "min_sessions": 4,
        "seed": 11,
        "signals": (ph.WorkflowPredictor(discount=0.6),),
        "signal_base_weight": 0.25,
        "max_stacked_sessions": 99,
    },
    ph.WorkflowPredictor: {
        "dag": _DAG,
        "fallback": ph.SequentialPredictor(decay=0.25),  # no fresh(): shared as it is
        "discount": 0.7,
        "smoothing": 2.0,
        "backoff": 3.0,
        "declared_probability": 0.8,
        "fallback_weight": 0.4,
        "query_smoothing": 0.9,
        "rate_smoothing": 2.5,
    },
}
"""A value unlike the default for every constructor argument (the test refuses a class missing one)."""


@pytest.mark.parametrize("cls", list(NON_DEFAULT), ids=lambda c: c.__name__)
def test_fresh_keeps_every_constructor_argument(cls: type) -> None:
    """A ``fresh()`` that forgot an argument would reset it to its default: every one is checked here."""
    params = inspect.signature(cls).parameters
    options = NON_DEFAULT[cls]
    assert set(options) == set(params), f"give NON_DEFAULT[{cls.__name__}] a non-default value for each argument"
    assert all(value != params[name].default for name, value in options.items())
    original = cls(**options)
    copy = original.fresh()
    assert type(copy) is cls and copy is not original
    for name, value in options.items():
        kept = getattr(copy, name)
        if name == "signals":  # made fresh, configured alike
            assert isinstance(value, tuple)
            assert [type(s) for s in kept] == [type(s) for s in value]
            assert [s.discount for s in kept] == [0.6] and kept[0] is not value[0]
        else:
            assert kept == value, name
