"""Conformance suites for your own sources, cache tiers and predictors (requires pytest).

Subclass a suite in a test module under a name pytest collects, provide its factory fixture, and
every test of the contract runs for your implementation, as LangGraph ships its checkpointer
conformance tests::

    from prehydrate.testing import SourceConformance

    class TestMySource(SourceConformance):
        @pytest.fixture
        def make_source(self):
            return lambda: MySource("...")

prehydrate runs the same suites against every built-in implementation. Importing ``prehydrate``
never imports this package (nor pytest); see docs/engine.md.
"""

from __future__ import annotations

from ._predictors import PredictorConformance
from ._sources import SourceConformance
from ._tiers import SAMPLE_KEY, CacheTierConformance, sample_entry

__all__ = ["CacheTierConformance", "PredictorConformance", "SAMPLE_KEY", "SourceConformance", "sample_entry"]
