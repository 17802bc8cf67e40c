"""Every built-in source and predictor passes the conformance suites ``prehydrate.testing`` ships.

The cache tiers run ``CacheTierConformance`` in test_cache_tiers.py (memory, disk) and
test_redis_tier.py (a real redis-server); RetrieverSource runs ``SourceConformance`` in
tests/integrations/test_sources_and_node_cache.py (it needs langchain-core).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate.testing import PredictorConformance, SourceConformance

SAMPLE = ph.sample_sections_path()
TEXTS = {s.id: f"text of {s.id}" for s in ph.JsonlSource(SAMPLE).list_sections()}


def handler(section_id: str, scope: ph.Scope) -> str:
    return TEXTS[section_id]


class TestJsonlSource(SourceConformance):
    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        return lambda: ph.JsonlSource(SAMPLE)


class TestDirectorySource(SourceConformance):
    @pytest.fixture
    def make_source(self, tmp_path: Path) -> Callable[[], ph.Source]:
        (tmp_path / "guide.md").write_text("# Guide\n\nIntro.\n\n## Setup\n\nSteps.\n", encoding="utf-8")
        (tmp_path / "faq.md").write_text("# FAQ\n\nAnswers.\n", encoding="utf-8")
        return lambda: ph.DirectorySource(tmp_path, watch=False)


class TestCallableSource(SourceConformance):
    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        return lambda: ph.CallableSource(handler, list(TEXTS), speculative=True)


class TestCallableSourceNotSpeculative(SourceConformance):
    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        async def counter(section_id: str, scope: ph.Scope) -> str:
            return f"{section_id}: read once"

        return lambda: ph.CallableSource(counter, ["a", "b/c"])


class TestMockSource(SourceConformance):
    @pytest.fixture
    def make_source(self) -> Callable[[], ph.Source]:
        return lambda: ph.MockSource(handler, list(TEXTS), latency_s=0.001)


class TestSqlSourceOnSqlite(SourceConformance):
    @pytest.fixture
    def make_source(self, tmp_path: Path) -> Callable[[], ph.Source]:
        sa = pytest.importorskip("sqlalchemy", reason="SqlSource needs the sql extra")
        url = f"sqlite:///{tmp_path / 'kb.db'}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kb (slug TEXT PRIMARY KEY, title TEXT, body TEXT)"))
            rows = [
                {"slug": "refunds", "title": "Refunds", "body": "5 days."},
                {"slug": "sso", "title": "SSO", "body": "SAML."},
            ]
            conn.execute(sa.text("INSERT INTO kb VALUES (:slug, :title, :body)"), rows)
        engine.dispose()
        return lambda: ph.SqlSource(url, table="kb", id_column="slug", title_column="title")


class TestSequentialPredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.SequentialPredictor


class TestTracePredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.TracePredictor


class TestLexicalPredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.LexicalPredictor


class TestUsagePredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.UsagePredictor


class TestNeighborPredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.NeighborPredictor


class TestReferencePredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.ReferencePredictor


class TestWorkflowPredictor(PredictorConformance):
    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.WorkflowPredictor


class TestDefaultPredictor(PredictorConformance):
    points = 30  # the fitted ensemble is the slowest to fit; fewer points keep the suite short

    @pytest.fixture
    def make_predictor(self) -> Callable[[], ph.Predictor]:
        return ph.default_predictor


def test_the_suites_reject_a_broken_source() -> None:
    class WrongId(ph.MockSource):
        async def hydrate(self, section_id: str, *, scope: ph.Scope) -> ph.Hydrated:
            return ph.Hydrated(section_id="other", content="x", version="v")

    suite = SourceConformance()
    with pytest.raises(AssertionError, match="returned section 'other'"):
        asyncio.run(suite.test_hydrates_every_listed_section(WrongId(lambda s, sc: "x", ["a", "b"])))


def test_the_suites_reject_a_predictor_answering_outside_the_catalog() -> None:
    class Inventor:
        def predict(self, state: ph.PredictionState, k: int) -> list[ph.Candidate]:
            return [ph.Candidate(section_id="invented/id", probability=0.5)]

    suite = PredictorConformance()
    state = ph.PredictionState(request=ph.ContextRequest(query="q"), catalog=ph.Catalog([]))
    with pytest.raises(AssertionError, match="not in the catalog"):
        suite.check_answer(Inventor().predict(state, 3), state, 3)


def test_importing_prehydrate_does_not_import_the_suites_or_pytest() -> None:
    code = "import sys, prehydrate; print([m for m in ('prehydrate.testing', 'pytest') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
