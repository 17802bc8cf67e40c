"""Framework integrations (an optional extra: ``pip install 'prehydrate[langgraph]'``).

- :mod:`prehydrate.integrations.langgraph`: the entry node, the run lifecycle with its bailout,
  the workflow predictor (P(reach node) x P(section | node)) and a disk-backed node cache.
- :mod:`prehydrate.integrations.langchain`: the ``request_context`` tool and ``RetrieverSource``.

This package imports no framework itself, so ``import prehydrate.integrations`` always works; the
submodules say what to install when LangGraph or langchain-core is missing. The workflow predictor
has no framework dependency and is importable from here.
"""

from __future__ import annotations

from prehydrate.integrations._workflow import (
    UndeclaredTargetsWarning,
    WorkflowDAG,
    WorkflowEdge,
    WorkflowNode,
    WorkflowPredictor,
)

__all__ = [
    "UndeclaredTargetsWarning",
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
]
