"""The DAG of a compiled LangGraph app, as the core's workflow predictor needs it.

``workflow_dag(app)`` reads ``app.get_graph(xray=True)``: subgraphs are expanded, their nodes
named ``outer:inner`` (the names :func:`qualified_node` gives a running nested node), so the
predictor follows a run into its subgraphs. Node metadata ``{"prehydrate": [...]}`` declares the
sections a node needs. Routers without declared targets are reported with
:class:`UndeclaredTargetsWarning` at the caller's line.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import prehydrate as ph

__all__ = ["METADATA_KEY", "UndeclaredTargetsWarning", "qualified_node", "workflow_dag"]

METADATA_KEY = "prehydrate"
"""Node metadata key that declares the sections a node needs: ``{"prehydrate": ["billing/refunds"]}``."""

NODE_KEY = "langgraph_node"
"""Config metadata key under which LangGraph names the running node."""
NS_KEY = "langgraph_checkpoint_ns"
"""Config metadata key holding the running node's path through nested graphs (``outer:id|inner:id``)."""


class UndeclaredTargetsWarning(UserWarning):
    """A router's possible targets are not declared, so the workflow predictor cannot see past it.

    LangGraph draws a conditional edge whose router has no ``Literal`` return annotation and no
    ``path_map`` as a plain edge to ``__end__``: the nodes it can reach are lost to ``get_graph()``.
    """


def _declared(metadata: Any, key: str) -> tuple[str, ...]:
    if not isinstance(metadata, Mapping):
        return ()
    raw = metadata.get(key)
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, Iterable) and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    raise ph.ConfigError(f"node metadata {key!r} must be a section id or a list of section ids, got {raw!r}")


def _undeclared(graph: Any, prefix: str = "") -> list[str]:
    """Routers (of the graph and its subgraphs) whose targets ``get_graph()`` cannot see."""
    out: list[str] = []
    builder = getattr(graph, "builder", None)
    if builder is None:
        return out
    for src, branches in getattr(builder, "branches", {}).items():
        for branch_name, branch in branches.items():
            if getattr(branch, "ends", None) is None:
                out.append(f"{prefix}{src} ({branch_name})")
    for name, spec in getattr(builder, "nodes", {}).items():
        inner = getattr(spec, "runnable", None)
        if inner is not None and getattr(inner, "builder", None) is not None and inner is not graph:
            out.extend(_undeclared(inner, f"{prefix}{name}:"))
    return out


def workflow_dag(
    graph: Any, *, name: str = "", xray: bool = True, metadata_key: str = METADATA_KEY, warn: bool = True
) -> ph.WorkflowDAG:
    """The :class:`~prehydrate.WorkflowDAG` of a compiled LangGraph app.

    Args:
        graph: a compiled graph (anything with ``get_graph()``; ``builder`` when present).
        name: what learned counts are kept under (default: the graph's name and its builder's
            identity, so two graphs on one engine never share counts, even with the same node names;
            give the same name to graphs that should).
        xray: expand subgraphs (their nodes are named ``outer:inner``).
        metadata_key: node metadata key holding declared section ids.
        warn: emit :class:`UndeclaredTargetsWarning` for routers without declared targets.

    Raises:
        ConfigError: ``graph`` has no ``get_graph()``, node metadata is malformed, or a node name is not
            Unicode text (a lone surrogate: LangGraph cannot run such a graph).
    """
    get_graph = getattr(graph, "get_graph", None)
    if not callable(get_graph):
        raise ph.ConfigError(
            f"workflow_dag() needs the compiled app (what StateGraph.compile() returns), got {type(graph).__name__}"
        )
    try:
        drawn = get_graph(xray=xray)
    except UnicodeEncodeError as exc:  # LangGraph hashes node names as UTF-8: it can neither draw nor run this one
        raise ph.ConfigError(
            f"the graph has a name that is not Unicode text ({exc.object!a}); LangGraph cannot run it: rename it"
        ) from None
    nodes: dict[str, ph.WorkflowNode] = {}
    for node_name, node in drawn.nodes.items():
        nodes[node_name] = ph.WorkflowNode(
            name=node_name,
            sections=_declared(getattr(node, "metadata", None), metadata_key),
            tool_node=type(getattr(node, "data", None)).__name__ == "ToolNode",
        )
    edges = tuple(
        ph.WorkflowEdge(source=e.source, target=e.target, conditional=bool(e.conditional)) for e in drawn.edges
    )
    builder = getattr(graph, "builder", None)
    if builder is not None:
        # Nodes get_graph() left out (unreachable from START) still carry declarations.
        for node_name, spec in getattr(builder, "nodes", {}).items():
            if node_name not in nodes and not any(n.startswith(f"{node_name}:") for n in nodes):
                nodes[node_name] = ph.WorkflowNode(
                    name=node_name, sections=_declared(getattr(spec, "metadata", None), metadata_key)
                )
    undeclared = _undeclared(graph)
    if undeclared and warn:
        warnings.warn(
            "prehydrate cannot see where these routers lead, so nodes behind them get no prefetch: "
            + ", ".join(undeclared)
            + ". Declare the targets: annotate the router's return type with Literal[...], pass a "
            "path_map to add_conditional_edges, or add_node(..., destinations=(...)) for Command routing.",
            UndeclaredTargetsWarning,
            stacklevel=_user_stacklevel(),
        )
    if not name:
        name = f"{getattr(graph, 'name', None) or 'graph'}@{id(builder if builder is not None else graph):x}"
    return ph.WorkflowDAG(nodes, edges, tuple(undeclared), name=name)


def _user_stacklevel() -> int:
    """The stack level of the first frame outside prehydrate, so a warning points at the user's line."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the warning's caller is level 1
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("prehydrate."):
        frame = frame.f_back
        level += 1
    return level


def qualified_node(metadata: Mapping[str, Any] | None) -> str | None:
    """The running node's name as :func:`workflow_dag` spells it (``outer:inner`` inside subgraphs)."""
    if not metadata:
        return None
    node = metadata.get(NODE_KEY)
    if not isinstance(node, str):
        return None
    ns = metadata.get(NS_KEY)
    if not isinstance(ns, str) or "|" not in ns:
        return node
    names = [part.split(":", 1)[0] for part in ns.split("|") if part]
    return ":".join(names) if names and names[-1] == node else node
