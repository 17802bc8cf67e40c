"""Generate the bundled sample corpus and sample traces (``core/data/sample_*.jsonl``).

Why a generator and not recorded data: the demo, the tests and the first benchmarks need traces that
look like real agent sessions, whose structure we know (so we can tell whether a predictor learned it)
and that anyone can regenerate byte for byte. The model behind them, in short (``docs/data.md`` has
the long version):

* **Task types are workflows.** Each of eight task types (``billing+refund``, ``api+integration``...)
  is a Markov chain over the corpus' sections: a start distribution and branching transitions,
  including a few edges into other areas (a refund question that ends at *Contacting support*).
* **Sessions are 1-4 turns, turns are 0-4 calls.** The first call of a later turn usually continues
  the chain from the previous turn's last section (the user follows up), sometimes restarts from the
  task's start distribution (a new sub-question). A few turns make no call at all (a thank-you or a
  question answered by context already fetched).
* **Users don't speak in titles.** Turn queries are built from hand-written user phrasings of the
  turn's first section, with casual connectors and an occasional typo, so lexical matching helps but
  does not solve the task.
* **Noise.** About 10% of calls go to a random section (the agent exploring), without moving the
  workflow's state, as a real agent's detour does not change what the user needs next.
* **Think time.** ``think_ms`` is lognormal with a median of about 600 ms (longer for a turn's first
  call, when the model reads the user's message), clipped to 50..5000 ms.

Everything is drawn from one ``random.Random(seed)`` in a fixed order and written with fixed JSON
formatting, so the same seed gives byte-identical files.

Usage::

    python tests/benchmarks/make_sample_data.py              # writes core/data/
    python tests/benchmarks/make_sample_data.py --out /tmp/x --seed 7
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _sample_corpus import SECTIONS, USER_PHRASES  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "core" / "data"
DEFAULT_SEED = 20260301
SECTIONS_FILE = "sample_sections.jsonl"
TRAIN_FILE = "sample_traces_train.jsonl"
TEST_FILE = "sample_traces_test.jsonl"

TURNS_WEIGHTS = {1: 0.35, 2: 0.33, 3: 0.21, 4: 0.11}
"""How many turns a session has."""
CALLS_WEIGHTS = {0: 0.06, 1: 0.26, 2: 0.33, 3: 0.22, 4: 0.13}
"""How many calls a turn with calls has (0 here is the "answered from what it knew" case)."""
P_CONTINUE = 0.75
"""Probability that a later turn continues the chain from the previous turn's last section."""
P_NOISE = 0.10
"""Probability that a call goes to a random section instead of the workflow's next one."""
P_THANKS = 0.06
"""Probability that a later turn is a thank-you with no call at all."""
P_TYPO = 0.12
"""Probability that a query gets one typo."""
THINK_MEDIAN_MS = 500.0
THINK_SIGMA = 0.85
THINK_FIRST_FACTOR = 1.6
THINK_MIN_MS = 50
THINK_MAX_MS = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """One task type: where sessions start, how they move between sections, and how users open."""

    name: str
    """The ``task.type`` written to traces."""
    tags: list[str]
    """The ``task.tags`` written to traces."""
    weight: float
    """Relative frequency of the task type among sessions."""
    openers: list[str]
    """First-message templates; ``{q}`` is replaced by a user phrasing of the first section."""
    start: dict[str, float]
    """Distribution of the first section of a session (and of restarted turns)."""
    edges: dict[str, dict[str, float]]
    """Transition probabilities between sections; unknown states fall back to their area."""


WORKFLOWS: list[Workflow] = [
    Workflow(
        name="billing+refund",
        tags=["billing", "refunds"],
        weight=1.3,
        openers=["{q}", "Hi, {q}?", "we were charged for the annual plan by mistake, {q}", "{q}. urgent pls"],
        start={
            "billing/refunds": 0.45,
            "refunds/cancel-subscription": 0.2,
            "billing/invoices": 0.2,
            "refunds/chargebacks": 0.15,
        },
        edges={
            "billing/refunds": {
                "refunds/request": 0.55,
                "refunds/partial": 0.2,
                "refunds/cancel-subscription": 0.15,
                "billing/invoices": 0.1,
            },
            "refunds/request": {
                "refunds/partial": 0.3,
                "billing/invoices": 0.3,
                "troubleshooting/contact-support": 0.25,
                "billing/payment-methods": 0.15,
            },
            "refunds/cancel-subscription": {
                "billing/refunds": 0.5,
                "export/retention": 0.2,
                "accounts/delete": 0.15,
                "refunds/request": 0.15,
            },
            "billing/invoices": {"billing/refunds": 0.4, "refunds/request": 0.35, "billing/taxes": 0.25},
            "refunds/partial": {
                "refunds/request": 0.5,
                "billing/seats": 0.3,
                "troubleshooting/contact-support": 0.2,
            },
            "refunds/chargebacks": {
                "billing/refunds": 0.4,
                "troubleshooting/contact-support": 0.35,
                "refunds/request": 0.25,
            },
            "billing/payment-methods": {"billing/failed-payments": 0.5, "billing/invoices": 0.5},
            "troubleshooting/contact-support": {"refunds/request": 0.5, "billing/invoices": 0.5},
            "billing/taxes": {"billing/invoices": 0.6, "refunds/partial": 0.4},
            "billing/seats": {"refunds/partial": 0.6, "billing/invoices": 0.4},
            "export/retention": {"export/csv": 0.7, "refunds/cancel-subscription": 0.3},
            "accounts/delete": {"export/csv": 0.6, "billing/refunds": 0.4},
        },
    ),
    Workflow(
        name="billing+plan",
        tags=["billing"],
        weight=1.0,
        openers=["{q}", "Hello! {q}", "our team is growing, {q}", "quick question: {q}"],
        start={"billing/plans": 0.6, "billing/seats": 0.2, "billing/usage": 0.2},
        edges={
            "billing/plans": {
                "billing/seats": 0.35,
                "billing/overview": 0.2,
                "billing/payment-methods": 0.2,
                "export/retention": 0.15,
                "accounts/sso": 0.1,
            },
            "billing/seats": {"billing/invoices": 0.4, "accounts/invite": 0.3, "billing/plans": 0.3},
            "billing/usage": {
                "billing/plans": 0.4,
                "api/events": 0.3,
                "billing/invoices": 0.2,
                "troubleshooting/missing-events": 0.1,
            },
            "billing/overview": {"billing/invoices": 0.5, "billing/plans": 0.5},
            "billing/invoices": {"billing/taxes": 0.5, "billing/payment-methods": 0.5},
            "billing/payment-methods": {"billing/invoices": 0.7, "billing/failed-payments": 0.3},
            "accounts/invite": {"accounts/roles": 0.6, "billing/seats": 0.4},
            "accounts/sso": {"billing/plans": 0.5, "accounts/roles": 0.5},
            "export/retention": {"billing/plans": 0.7, "export/csv": 0.3},
            "api/events": {"billing/usage": 0.6, "api/rate-limits": 0.4},
        },
    ),
    Workflow(
        name="billing+payment-failure",
        tags=["billing"],
        weight=0.8,
        openers=["{q}", "help, {q}", "{q} and finance is asking me why", "Hi team, {q}"],
        start={"billing/failed-payments": 0.7, "billing/payment-methods": 0.3},
        edges={
            "billing/failed-payments": {
                "billing/payment-methods": 0.65,
                "billing/invoices": 0.2,
                "troubleshooting/contact-support": 0.15,
            },
            "billing/payment-methods": {
                "billing/invoices": 0.5,
                "billing/failed-payments": 0.3,
                "troubleshooting/contact-support": 0.2,
            },
            "billing/invoices": {
                "refunds/chargebacks": 0.4,
                "billing/taxes": 0.3,
                "troubleshooting/contact-support": 0.3,
            },
            "refunds/chargebacks": {"troubleshooting/contact-support": 1.0},
            "troubleshooting/contact-support": {"billing/invoices": 0.5, "billing/payment-methods": 0.5},
            "billing/taxes": {"billing/invoices": 1.0},
        },
    ),
    Workflow(
        name="api+integration",
        tags=["api"],
        weight=1.3,
        openers=["{q}", "I'm integrating our backend: {q}", "dev here, {q}", "{q} (python sdk)"],
        start={"api/overview": 0.45, "api/authentication": 0.3, "api/events": 0.25},
        edges={
            "api/overview": {"api/authentication": 0.6, "api/events": 0.25, "api/versioning": 0.15},
            "api/authentication": {"api/events": 0.55, "api/errors": 0.25, "api/query": 0.2},
            "api/events": {
                "api/rate-limits": 0.35,
                "troubleshooting/missing-events": 0.3,
                "api/errors": 0.2,
                "billing/usage": 0.15,
            },
            "api/rate-limits": {"troubleshooting/rate-limited": 0.5, "api/events": 0.3, "api/errors": 0.2},
            "api/errors": {
                "api/authentication": 0.4,
                "troubleshooting/rate-limited": 0.3,
                "troubleshooting/contact-support": 0.3,
            },
            "api/query": {"api/pagination": 0.5, "api/rate-limits": 0.3, "api/errors": 0.2},
            "api/pagination": {"api/query": 0.5, "api/errors": 0.5},
            "troubleshooting/missing-events": {
                "api/events": 0.4,
                "api/authentication": 0.3,
                "troubleshooting/contact-support": 0.3,
            },
            "troubleshooting/rate-limited": {"api/rate-limits": 0.5, "api/events": 0.5},
            "api/versioning": {"api/pagination": 0.5, "api/authentication": 0.5},
            "billing/usage": {"api/events": 0.6, "billing/plans": 0.4},
        },
    ),
    Workflow(
        name="webhooks+debug",
        tags=["webhooks"],
        weight=1.0,
        openers=["{q}", "{q}, using node/express", "our integration broke: {q}", "hey, {q}"],
        start={"troubleshooting/webhook-failures": 0.4, "webhooks/overview": 0.3, "webhooks/setup": 0.3},
        edges={
            "webhooks/overview": {"webhooks/setup": 0.6, "webhooks/event-types": 0.4},
            "webhooks/setup": {
                "webhooks/signatures": 0.5,
                "webhooks/event-types": 0.3,
                "webhooks/testing": 0.2,
            },
            "webhooks/event-types": {"webhooks/setup": 0.5, "webhooks/testing": 0.3, "export/csv": 0.2},
            "webhooks/signatures": {
                "webhooks/testing": 0.45,
                "troubleshooting/webhook-failures": 0.35,
                "webhooks/retries": 0.2,
            },
            "troubleshooting/webhook-failures": {
                "webhooks/retries": 0.4,
                "webhooks/signatures": 0.35,
                "webhooks/testing": 0.25,
            },
            "webhooks/retries": {"webhooks/testing": 0.6, "troubleshooting/contact-support": 0.4},
            "webhooks/testing": {"webhooks/retries": 0.5, "troubleshooting/webhook-failures": 0.5},
            "troubleshooting/contact-support": {"webhooks/retries": 1.0},
            "export/csv": {"webhooks/event-types": 1.0},
        },
    ),
    Workflow(
        name="accounts+access",
        tags=["accounts"],
        weight=1.1,
        openers=["{q}", "{q}!!", "I'm the admin of our workspace and {q}", "Hi, {q}, can you help"],
        start={
            "troubleshooting/login": 0.45,
            "accounts/password-reset": 0.2,
            "accounts/sso": 0.2,
            "accounts/invite": 0.15,
        },
        edges={
            "troubleshooting/login": {
                "accounts/password-reset": 0.4,
                "accounts/mfa": 0.3,
                "accounts/sso": 0.3,
            },
            "accounts/password-reset": {
                "accounts/mfa": 0.4,
                "troubleshooting/login": 0.3,
                "troubleshooting/contact-support": 0.3,
            },
            "accounts/mfa": {
                "troubleshooting/contact-support": 0.4,
                "accounts/roles": 0.3,
                "accounts/transfer-ownership": 0.3,
            },
            "accounts/sso": {"accounts/roles": 0.5, "accounts/invite": 0.3, "billing/plans": 0.2},
            "accounts/invite": {"accounts/roles": 0.5, "billing/seats": 0.5},
            "accounts/roles": {
                "accounts/invite": 0.4,
                "accounts/transfer-ownership": 0.3,
                "accounts/sso": 0.3,
            },
            "accounts/transfer-ownership": {"troubleshooting/contact-support": 0.6, "billing/overview": 0.4},
            "troubleshooting/contact-support": {"accounts/transfer-ownership": 0.5, "accounts/mfa": 0.5},
            "billing/seats": {"accounts/invite": 0.6, "billing/plans": 0.4},
            "billing/plans": {"accounts/sso": 1.0},
            "billing/overview": {"accounts/roles": 1.0},
        },
    ),
    Workflow(
        name="deployment+self-hosted",
        tags=["deployment"],
        weight=0.8,
        openers=["{q}", "we're evaluating on-prem: {q}", "ops question - {q}", "{q}? we run eks"],
        start={"deployment/self-hosted": 0.45, "deployment/upgrades": 0.3, "deployment/kubernetes": 0.25},
        edges={
            "deployment/self-hosted": {
                "deployment/kubernetes": 0.5,
                "deployment/docker": 0.4,
                "billing/plans": 0.1,
            },
            "deployment/docker": {"deployment/configuration": 0.7, "troubleshooting/login": 0.3},
            "deployment/kubernetes": {"deployment/configuration": 0.6, "deployment/backups": 0.4},
            "deployment/configuration": {
                "deployment/backups": 0.4,
                "deployment/upgrades": 0.3,
                "accounts/sso": 0.3,
            },
            "deployment/upgrades": {"deployment/backups": 0.6, "deployment/configuration": 0.4},
            "deployment/backups": {
                "deployment/upgrades": 0.5,
                "troubleshooting/contact-support": 0.3,
                "troubleshooting/slow-dashboards": 0.2,
            },
            "troubleshooting/login": {"deployment/configuration": 1.0},
            "accounts/sso": {"deployment/configuration": 1.0},
            "billing/plans": {"deployment/kubernetes": 1.0},
        },
    ),
    Workflow(
        name="export+compliance",
        tags=["export"],
        weight=0.9,
        openers=["{q}", "our DPO is asking: {q}", "{q}, for our quarterly reporting", "hi - {q}"],
        start={"export/csv": 0.35, "export/gdpr": 0.3, "export/warehouse": 0.2, "export/retention": 0.15},
        edges={
            "export/csv": {"export/scheduled": 0.5, "export/warehouse": 0.3, "webhooks/event-types": 0.2},
            "export/scheduled": {"export/warehouse": 0.5, "export/csv": 0.5},
            "export/warehouse": {
                "export/retention": 0.4,
                "export/scheduled": 0.3,
                "troubleshooting/contact-support": 0.3,
            },
            "export/gdpr": {"accounts/delete": 0.4, "export/retention": 0.35, "api/authentication": 0.25},
            "accounts/delete": {"export/csv": 0.5, "export/retention": 0.5},
            "export/retention": {"export/csv": 0.6, "billing/plans": 0.4},
            "webhooks/event-types": {"export/scheduled": 1.0},
            "api/authentication": {"export/gdpr": 1.0},
            "billing/plans": {"export/retention": 1.0},
        },
    ),
]
"""The task types, in a fixed order (the order is part of what makes the output reproducible)."""

CONNECTORS = ["", "ok and ", "thanks. also ", "follow up: ", "one more thing, ", "hmm, ", "that helped. now "]
THANKS = [
    "thanks, that's what I needed",
    "ok that worked",
    "great, thanks!",
    "got it",
    "perfect, I'll try that",
]
RECAP = ["so just to confirm, ", "sorry, again: ", "wait, "]


def _pick(rng: random.Random, dist: dict[str, float], exclude: Iterable[str] = ()) -> str | None:
    """Draw a key of ``dist`` proportionally to its weight, skipping ``exclude``; None if nothing is left."""
    banned = set(exclude)
    keys = [k for k in dist if k not in banned]
    if not keys:
        return None
    return rng.choices(keys, weights=[dist[k] for k in keys])[0]


def _next(rng: random.Random, wf: Workflow, state: str, areas: dict[str, list[str]], seen: Sequence[str]) -> str | None:
    """Follow one workflow edge; sections without edges wander within their own area."""
    if state in wf.edges:
        return _pick(rng, wf.edges[state], exclude=seen)
    area = areas[state.split("/")[0]]
    return _pick(rng, dict.fromkeys(area, 1.0), exclude=[*seen, state])


def _typo(rng: random.Random, text: str) -> str:
    """Introduce one keyboard-style typo (swap, drop or double a letter) in one longer word."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif kind == 1:
        w = w[:j] + w[j + 1 :]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def _think(rng: random.Random, first: bool) -> int:
    """Model think time before a call: lognormal, longer when the model first reads the message."""
    ms = rng.lognormvariate(math.log(THINK_MEDIAN_MS), THINK_SIGMA)
    if first:
        ms *= THINK_FIRST_FACTOR
    return int(min(THINK_MAX_MS, max(THINK_MIN_MS, round(ms))))


def _weighted(rng: random.Random, weights: dict[int, float]) -> int:
    """Draw an integer key of ``weights``."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def make_session(
    rng: random.Random, session_id: str, all_ids: list[str], areas: dict[str, list[str]]
) -> dict[str, Any]:
    """Generate one session in the design's trace format.

    Args:
        rng: The shared generator; its draws happen in a fixed order, which keeps output reproducible.
        session_id: The ``session`` value to write.
        all_ids: Every section id, in corpus order (the pool for noise calls).
        areas: Section ids grouped by area (the first path segment), for the fallback walk.

    Returns:
        A JSON-ready session dict.
    """
    wf = WORKFLOWS[_weighted(rng, {i: w.weight for i, w in enumerate(WORKFLOWS)})]
    n_turns = _weighted(rng, TURNS_WEIGHTS)
    state: str | None = None
    turns: list[dict[str, Any]] = []
    for t in range(n_turns):
        if t > 0 and rng.random() < P_THANKS:
            turns.append({"query": rng.choice(THANKS), "calls": []})
            continue
        n_calls = _weighted(rng, CALLS_WEIGHTS)
        if t == 0 or state is None:
            first = _pick(rng, wf.start)
        elif rng.random() < P_CONTINUE:
            first = _next(rng, wf, state, areas, seen=[state])
        else:
            first = _pick(rng, wf.start, exclude=[state])
        if first is None:
            first = _pick(rng, wf.start)
        assert first is not None
        phrase = rng.choice(USER_PHRASES[first])
        if n_calls == 0 and state is not None:
            # The user re-asks about something already in context: the model answers without a call.
            query = rng.choice(RECAP) + rng.choice(USER_PHRASES[state])
        elif t == 0:
            query = rng.choice(wf.openers).format(q=phrase)
        else:
            query = rng.choice(CONNECTORS) + phrase + ("?" if rng.random() < 0.5 else "")
        if rng.random() < P_TYPO:
            query = _typo(rng, query)
        calls: list[dict[str, Any]] = []
        cur: str | None = first
        seen: list[str] = []
        for c in range(n_calls):
            if cur is None:
                break
            key = cur
            if rng.random() < P_NOISE:
                called = {call["key"] for call in calls}
                key = rng.choice([s for s in all_ids if s != cur and s not in called])
            if all(call["key"] != key for call in calls):
                # A detour may already have fetched the workflow's next section: no second request.
                calls.append({"key": key, "think_ms": _think(rng, first=c == 0)})
            seen.append(cur)
            state = cur
            cur = _next(rng, wf, cur, areas, seen=seen)
        turns.append({"query": query, "calls": calls})
    return {
        "session": session_id,
        "task": {"type": wf.name, "query": turns[0]["query"], "tags": list(wf.tags)},
        "turns": turns,
    }


def sections_rows() -> list[dict[str, Any]]:
    """The sample corpus in the design's section format, in document order."""
    return [{"id": sid, "title": title, "text": text, "tags": list(tags)} for sid, title, tags, text in SECTIONS]


def generate(seed: int = DEFAULT_SEED, n_train: int = 300, n_test: int = 100) -> dict[str, list[dict[str, Any]]]:
    """Generate the corpus and both trace splits.

    The splits come from one stream: sessions ``s-1..s-{n_train}`` train, the rest test, so the
    two never share a session and test sessions are drawn from the same distribution.

    Returns:
        ``{"sections": [...], "train": [...], "test": [...]}``.
    """
    rows = sections_rows()
    all_ids = [r["id"] for r in rows]
    areas: dict[str, list[str]] = {}
    for sid in all_ids:
        areas.setdefault(sid.split("/")[0], []).append(sid)
    missing = {k for wf in WORKFLOWS for k in [*wf.start, *wf.edges, *(n for e in wf.edges.values() for n in e)]}
    missing -= set(all_ids)
    if missing:
        raise ValueError(f"workflows refer to unknown sections: {sorted(missing)}")
    rng = random.Random(seed)
    sessions = [make_session(rng, f"s-{i}", all_ids, areas) for i in range(1, n_train + n_test + 1)]
    return {"sections": rows, "train": sessions[:n_train], "test": sessions[n_train:]}


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write one compact JSON object per line with ``\\n`` endings, so bytes never depend on the OS."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Generate prehydrate's sample corpus and traces.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: core/data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--train", type=int, default=300, help="number of training sessions")
    parser.add_argument("--test", type=int, default=100, help="number of test sessions")
    args = parser.parse_args(argv)
    data = generate(args.seed, args.train, args.test)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / SECTIONS_FILE, data["sections"])
    write_jsonl(args.out / TRAIN_FILE, data["train"])
    write_jsonl(args.out / TEST_FILE, data["test"])
    for split in ("train", "test"):
        sessions = data[split]
        turns = sum(len(s["turns"]) for s in sessions)
        calls = sum(len(t["calls"]) for s in sessions for t in s["turns"])
        print(f"{split}: sessions={len(sessions)} turns={turns} calls={calls}")
    print(f"sections: {len(data['sections'])} -> {args.out}")


if __name__ == "__main__":
    main()
