"""Workflow prediction: the probability of reaching each node of a graph times P(section | node).

A LangGraph app is a graph of nodes. Some edges always run, some are a router's choice. Once the
graph is known, the sections a run will request follow from two things: which nodes the run is
likely to reach, and which sections each node tends to request. :class:`WorkflowPredictor` scores a
section as::

    score(s) = sum over nodes n of P(reach n) x P(s | n) x discount ** steps(n)

``P(reach n)`` propagates from the node that runs now along the graph's edges: a plain edge always
fires, a router's edge fires with the branch probability learned from recorded runs (uniform before
any run; counted per run, so loops are fine). ``P(s | n)`` comes from recorded ``request_context``
calls that carry the node that made them (``Call.node`` in the trace format) and from sections a
node declares in its metadata (``add_node(..., metadata={"prehydrate": ["billing/refunds"]})``).
``steps(n)`` is how many edges away the node is, so the work needed soonest is launched first.

This module imports no framework: :meth:`WorkflowDAG.from_graph` reads a compiled LangGraph app by
duck typing (``get_graph()`` and ``builder``), and the predictor works on any :class:`WorkflowDAG`.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prehydrate import Call, Candidate, Catalog, ConfigError, Learner, PredictionState, Predictor, SessionTrace

__all__ = [
    "END",
    "START",
    "UndeclaredTargetsWarning",
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
]

logger = logging.getLogger("prehydrate.integrations.workflow")

START = "__start__"
"""LangGraph's name of the virtual first node."""
END = "__end__"
"""LangGraph's name of the virtual last node."""

METADATA_KEY = "prehydrate"
"""Node metadata key that declares the sections a node needs: ``{"prehydrate": ["billing/refunds"]}``."""


class UndeclaredTargetsWarning(UserWarning):
    """A router's possible targets are not declared, so the workflow predictor cannot see past it.

    LangGraph draws a conditional edge whose router has no ``Literal`` return annotation and no
    ``path_map`` as a plain edge to ``__end__``: the nodes it can reach are lost to ``get_graph()``.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowNode:
    """A node of the workflow and what it declares."""

    name: str
    sections: tuple[str, ...] = ()
    """Sections declared in the node's metadata (``metadata={"prehydrate": [...]}``)."""
    tool_node: bool = False
    """True for a LangGraph ``ToolNode`` (it runs the tool calls of the node before it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowEdge:
    """An edge; ``conditional`` edges from one source are the alternatives of its router."""

    source: str
    target: str
    conditional: bool = False


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
    raise ConfigError(f"node metadata {key!r} must be a section id or a list of section ids, got {raw!r}")


@dataclass(frozen=True, slots=True)
class WorkflowDAG:
    """The nodes and edges of a workflow, as the predictor needs them.

    Build it from a compiled LangGraph app with :meth:`from_graph`, or by hand for other workflow
    engines. Cycles (an agent and its tool node calling each other) are allowed: reach
    probabilities follow the shortest paths from the current node and ignore edges back.
    """

    nodes: Mapping[str, WorkflowNode]
    edges: tuple[WorkflowEdge, ...]
    undeclared: tuple[str, ...] = ()
    """Nodes whose router targets (or ``Command`` destinations) are not declared."""
    _out: dict[str, list[WorkflowEdge]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for e in self.edges:
            self._out.setdefault(e.source, []).append(e)

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[str, str] | tuple[str, str, bool]],
        *,
        sections: Mapping[str, Sequence[str]] | None = None,
        tool_nodes: Iterable[str] = (),
    ) -> WorkflowDAG:
        """A DAG from ``(source, target[, conditional])`` tuples (node names include START/END)."""
        es: list[WorkflowEdge] = []
        names: dict[str, None] = {}
        for item in edges:
            src, dst = item[0], item[1]
            cond = bool(item[2]) if len(item) > 2 else False
            es.append(WorkflowEdge(source=src, target=dst, conditional=cond))
            names.setdefault(src)
            names.setdefault(dst)
        declared = sections or {}
        for n in declared:
            names.setdefault(n)
        tools = set(tool_nodes)
        nodes = {n: WorkflowNode(name=n, sections=tuple(declared.get(n, ())), tool_node=n in tools) for n in names}
        return cls(nodes, tuple(es))

    @classmethod
    def from_graph(cls, graph: Any, *, metadata_key: str = METADATA_KEY, warn: bool = True) -> WorkflowDAG:
        """Read a compiled LangGraph app (anything with ``get_graph()``; ``builder`` when present).

        Args:
            graph: a compiled ``StateGraph`` (``CompiledStateGraph``).
            metadata_key: node metadata key holding declared section ids.
            warn: emit :class:`UndeclaredTargetsWarning` for routers without declared targets.

        Raises:
            ConfigError: ``graph`` has no ``get_graph()``, or node metadata is malformed.
        """
        get_graph = getattr(graph, "get_graph", None)
        if not callable(get_graph):
            raise ConfigError(f"expected a compiled LangGraph app with get_graph(), got {type(graph).__name__}")
        drawn = get_graph()
        nodes: dict[str, WorkflowNode] = {}
        for name, node in drawn.nodes.items():
            data = getattr(node, "data", None)
            nodes[name] = WorkflowNode(
                name=name,
                sections=_declared(getattr(node, "metadata", None), metadata_key),
                tool_node=type(data).__name__ == "ToolNode",
            )
        edges = tuple(
            WorkflowEdge(source=e.source, target=e.target, conditional=bool(e.conditional)) for e in drawn.edges
        )
        undeclared: list[str] = []
        builder = getattr(graph, "builder", None)
        if builder is not None:
            # Nodes get_graph() left out (unreachable from START) still carry declarations.
            for name, spec in getattr(builder, "nodes", {}).items():
                if name not in nodes:
                    nodes[name] = WorkflowNode(
                        name=name, sections=_declared(getattr(spec, "metadata", None), metadata_key)
                    )
            for src, branches in getattr(builder, "branches", {}).items():
                for branch_name, branch in branches.items():
                    if getattr(branch, "ends", None) is None:
                        undeclared.append(f"{src} ({branch_name})")
        if undeclared and warn:
            warnings.warn(
                "prehydrate cannot see where these routers lead, so nodes behind them get no prefetch: "
                + ", ".join(undeclared)
                + ". Declare the targets: annotate the router's return type with Literal[...], pass a "
                "path_map to add_conditional_edges, or add_node(..., destinations=(...)) for Command routing.",
                UndeclaredTargetsWarning,
                stacklevel=2,
            )
        return cls(nodes, edges, tuple(undeclared))

    def successors(self, node: str) -> Sequence[WorkflowEdge]:
        """Outgoing edges of ``node``."""
        return self._out.get(node, ())

    def distances(self, origin: str) -> dict[str, int]:
        """Steps from ``origin`` to every node it can reach (breadth first)."""
        dist = {origin: 0}
        queue = deque([origin])
        while queue:
            n = queue.popleft()
            for e in self._out.get(n, ()):
                if e.target not in dist:
                    dist[e.target] = dist[n] + 1
                    queue.append(e.target)
        return dist

    def reach(self, origin: str, branch: Callable[[str, str, Sequence[str]], float]) -> dict[str, tuple[float, int]]:
        """``{node: (P(reach), steps)}`` for every node reachable from ``origin``.

        A plain edge passes its source's probability on; the conditional edges of a source share it
        by ``branch(source, target, alternatives)``. Edges that do not lead further from ``origin``
        (loops back) are ignored, and probabilities arriving by several paths add up to at most 1.

        Args:
            origin: the node that runs now (``START`` before the run).
            branch: the probability that the router of ``source`` picks ``target`` among ``alternatives``.
        """
        dist = self.distances(origin)
        prob: dict[str, float] = defaultdict(float)
        prob[origin] = 1.0
        for n in sorted(dist, key=lambda x: dist[x]):
            p = min(1.0, prob[n])
            if p <= 0.0:
                continue
            out = self._out.get(n, ())
            alternatives = [e.target for e in out if e.conditional]
            for e in out:
                if dist.get(e.target, -1) <= dist[n]:
                    continue  # a loop back: the node already ran (or runs alongside)
                share = branch(n, e.target, alternatives) if e.conditional else 1.0
                prob[e.target] += p * share
        return {n: (min(1.0, prob[n]), d) for n, d in dist.items()}

    def conditional_sources(self) -> dict[str, list[str]]:
        """``{router node: [its targets]}``."""
        out: dict[str, list[str]] = {}
        for e in self.edges:
            if e.conditional:
                out.setdefault(e.source, []).append(e.target)
        return out


_Scope = str | None
"""What a count is conditioned on: a task type, or None for every run."""


class WorkflowPredictor:
    """Ranks sections by the workflow: P(reach node) x P(section | node), nearer nodes first.

    Implements the core ``Predictor`` and ``Learner`` protocols. It learns from recorded sessions
    whose calls carry ``node`` (``fit``) and from each finished run (``observe``), so a second run of
    the same workflow is already predicted. When the turn has a task type, branch and section
    probabilities are conditioned on it, backing off to all runs while that type has few runs.
    A ``fallback`` predictor, when given, is blended in at a lower weight (alone without a DAG).

    Example:
        >>> dag = WorkflowDAG.from_edges([("__start__", "router"), ("router", "billing", True),
        ...                               ("router", "api", True)], sections={"billing": ["billing/refunds"]})
        >>> p = WorkflowPredictor(dag)
        >>> p.branch_probability("router", "billing", ["billing", "api"])
        0.5
    """

    name = "workflow"

    def __init__(
        self,
        dag: WorkflowDAG | None = None,
        *,
        fallback: Predictor | None = None,
        discount: float = 0.85,
        smoothing: float = 1.0,
        backoff: float = 2.0,
        declared_probability: float = 0.9,
        fallback_weight: float = 0.5,
    ) -> None:
        """Create a predictor.

        Args:
            dag: the workflow; may be attached later with :meth:`attach`.
            fallback: another predictor blended in at ``fallback_weight`` (e.g. lexical, for free-text
                lookups the workflow cannot foresee); its ``fit`` runs with this one's.
            discount: weight per step to the node, so sooner work is launched first.
            smoothing: pseudo-runs pulling branch probabilities toward uniform (uniform before any run).
            backoff: pseudo-runs pulling task-type estimates toward the all-runs estimate.
            declared_probability: P(section | node) for sections a node declares in its metadata.
            fallback_weight: factor on the fallback's probabilities, so workflow evidence ranks first.
        """
        if not 0.0 < discount <= 1.0:
            raise ConfigError("WorkflowPredictor.discount must be within (0, 1]")
        if smoothing <= 0.0 or backoff < 0.0:
            raise ConfigError(
                "WorkflowPredictor needs smoothing > 0 (it keeps untried branches alive) and backoff >= 0"
            )
        self.dag = dag
        self.fallback = fallback
        self.discount = discount
        self.smoothing = smoothing
        self.backoff = backoff
        self.declared_probability = declared_probability
        self.fallback_weight = fallback_weight
        self._branch: dict[tuple[_Scope, str], Counter[str]] = defaultdict(Counter)
        self._branch_runs: Counter[tuple[_Scope, str]] = Counter()
        self._runs: Counter[tuple[_Scope, str]] = Counter()
        self._requests: dict[tuple[_Scope, str], Counter[str]] = defaultdict(Counter)
        self._next: dict[tuple[_Scope, str, str], Counter[str]] = defaultdict(Counter)
        self.turns_learned = 0

    # -- learning ----------------------------------------------------------------------------------

    def attach(self, dag: WorkflowDAG) -> None:
        """Use ``dag`` from now on (what was learned about nodes and branches is kept)."""
        self.dag = dag

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Learn branch and section probabilities from recorded sessions (replacing earlier learning)."""
        self._branch.clear()
        self._branch_runs.clear()
        self._runs.clear()
        self._requests.clear()
        self._next.clear()
        self.turns_learned = 0
        for trace in traces:
            for turn in trace.turns:
                self.observe(turn.calls, task_type=trace.task.type or None)
        if self.fallback is not None and isinstance(self.fallback, Learner):
            self.fallback.fit(traces, catalog)

    def observe(self, calls: Sequence[Call], visited: Iterable[str] = (), *, task_type: str | None = None) -> None:
        """Learn from one finished run: its calls (with their nodes) and the nodes it visited.

        Nodes that made calls count as visited. A router's choice is the target the run visited,
        or else the one target from which a visited node is reachable.
        """
        nodes = list(dict.fromkeys([*visited, *(c.node for c in calls if c.node)]))
        if not nodes:
            return
        self.turns_learned += 1
        scopes: tuple[_Scope, ...] = (None,) if task_type is None else (None, task_type)
        seen = set(nodes)
        per_node: dict[str, list[str]] = defaultdict(list)
        for c in calls:
            if c.node:
                per_node[c.node].append(c.key)
        for scope in scopes:
            for n in seen:
                self._runs[(scope, n)] += 1
            for n, keys in per_node.items():
                for k in dict.fromkeys(keys):
                    self._requests[(scope, n)][k] += 1
                for prev, nxt in zip(keys, keys[1:], strict=False):
                    self._next[(scope, n, prev)][nxt] += 1
            if self.dag is not None:
                self._learn_branches(seen, scope)

    def _learn_branches(self, visited: set[str], scope: _Scope) -> None:
        assert self.dag is not None
        for src, targets in self.dag.conditional_sources().items():
            taken = [t for t in targets if t in visited]
            if not taken:
                downstream = [t for t in targets if visited & set(self.dag.distances(t))]
                taken = downstream if len(downstream) == 1 else []
            if src in visited or taken:
                self._branch_runs[(scope, src)] += 1
            for t in taken:
                self._branch[(scope, src)][t] += 1

    # -- probabilities -----------------------------------------------------------------------------

    def _mix(self, specific: float, n_specific: float, general: float) -> float:
        """Back off from a task-type estimate built on few runs to the all-runs estimate."""
        if n_specific <= 0:
            return general
        w = n_specific / (n_specific + self.backoff)
        return w * specific + (1.0 - w) * general

    def branch_probability(
        self, source: str, target: str, alternatives: Sequence[str], task_type: str | None = None
    ) -> float:
        """P(a run that reaches ``source`` goes on to ``target``), smoothed toward uniform.

        Counted per run, not per decision: in a loop (an agent and its tool node) a router may
        pick several targets in one run, and each of them is then reached.
        """
        prior = 1.0 / max(1, len(alternatives))

        def estimate(scope: _Scope) -> tuple[float, int]:
            runs = self._branch_runs.get((scope, source), 0)
            taken = self._branch.get((scope, source), Counter())[target]
            return (taken + self.smoothing * prior) / (runs + self.smoothing), runs

        general, _ = estimate(None)
        if task_type is None:
            return general
        specific, n = estimate(task_type)
        return self._mix(specific, n, general)

    def section_probabilities(
        self, node: str, last: str | None = None, task_type: str | None = None
    ) -> dict[str, float]:
        """P(section | node): learned request rates, declared sections, and what follows ``last`` there."""

        def rates(scope: _Scope) -> tuple[dict[str, float], int, dict[str, float]]:
            runs = self._runs.get((scope, node), 0)
            req = self._requests.get((scope, node), Counter())
            base = {sid: n / runs for sid, n in req.items()} if runs else {}
            nxt: dict[str, float] = {}
            if last is not None:
                counts = self._next.get((scope, node, last))
                if counts:
                    total = sum(counts.values())
                    nxt = {sid: n / total for sid, n in counts.items()}
            return base, runs, nxt

        base, _, nxt = rates(None)
        out = dict(base)
        if task_type is not None:
            t_base, t_runs, t_nxt = rates(task_type)
            if t_runs:
                out = {sid: self._mix(t_base.get(sid, 0.0), t_runs, base.get(sid, 0.0)) for sid in base | t_base}
                if t_nxt:
                    nxt = {sid: self._mix(t_nxt.get(sid, 0.0), t_runs, nxt.get(sid, 0.0)) for sid in nxt | t_nxt}
        if self.dag is not None and node in self.dag.nodes:
            for sid in self.dag.nodes[node].sections:
                out[sid] = max(out.get(sid, 0.0), self.declared_probability)
        if nxt:
            out = {sid: 0.5 * out.get(sid, 0.0) + 0.5 * nxt.get(sid, 0.0) for sid in out | nxt}
        return out

    # -- prediction --------------------------------------------------------------------------------

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Up to ``k`` sections, best first (ties in document order)."""
        if k <= 0:
            return []
        out: list[Candidate] = []
        task_type = state.request.task_type or None
        scores: dict[str, float] = defaultdict(float)
        why: dict[str, tuple[float, str, int, float]] = {}
        reasons: dict[str, str] = {}
        if self.dag is not None:
            origin = state.node if state.node is not None and state.node in self.dag.nodes else START
            reach = self.dag.reach(origin, lambda s, t, alts: self.branch_probability(s, t, alts, task_type))
            seen = state.seen
            for node, (p_reach, steps) in reach.items():
                if p_reach <= 0.0:
                    continue
                last = state.calls[-1] if node == origin and state.calls else None
                weight = p_reach * self.discount**steps
                for sid, p_sec in self.section_probabilities(node, last, task_type).items():
                    if sid in seen or sid not in state.catalog:
                        continue
                    contribution = weight * p_sec
                    scores[sid] += contribution
                    if sid not in why or contribution > why[sid][0]:
                        why[sid] = (contribution, node, steps, p_reach)
        if self.fallback is not None:
            # Blend in the fallback's view (e.g. lexical: what the turn's words point at) at a lower
            # weight, so workflow evidence leads and the fallback covers what the workflow cannot see.
            for c in self.fallback.predict(state, k):
                if c.section_id in state.seen or c.section_id not in state.catalog:
                    continue
                contribution = self.fallback_weight * c.probability
                scores[c.section_id] += contribution
                if c.section_id not in why or contribution > why[c.section_id][0]:
                    why[c.section_id] = (contribution, "", -1, 0.0)
                    reasons[c.section_id] = f"fallback: {c.reason}"
        ranked = sorted(scores, key=lambda s: (-scores[s], state.catalog.position(s)))
        for sid in ranked[:k]:
            _, node, steps, p_reach = why[sid]
            reason = reasons.get(sid) or f"workflow: node {node!r} in {steps} step(s), P(reach)={p_reach:.2f}"
            out.append(Candidate(section_id=sid, probability=min(1.0, scores[sid]), reason=reason))
        return out
