"""Catalog lookups and BM25 search; trace reading, writing and the TraceStore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import prehydrate as ph


def section(sid: str, title: str, text: str = "") -> ph.Section:
    return ph.Section(id=sid, title=title, index_text=f"{title}\n{text}")


@pytest.fixture
def catalog() -> ph.Catalog:
    return ph.Catalog(
        [
            section("billing/refunds", "Refunds", "Refunds are issued to the original card within 14 days."),
            section("billing/invoices", "Invoices", "Download invoices as PDF from the billing page."),
            section("auth/sso", "Single sign-on", "Configure SAML or OIDC for your organisation."),
        ]
    )


def test_search_ranks_by_bm25_with_stemming(catalog: ph.Catalog) -> None:
    hits = catalog.search("how are refunds issued", k=3)
    assert hits[0][0].id == "billing/refunds"
    assert catalog.resolve("download my invoice pdf").id == "billing/invoices"
    assert catalog.search("zzzz", k=3) == []
    with pytest.raises(ph.NoMatchError):
        catalog.resolve("zzzz")


def test_unknown_id_suggests_close_matches(catalog: ph.Catalog) -> None:
    with pytest.raises(ph.UnknownSectionError) as info:
        catalog.get("billing/refund")
    assert info.value.suggestions[0] == "billing/refunds"
    assert isinstance(info.value, KeyError)


def test_duplicate_ids_across_sources_are_a_config_error() -> None:
    with pytest.raises(ph.ConfigError, match="given by both"):
        ph.Catalog([section("a", "A"), section("a", "A again")])


def test_catalog_keeps_document_order(catalog: ph.Catalog) -> None:
    assert catalog.ids == ["billing/refunds", "billing/invoices", "auth/sso"]
    assert catalog.position("auth/sso") == 2 and "auth/sso" in catalog and len(catalog) == 3


def trace_line(**over: object) -> str:
    base: dict[str, object] = {
        "session": "s-1",
        "task": {"type": "billing", "query": "refund?", "tags": ["billing"]},
        "turns": [{"query": "refund?", "calls": [{"key": "billing/refunds", "think_ms": 400}]}],
    }
    base.update(over)
    return json.dumps(base)


def test_traces_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(trace_line() + "\n")
    (t,) = ph.read_traces(path)
    assert t.task.tags == ("billing",) and t.turns[0].calls[0] == ph.Call(key="billing/refunds", think_ms=400)
    out = tmp_path / "out.jsonl"
    ph.write_traces(out, [t])
    assert out.read_text() == trace_line() + "\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        (trace_line(session=""), "'session'"),
        (trace_line(turns="x"), "'turns' must be a list"),
        (trace_line(turns=[{"calls": [{"key": 3}]}]), "'key'"),
        (trace_line(turns=[{"calls": [{"key": "a", "think_ms": -1}]}]), "'think_ms'"),
        (trace_line(task={"type": 1}), "'task.type'"),
        (trace_line(task={"query": "\ud800"}), "not Unicode text"),
    ],
)
def test_malformed_trace_lines_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(trace_line() + "\n" + line + "\n")
    with pytest.raises(ph.MalformedInputError) as info:
        ph.read_traces(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert reason in info.value.reason


def test_trace_store_appends_whole_lines(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "sub" / "t.jsonl")
    assert store.load() == []
    t = ph.SessionTrace(session="a", turns=(ph.TurnTrace(query="q", calls=(ph.Call(key="x", think_ms=1.5),)),))
    store.append(t)
    store.append(t)
    assert store.load() == [t, t]
    assert (tmp_path / "sub" / "t.jsonl").read_text().count("\n") == 2
