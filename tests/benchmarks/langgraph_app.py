"""A LangGraph app written the way a user writes one, run with prehydrate's shipped defaults.

The app (no prehydrate node, no context schema, no ``run()`` wrapper: ``prehydrate_graph`` and a
plain ``ainvoke``)::

    START -> triage (a model picks the desk) -> billing_agent <-> billing_tools (ToolNode)
                                             -> tech_agent    <-> tech_tools    (ToolNode)

with ``tools_condition`` routing, an ``InMemorySaver`` checkpointer, 23 Markdown sections in a
directory (served through ``DirectorySource`` behind the documented latency wrapper, 250 ms per
hydration) and scripted chat models that think 200 ms before every answer. Each run is a new thread
and a new tenant (so nothing hydrated by one run serves another: a hit is a prefetch paying off),
asking one of twelve support questions in one of its phrasings; the agent requests the two or three
sections that question needs. The engine starts with no recorded traces and learns online.

    python tests/benchmarks/langgraph_app.py --runs 40 --seeds 3

prints one JSON line per seed and pass (prefetch on, and off for the baseline) and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import prehydrate as ph
from prehydrate.integrations.langgraph import RequestContextTool, prehydrate_graph

THINK_S = 0.2
HYDRATE_S = 0.25

DOCS: dict[str, str] = {
    "billing/refunds": "Refund policy: refunds are granted within 30 days of a charge for annual and monthly plans.",
    "billing/refund-request": "Requesting a refund: open Settings > Billing, pick the invoice and press Refund.",
    "billing/invoices": "Invoices: every renewal creates an invoice; download PDF invoices from the billing page.",
    "billing/tax": "Tax and VAT: add a VAT id to have reverse charge applied; invoices show tax per line.",
    "billing/plans": "Plans and pricing: Starter, Growth and Enterprise differ in seats, events and retention.",
    "billing/upgrade": "Upgrading: a plan change takes effect at once and the difference is prorated.",
    "billing/downgrade": "Downgrading: a lower plan starts at the next renewal; extra seats are removed then.",
    "billing/payment-methods": "Payment methods: cards, SEPA debit and bank transfer for annual plans.",
    "billing/failed-payments": "Failed payments: a declined card is retried three times over a week before suspension.",
    "billing/cancellation": "Cancelling a subscription: the workspace stays active until the end of the period.",
    "tech/api-keys": "API keys: create and rotate keys under Settings > API; keys are scoped to a project.",
    "tech/rate-limits": "Rate limits: 100 requests per second per key; a 429 response carries Retry-After.",
    "tech/errors": "API errors: every error has a code and a message; 5xx errors are safe to retry.",
    "tech/webhooks": "Webhooks: register an endpoint and choose events; deliveries are signed with a secret.",
    "tech/webhook-retries": "Webhook retries: failed deliveries are retried with backoff for 24 hours.",
    "tech/sso": "Single sign-on: SAML SSO with Okta, Azure AD and Google Workspace on Growth and above.",
    "tech/mfa": "Two-factor authentication: enforce MFA for every member from the security settings.",
    "tech/exports": "Data exports: export events to CSV or to a warehouse (BigQuery, Snowflake) nightly.",
    "tech/data-retention": "Data retention: raw events are kept for the plan's retention period, then deleted.",
    "tech/sdk-install": "Installing the SDK: pip install fernhill or npm install fernhill, then set the key.",
    "general/overview": "Fernhill overview: product analytics for web and mobile apps.",
    "general/contact": "Contacting support: chat in the app or email support; Enterprise has a phone line.",
    "general/security": "Security: data is encrypted at rest and in transit; SOC 2 report on request.",
}
"""The 23 sections, one Markdown file each (the file's heading is the section)."""

Desk = Literal["billing_agent", "tech_agent"]

SCENARIOS: list[tuple[Desk, tuple[str, ...], tuple[str, ...]]] = [
    (
        "billing_agent",
        ("How do I get a refund?", "I was charged twice, can I get my money back?"),
        ("billing/refunds", "billing/refund-request"),
    ),
    (
        "billing_agent",
        ("Where can I download my invoices?", "I need last month's invoice with VAT"),
        ("billing/invoices", "billing/tax"),
    ),
    (
        "billing_agent",
        ("How do I upgrade my plan?", "We need more seats, what are the options?"),
        ("billing/plans", "billing/upgrade"),
    ),
    (
        "billing_agent",
        ("My card payment failed", "Why was my card declined?"),
        ("billing/failed-payments", "billing/payment-methods"),
    ),
    (
        "billing_agent",
        ("How do I cancel my subscription?", "We want to stop paying at the end of the month"),
        ("billing/cancellation", "billing/refunds", "billing/downgrade"),
    ),
    (
        "billing_agent",
        ("Can we move to a cheaper plan?", "How do I downgrade?"),
        ("billing/downgrade", "billing/plans"),
    ),
    (
        "tech_agent",
        ("The API returns 429 errors", "We get too many requests responses from the API"),
        ("tech/rate-limits", "tech/errors"),
    ),
    (
        "tech_agent",
        ("Webhooks are not arriving", "Our endpoint stopped receiving events"),
        ("tech/webhooks", "tech/webhook-retries"),
    ),
    (
        "tech_agent",
        ("How do I set up SSO with Okta?", "Can members log in with our identity provider?"),
        ("tech/sso", "tech/mfa"),
    ),
    (
        "tech_agent",
        ("Where do I create an API key?", "How do I authenticate the SDK?"),
        ("tech/api-keys", "tech/sdk-install"),
    ),
    (
        "tech_agent",
        ("How do I export my data?", "Can we get our events into Snowflake?"),
        ("tech/exports", "tech/data-retention"),
    ),
    (
        "tech_agent",
        ("Is our data encrypted?", "We need your security documentation"),
        ("general/security", "tech/mfa", "tech/data-retention"),
    ),
]
"""(desk, phrasings of the question, the sections the desk's agent requests in order)."""

PLAN: dict[str, tuple[Desk, tuple[str, ...]]] = {q: (desk, calls) for desk, qs, calls in SCENARIOS for q in qs}

SECTION_ID: dict[str, str] = {}
"""File path -> section id (``billing/refunds`` -> ``billing/refunds#refund-policy``), as the prompt's stubs show."""


class ScriptedModel(BaseChatModel):
    """A chat model that thinks, then asks for the question's next section (or answers)."""

    role: str = "agent"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        raise NotImplementedError("the benchmark runs async")

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        await asyncio.sleep(THINK_S)
        question = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).text
        desk, calls = PLAN[question]
        if self.role == "triage":
            msg = AIMessage(content=desk)
        else:
            done = sum(1 for m in messages if isinstance(m, ToolMessage))
            if done < len(calls):
                call = {"name": "request_context", "args": {"section": SECTION_ID[calls[done]]}, "id": f"c{done}"}
                msg = AIMessage(content="", tool_calls=[call])
            else:
                msg = AIMessage(content="Here is what I found.")
        return ChatResult(generations=[ChatGeneration(message=msg)])


class State(MessagesState):
    desk: str


def build_app() -> Any:
    """The user's app: a triage model, two agents with their own ToolNodes, a checkpointer."""
    triage_model = ScriptedModel(role="triage")
    agent_model = ScriptedModel().bind_tools([RequestContextTool()])

    async def triage(state: State) -> dict[str, Any]:
        reply = await triage_model.ainvoke(state["messages"])
        return {"desk": reply.text}

    def route(state: State) -> Desk:
        return "billing_agent" if state["desk"] == "billing_agent" else "tech_agent"

    async def agent(state: State) -> dict[str, Any]:
        return {"messages": [await agent_model.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("triage", triage)
    g.add_edge(START, "triage")
    g.add_conditional_edges("triage", route)
    for desk in ("billing", "tech"):
        g.add_node(f"{desk}_agent", agent)
        g.add_node(f"{desk}_tools", ToolNode([RequestContextTool()]))
        g.add_conditional_edges(f"{desk}_agent", tools_condition, {"tools": f"{desk}_tools", END: END})
        g.add_edge(f"{desk}_tools", f"{desk}_agent")
    return g.compile(checkpointer=InMemorySaver())


def write_docs(root: Path) -> None:
    for sid, text in DOCS.items():
        path = root / f"{sid}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        title = text.split(":", 1)[0]
        path.write_text(f"# {title}\n\n{text}\n", encoding="utf-8")


def slow_directory(root: Path, latency_s: float) -> ph.MockSource:
    """The documented latency wrapper: a DirectorySource's sections, each hydration ``latency_s`` slower."""
    docs = ph.DirectorySource(root)
    SECTION_ID.update({s.id.split("#", 1)[0]: s.id for s in docs.list_sections()})

    async def hydrate(section_id: str, scope: ph.Scope) -> str:
        return (await docs.hydrate(section_id, scope=scope)).content

    return ph.MockSource(hydrate, docs.list_sections(), name="docs", latency_s=latency_s)


async def run_pass(root: Path, runs: int, seed: int, *, prefetch: bool) -> dict[str, Any]:
    """``runs`` questions through a fresh app and engine (shipped defaults, zero traces)."""
    rng = random.Random(seed)
    policy = None if prefetch else ph.PrefetchPolicy(enabled=False)  # None: the shipped default policy
    engine = ph.Engine(sources=[slow_directory(root, HYDRATE_S)], policy=policy)
    app = prehydrate_graph(build_app(), engine)
    reports: list[ph.TurnReport] = []
    engine.subscribe(lambda e: reports.append(e.report) if isinstance(e, ph.TurnEnded) else None)
    questions = [q for _, qs, _ in SCENARIOS for q in qs]
    t0 = time.perf_counter()
    async with engine:
        for i in range(runs):
            config = {"configurable": {"thread_id": f"run-{seed}-{i}", "tenant": f"customer-{seed}-{i}"}}
            await app.ainvoke({"messages": [HumanMessage(rng.choice(questions))]}, config)
        await app.prehydrate.aclose()
    wall = time.perf_counter() - t0
    calls = sum(r.calls for r in reports)
    hits = sum(r.hits for r in reports)
    inflight = sum(r.inflight for r in reports)
    waits = [w for r in reports for w in r.wait_ms]
    return {
        "seed": seed,
        "prefetch": prefetch,
        "runs": len(reports),
        "calls": calls,
        "hits": hits,
        "inflight": inflight,
        "misses": sum(r.misses for r in reports),
        "hit_rate": round(hits / calls, 4) if calls else 0.0,
        "covered_rate": round((hits + inflight) / calls, 4) if calls else 0.0,
        "prefetched": sum(r.prefetched for r in reports),
        "wasted": sum(r.wasted for r in reports),
        "wait_ms_per_run": round(sum(waits) / max(1, len(reports)), 1),
        "wall_s": round(wall, 2),
    }


async def amain(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="prehydrate-lgapp-") as tmp:
        root = Path(tmp)
        write_docs(root)
        for seed in range(args.seeds):
            for prefetch in (True, False) if args.baseline else (True,):
                row = await run_pass(root, args.runs, seed, prefetch=prefetch)
                rows.append(row)
                print(json.dumps(row), flush=True)
    on = [r for r in rows if r["prefetch"]]
    calls = sum(r["calls"] for r in on)
    summary = {
        "runs_per_seed": args.runs,
        "seeds": args.seeds,
        "hit_rate": round(sum(r["hits"] for r in on) / calls, 4),
        "covered_rate": round(sum(r["hits"] + r["inflight"] for r in on) / calls, 4),
        "min_seed_hit_rate": min(r["hit_rate"] for r in on),
        "min_seed_covered_rate": min(r["covered_rate"] for r in on),
    }
    print(json.dumps(summary))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="also run each seed with prefetching off")
    args = parser.parse_args(argv)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
