"""Framework integrations (an optional extra: ``pip install 'prehydrate[langgraph]'``).

- :mod:`prehydrate.integrations.langgraph`: ``prehydrate_graph(app, engine)`` (``ainvoke`` unchanged,
  thread ids as sessions, interrupts and subgraphs), the explicit run lifecycle, the ``create_agent``
  middleware and a disk-backed node cache.
- :mod:`prehydrate.integrations.langchain`: the ``request_context`` tool and ``RetrieverSource``.

This package imports no framework itself, so ``import prehydrate.integrations`` always works; the
submodules say what to install when LangGraph or langchain-core is missing. The workflow predictor
lives in the core (``prehydrate.WorkflowPredictor``); its names are re-exported here for older code.
"""

from __future__ import annotations

from prehydrate import WorkflowDAG, WorkflowEdge, WorkflowNode, WorkflowPredictor

__all__ = [
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
]
