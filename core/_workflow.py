"""Workflow prediction: the probability of reaching each node of a graph times P(section | node).

An agent built as a graph of nodes (a LangGraph app, or any workflow engine) requests sections
from its nodes. Once the graph is known, the sections a run will request follow from two things:
which nodes the run is likely to reach, and which sections each node tends to request.
:class:`WorkflowPredictor` scores a section as::

    score(s) = sum over nodes n of P(reach n) x P(s | n) x discount ** steps(n)

``P(reach n)`` propagates from the node that runs now along the graph's edges: a plain edge always
fires, a router's edge fires with the branch probability learned from finished runs (uniform before
any run; counted per run, so loops are fine). ``P(s | n)`` comes from recorded ``request_context``
calls that carry the node that made them (``Call.node`` in the trace format) and from sections a
node declares. ``steps(n)`` is how many edges away the node is, so the work needed soonest goes first.

The graph is an input of the prediction, not a setting of the predictor: a front end puts the
running graph's :class:`WorkflowDAG` into :attr:`PredictionState.workflow`, so one predictor (and one
engine) serves several graphs, each with its own learned counts (keyed by :attr:`WorkflowDAG.key`).
What the TraceStore teaches (``fit``) carries no graph and backs every graph's counts off to it.
The two are kept apart: a refit replaces what traces taught and keeps what graph runs taught
online, since a recorded session has neither the graph nor the nodes a run passed without a call,
so no fit could count those runs again (and a run both recorded and observed is counted once at
each level, never twice at one).

This module knows no framework; ``prehydrate.integrations.langgraph`` reads the DAG of a compiled app.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ._catalog import Catalog, tokenize
from ._errors import ConfigError
from ._predict import (
    Candidate,
    ContextRequest,
    Learner,
    PredictionState,
    Predictor,
    constructor_options,
    fresh_like,
)
from ._text import clean_text, utf8
from ._traces import Call, SessionTrace

__all__ = [
    "END",
    "START",
    "FinishedTurn",
    "TurnObserver",
    "WorkflowDAG",
    "WorkflowEdge",
    "WorkflowNode",
    "WorkflowPredictor",
    "blend_signals",
]

START = "__start__"
"""Name of the virtual first node (LangGraph's)."""
END = "__end__"
"""Name of the virtual last node (LangGraph's)."""

MAX_QUERY_WORDS = 48
"""Words of a turn's query that condition the workflow's counts (the rest are ignored)."""

ANY_GRAPH = ""
"""The graph key of what was learned from traces (they do not record which graph made a call)."""

_STATE_VERSION = 1
"""Version of :meth:`WorkflowPredictor.state_dict`'s layout (a persisted model file holds it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowNode:
    """A node of the workflow and what it declares."""

    name: str
    sections: tuple[str, ...] = ()
    """Sections the node declares it needs (LangGraph: ``metadata={"prehydrate": [...]}``)."""
    tool_node: bool = False
    """True for a node that runs the tool calls of the node before it (a LangGraph ``ToolNode``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowEdge:
    """An edge; ``conditional`` edges from one source are the alternatives of its router."""

    source: str
    target: str
    conditional: bool = False


@dataclass(frozen=True, slots=True)
class WorkflowDAG:
    """The nodes and edges of a workflow, as the predictor needs them.

    Cycles (an agent and its tool node calling each other) are allowed: reach probabilities follow
    the shortest paths from the current node and ignore edges back. Nested graphs appear flattened,
    their nodes named ``outer:inner``.
    """

    nodes: Mapping[str, WorkflowNode]
    edges: tuple[WorkflowEdge, ...]
    undeclared: tuple[str, ...] = ()
    """Nodes whose router targets are not declared (the predictor cannot see past them)."""
    name: str = ""
    """What learned counts are kept under; empty: a digest of the nodes and edges (see :attr:`key`)."""
    _out: dict[str, list[WorkflowEdge]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _routers: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _dist: dict[str, dict[str, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._clean_names()
        for e in self.edges:
            self._out.setdefault(e.source, []).append(e)
            if e.conditional:
                self._routers.setdefault(e.source, []).append(e.target)

    def _clean_names(self) -> None:
        """Node names as Unicode text: a lone surrogate becomes U+FFFD, as in a turn's node.

        The graph's description enters the core here, as a turn's node enters it through the
        session (``optional_text``): both sides get the same cleaning, so a run of node
        ``"plan\\ud800"`` (its calls recorded as ``"plan\\ufffd"``) finds its node in the graph.
        """
        names = [*self.nodes, *(n.name for n in self.nodes.values())]
        names += [x for e in self.edges for x in (e.source, e.target)]
        if all(clean_text(x) is x for x in names):
            return
        nodes = {clean_text(k): replace(n, name=clean_text(n.name)) for k, n in self.nodes.items()}
        edges = tuple(replace(e, source=clean_text(e.source), target=clean_text(e.target)) for e in self.edges)
        object.__setattr__(self, "nodes", nodes)  # frozen: set once, before the DAG is used
        object.__setattr__(self, "edges", edges)

    @property
    def key(self) -> str:
        """The graph's identity for learned counts: :attr:`name`, else a digest of its shape.

        Two graphs on one engine keep separate counts even when their node names coincide, and the
        same graph gets the same key in every process.
        """
        if self.name:
            return self.name
        shape = "|".join(sorted(f"{e.source}>{e.target}>{int(e.conditional)}" for e in self.edges))
        return "dag-" + hashlib.blake2b(utf8(shape), digest_size=6).hexdigest()

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[str, str] | tuple[str, str, bool]],
        *,
        sections: Mapping[str, Sequence[str]] | None = None,
        tool_nodes: Iterable[str] = (),
        name: str = "",
    ) -> WorkflowDAG:
        """A DAG from ``(source, target[, conditional])`` tuples (node names include START/END)."""
        es: list[WorkflowEdge] = []
        names: dict[str, None] = {}
        for item in edges:
            cond = bool(item[2]) if len(item) > 2 else False
            es.append(WorkflowEdge(source=item[0], target=item[1], conditional=cond))
            names.setdefault(item[0])
            names.setdefault(item[1])
        declared = sections or {}
        for n in declared:
            names.setdefault(n)
        tools = set(tool_nodes)
        nodes = {n: WorkflowNode(name=n, sections=tuple(declared.get(n, ())), tool_node=n in tools) for n in names}
        return cls(nodes, tuple(es), name=name)

    def successors(self, node: str) -> Sequence[WorkflowEdge]:
        """Outgoing edges of ``node``."""
        return self._out.get(node, ())

    def distances(self, origin: str) -> dict[str, int]:
        """Steps from ``origin`` to every node it can reach (breadth first; cached, the DAG is frozen)."""
        cached = self._dist.get(origin)
        if cached is not None:
            return cached
        dist = {origin: 0}
        queue = deque([origin])
        while queue:
            n = queue.popleft()
            for e in self._out.get(n, ()):
                if e.target not in dist:
                    dist[e.target] = dist[n] + 1
                    queue.append(e.target)
        self._dist[origin] = dist
        return dist

    def reach(self, origin: str, branch: Callable[[str, str, Sequence[str]], float]) -> dict[str, tuple[float, int]]:
        """``{node: (P(reach), steps)}`` for every node reachable from ``origin``.

        A plain edge passes its source's probability on; the conditional edges of a source share it
        by ``branch(source, target, alternatives)``. Edges that do not lead further from ``origin``
        (loops back) are ignored, and probabilities arriving by several paths add up to at most 1.
        """
        dist = self.distances(origin)
        prob: dict[str, float] = defaultdict(float)
        prob[origin] = 1.0
        for n in sorted(dist, key=lambda x: dist[x]):
            p = min(1.0, prob[n])
            if p <= 0.0:
                continue
            alternatives = self._routers.get(n, [])
            for e in self._out.get(n, ()):
                if dist.get(e.target, -1) <= dist[n]:
                    continue  # a loop back: the node already ran (or runs alongside)
                share = branch(n, e.target, alternatives) if e.conditional else 1.0
                prob[e.target] += p * share
        return {n: (min(1.0, prob[n]), d) for n, d in dist.items()}

    def conditional_sources(self) -> dict[str, list[str]]:
        """``{router node: [its targets]}``."""
        return {k: list(v) for k, v in self._routers.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedTurn:
    """A finished turn, as online learners see it."""

    request: ContextRequest
    calls: tuple[Call, ...]
    workflow: WorkflowDAG | None = None
    """The graph the turn ran, when a workflow front end knows it."""
    visited: tuple[str, ...] = ()
    """Nodes the turn ran through, in order (those that made calls count even when missing here)."""


@runtime_checkable
class TurnObserver(Protocol):
    """A predictor that learns from each finished turn as it happens (between fits)."""

    def observe_turn(self, turn: FinishedTurn) -> None:
        """Learn from ``turn``; must be cheap (it runs when a turn ends)."""
        ...


_Scope = tuple[str, str | None]
"""What a count is conditioned on: (graph key or ANY_GRAPH, task type or None)."""


class _Counts:
    """Branch and section counts of one kind of evidence (traces, or graph runs observed online)."""

    def __init__(self) -> None:
        self.branch: dict[tuple[_Scope, str], Counter[str]] = defaultdict(Counter)
        self.branch_runs: Counter[tuple[_Scope, str]] = Counter()
        self.runs: Counter[tuple[_Scope, str]] = Counter()
        self.requests: dict[tuple[_Scope, str], Counter[str]] = defaultdict(Counter)
        self.next: dict[tuple[_Scope, str, str], Counter[str]] = defaultdict(Counter)
        self.word_runs: dict[tuple[_Scope, str], Counter[str]] = defaultdict(Counter)
        """(scope, node) -> runs through the node whose query had the word."""
        self.word_requests: dict[tuple[_Scope, str, str], Counter[str]] = defaultdict(Counter)
        """(scope, node, word) -> sections requested there in those runs."""
        self.word_branch: dict[tuple[_Scope, str, str], Counter[str]] = defaultdict(Counter)
        """(scope, router, word) -> targets taken in runs whose query had the word."""
        self.turns = 0

    def add(
        self,
        calls: Sequence[Call],
        visited: Iterable[str],
        dag: WorkflowDAG | None,
        task: str | None,
        words: Sequence[str] = (),
    ) -> None:
        nodes = list(dict.fromkeys([*visited, *(c.node for c in calls if c.node)]))
        if not nodes:
            return
        self.turns += 1
        graph = dag.key if dag is not None else ANY_GRAPH
        scopes: list[_Scope] = [(graph, None)] if task is None else [(graph, None), (graph, task)]
        seen = set(nodes)
        per_node: dict[str, list[str]] = defaultdict(list)
        for c in calls:
            if c.node:
                per_node[c.node].append(c.key)
        for scope in scopes:
            for n in seen:
                self.runs[(scope, n)] += 1
                for w in words:
                    self.word_runs[(scope, n)][w] += 1
            for n, keys in per_node.items():
                for k in dict.fromkeys(keys):
                    self.requests[(scope, n)][k] += 1
                    for w in words:
                        self.word_requests[(scope, n, w)][k] += 1
                for prev, nxt in zip(keys, keys[1:], strict=False):
                    self.next[(scope, n, prev)][nxt] += 1
            if dag is not None:
                self._branches(dag, seen, scope, words)

    def _branches(self, dag: WorkflowDAG, visited: set[str], scope: _Scope, words: Sequence[str]) -> None:
        for src, targets in dag.conditional_sources().items():
            taken = [t for t in targets if t in visited]
            if not taken:
                downstream = [t for t in targets if visited & set(dag.distances(t))]
                taken = downstream if len(downstream) == 1 else []
            if src in visited or taken:
                self.branch_runs[(scope, src)] += 1
                if src not in visited:  # reached (a target was), though not reported: count its words too
                    for w in words:
                        self.word_runs[(scope, src)][w] += 1
            for t in taken:
                self.branch[(scope, src)][t] += 1
                for w in words:
                    self.word_branch[(scope, src, w)][t] += 1

    # -- persistence (plain JSON data: a scope tuple is flattened into its key's list) ---------------

    def state(self) -> dict[str, Any]:
        """These counts as JSON-able data: each table a list of ``[graph, task, *key, counts]`` rows."""
        out: dict[str, Any] = {"turns": self.turns}
        for name in _TABLES:
            table: Mapping[tuple[Any, ...], Counter[str] | int] = getattr(self, name)
            out[name] = [[*key[0], *key[1:], dict(v) if isinstance(v, Counter) else v] for key, v in table.items()]
        return out

    @classmethod
    def from_state(cls, data: object) -> _Counts:
        """Counts restored from :meth:`state`; ValueError when ``data`` is not such a state."""
        if not isinstance(data, dict) or not _is_count(data.get("turns")):
            raise ValueError("workflow counts need a 'turns' count")
        counts = cls()
        counts.turns = data["turns"]
        for name, arity in _TABLES.items():
            rows = data.get(name)
            if not isinstance(rows, list):
                raise ValueError(f"workflow counts need a {name!r} list")
            table = getattr(counts, name)
            for row in rows:
                if not isinstance(row, list) or len(row) != arity + 3:
                    raise ValueError(f"a {name!r} row is not [graph, task, {arity} key(s), counts]")
                graph, task, *rest, value = row
                if not (isinstance(graph, str) and (task is None or isinstance(task, str))):
                    raise ValueError(f"a {name!r} row has no (graph, task type) scope")
                if not all(isinstance(k, str) for k in rest):
                    raise ValueError(f"a {name!r} row has a key that is not a string")
                table[((graph, task), *rest)] = _counter(value, name) if name not in _SCALARS else _count(value, name)
        return counts


_TABLES: dict[str, int] = {
    "branch": 1,
    "branch_runs": 1,
    "runs": 1,
    "requests": 1,
    "next": 2,
    "word_runs": 1,
    "word_requests": 2,
    "word_branch": 2,
}
"""The count tables of :class:`_Counts` and how many strings follow the scope in their keys."""
_SCALARS = frozenset({"branch_runs", "runs"})
"""Tables whose values are plain counts (the others map a section, target or word to a count)."""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: object, table: str) -> int:
    if not _is_count(value):
        raise ValueError(f"a {table!r} row's count is not a non-negative integer")
    assert isinstance(value, int)
    return value


def _counter(value: object, table: str) -> Counter[str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and _is_count(v) for k, v in value.items()):
        raise ValueError(f"a {table!r} row's counts are not a mapping of strings to non-negative integers")
    return Counter(value)


def _word_branch(counts: _Counts) -> Mapping[tuple[_Scope, str, str], Counter[str]]:
    return counts.word_branch


def _word_requests(counts: _Counts) -> Mapping[tuple[_Scope, str, str], Counter[str]]:
    return counts.word_requests


class WorkflowPredictor:
    """Ranks sections by the workflow: P(reach node) x P(section | node), nearer nodes first.

    Implements ``Predictor``, ``Learner`` and :class:`TurnObserver`. The graph comes with each
    prediction (:attr:`PredictionState.workflow`); without one the predictor says nothing (or only
    its ``fallback``), so it is safe inside an ensemble that also serves plain turns. Counts are
    kept per graph and per task type, backing off to the task-less, then to the trace-learned
    (graph-less) counts while a graph or type has few runs. Fitting builds new trace-learned counts
    aside and swaps them in under a lock (graph-less runs observed meanwhile are replayed onto
    them), so a refit in a worker thread never races the event loop's predictions and
    observations; the counts of graph runs observed online are not the fit's and survive it.

    Example:
        >>> dag = WorkflowDAG.from_edges([("__start__", "router"), ("router", "billing", True),
        ...                               ("router", "api", True)], sections={"billing": ["billing/refunds"]})
        >>> p = WorkflowPredictor()
        >>> p.branch_probability("router", "billing", ["billing", "api"], dag=dag)
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
        query_smoothing: float = 0.5,
        rate_smoothing: float = 1.0,
    ) -> None:
        """Create a predictor.

        Args:
            dag: a graph used when a prediction comes without one (a single-graph setup).
            fallback: another predictor blended in at ``fallback_weight`` (e.g. lexical, for free-text
                lookups the workflow cannot foresee); its ``fit`` runs with this one's.
            discount: weight per step to the node, so sooner work is launched first.
            smoothing: pseudo-runs pulling branch probabilities toward uniform (uniform before any run).
            backoff: pseudo-runs pulling graph and task-type estimates toward the more general ones.
            declared_probability: P(section | node) for sections a node declares.
            fallback_weight: factor on the fallback's probabilities, so workflow evidence ranks first.
            query_smoothing: pseudo-runs pulling what runs with a word of the turn's query did toward
                what all runs through the node did.
            rate_smoothing: pseudo-runs (that requested nothing) added to a node's request rates.
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
        self.query_smoothing = query_smoothing
        self.rate_smoothing = rate_smoothing
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._traced = _Counts()
        """Graph-less counts: what ``fit`` learned from traces (and runs observed without a graph)."""
        self._graphs = _Counts()
        """Per-graph counts from runs observed online; a fit never replaces them (traces hold no graph)."""
        self._since_fit: list[FinishedTurn] | None = None

    def _words(self, query: str) -> tuple[str, ...]:
        """The query's index words (stemmed, no stopwords), cached for the last queries seen."""
        if not query.strip():
            return ()
        found = self._tokens.get(query)
        if found is None:
            found = tuple(dict.fromkeys(tokenize([query])[0]))[:MAX_QUERY_WORDS]
            if len(self._tokens) >= 1024:
                self._tokens.clear()
            self._tokens[query] = found
        return found

    @property
    def turns_learned(self) -> int:
        """Turns counted so far: from traces, plus graph runs observed online (a run that is both
        recorded and observed counts once at each level)."""
        return self._traced.turns + self._graphs.turns

    def _at(self, scope: _Scope) -> _Counts:
        """The counts that hold ``scope``: per-graph ones for a graph's key, else the trace-learned ones."""
        return self._traced if scope[0] == ANY_GRAPH else self._graphs

    # -- learning ----------------------------------------------------------------------------------

    def fresh(self) -> WorkflowPredictor:
        """An unfitted predictor configured like this one (another tenant's, see ``LearningPolicy``).

        The same default graph and settings, no counts, so one tenant's graph runs never rank
        another's sections; the fallback is made fresh too when it can be (its ``fresh()``), else
        shared (a fallback that learns nothing, like lexical, is safe to share). Every constructor
        argument is carried over from :func:`constructor_options` (the signature is the one list of them).
        """
        options = constructor_options(self)
        if self.fallback is not None:
            options["fallback"] = fresh_like(self.fallback) or self.fallback
        return WorkflowPredictor(**options)

    def attach(self, dag: WorkflowDAG) -> None:
        """Use ``dag`` for predictions that come without a graph (what was learned is kept)."""
        self.dag = dag

    def fit(self, traces: Sequence[SessionTrace], catalog: Catalog) -> None:
        """Learn from recorded sessions, replacing what earlier fits learned from traces.

        The graph runs observed online are kept: their sessions carry no graph, so this fit counts
        them only at the graph-less level, as it counts every recorded session.
        """
        with self._lock:
            self._since_fit = []
        counts = _Counts()
        for trace in traces:
            for turn in trace.turns:
                if any(c.node for c in turn.calls):  # only calls that name their node teach the workflow
                    counts.add(turn.calls, (), None, trace.task.type or None, self._words(turn.query))
        with self._lock:
            for t in self._since_fit or ():  # graph-less runs that ended during the fit (not in ``traces``)
                counts.add(t.calls, t.visited, None, t.request.task_type or None, self._words(t.request.query))
            self._traced, self._since_fit = counts, None
        if self.fallback is not None and isinstance(self.fallback, Learner):
            self.fallback.fit(traces, catalog)

    def observe_turn(self, turn: FinishedTurn) -> None:
        """Learn from one finished run: its calls (with their nodes) and the nodes it visited.

        A router's choice is the target the run visited, or else the one target from which a
        visited node is reachable.
        """
        if turn.workflow is None and self.dag is not None:
            turn = FinishedTurn(request=turn.request, calls=turn.calls, workflow=self.dag, visited=turn.visited)
        words = self._words(turn.request.query)
        with self._lock:
            counts = self._traced if turn.workflow is None else self._graphs
            counts.add(turn.calls, turn.visited, turn.workflow, turn.request.task_type or None, words)
            if self._since_fit is not None and turn.workflow is None:
                self._since_fit.append(turn)  # a fit in progress replaces these counts: replayed onto its own

    # -- persistence -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What was learned, as JSON-able data: the trace-learned counts and the per-graph online ones.

        The per-graph counts are what makes this worth saving: they come from graph runs observed
        online, which no recorded session can teach again (a trace holds neither the graph, nor the
        nodes a run passed without a call, nor the branch a router took). Settings and the fallback
        are configuration, not state: they are not included.
        """
        with self._lock:
            return {"version": _STATE_VERSION, "traced": self._traced.state(), "graphs": self._graphs.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` exactly (replacing both count sets); ValueError if it is not one.

        Nothing changes when ``state`` is refused.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(f"a workflow state needs version {_STATE_VERSION}")
        traced, graphs = _Counts.from_state(state.get("traced")), _Counts.from_state(state.get("graphs"))
        with self._lock:
            self._traced, self._graphs = traced, graphs

    # -- probabilities -----------------------------------------------------------------------------

    @staticmethod
    def _scopes(dag: WorkflowDAG | None, task_type: str | None) -> list[_Scope]:
        """Conditioning levels, most general first."""
        out: list[_Scope] = [(ANY_GRAPH, None)]
        if task_type is not None:
            out.append((ANY_GRAPH, task_type))
        if dag is not None:
            out.append((dag.key, None))
            if task_type is not None:
                out.append((dag.key, task_type))
        return out

    def branch_probability(
        self,
        source: str,
        target: str,
        alternatives: Sequence[str],
        task_type: str | None = None,
        *,
        dag: WorkflowDAG | None = None,
        words: Sequence[str] = (),
    ) -> float:
        """P(a run that reaches ``source`` goes on to ``target``), smoothed toward uniform.

        Counted per run, not per decision: in a loop (an agent and its tool node) a router may pick
        several targets in one run, and each of them is then reached. With ``words`` (of the turn's
        query), what runs whose query had the most telling of them chose takes the lead.
        """
        p = 1.0 / max(1, len(alternatives))
        scopes = self._scopes(dag or self.dag, task_type)
        general = False  # the first level with runs is smoothed toward uniform, later ones toward it
        for scope in scopes:
            counts = self._at(scope)
            runs = counts.branch_runs.get((scope, source), 0)
            if runs:
                taken = counts.branch.get((scope, source), Counter())[target]
                weight = self.backoff if general else self.smoothing
                p = (taken + weight * p) / (runs + weight)
                general = True
        if words:
            found = self._by_words({target: p}, source, words, scopes, _word_branch)
            p = found.get(target, p)
        return p

    def _by_words(
        self,
        prior: dict[str, float],
        node: str,
        words: Sequence[str],
        scopes: Sequence[_Scope],
        table: Callable[[_Counts], Mapping[tuple[_Scope, str, str], Counter[str]]],
    ) -> dict[str, float]:
        """``prior`` re-estimated on the runs through ``node`` whose query shared a word with this one.

        Each word seen there estimates ``(count(word, x) + a x prior(x)) / (runs(word) + a)``; the
        estimates are averaged with inverse-run-frequency weights, so telling words lead and words
        every run has count little (as the usage-learned lexical predictor does). The most specific
        scope with such runs is used.
        """
        a = self.query_smoothing
        for scope in reversed(scopes):
            counts = self._at(scope)
            seen = counts.word_runs.get((scope, node))
            known = [w for w in words if seen and seen.get(w)] if seen else []
            if not known:
                continue
            assert seen is not None
            runs = max(counts.runs.get((scope, node), 0), max(seen[w] for w in known))
            weights = {w: math.log1p(runs / seen[w]) for w in known}
            total = sum(weights.values())
            found = table(counts)
            keys: set[str] = set(prior)
            for w in known:
                keys.update(found.get((scope, node, w), ()))
            out: dict[str, float] = {}
            for x in keys:
                est = sum(
                    weights[w] * (found.get((scope, node, w), Counter())[x] + a * prior.get(x, 0.0)) / (seen[w] + a)
                    for w in known
                )
                out[x] = est / total
            return out
        return prior

    def section_probabilities(
        self,
        node: str,
        last: str | None = None,
        task_type: str | None = None,
        *,
        dag: WorkflowDAG | None = None,
        words: Sequence[str] = (),
    ) -> dict[str, float]:
        """P(section | node): learned request rates (led by runs whose query shared ``words``),
        declared sections, and what follows ``last`` there."""
        dag = dag or self.dag
        out: dict[str, float] = {}
        nxt: dict[str, float] = {}
        general = False  # a more general level already spoke: back off to it
        scopes = self._scopes(dag, task_type)
        for scope in scopes:
            counts = self._at(scope)
            runs = counts.runs.get((scope, node), 0)
            if not runs:
                continue
            w = runs / (runs + self.backoff) if general else 1.0
            # The most general level is shrunk toward 0 by ``rate_smoothing`` pseudo-runs: one run that
            # asked for a section is weak evidence that every run will.
            denominator = runs if general else runs + self.rate_smoothing
            general = True
            req = counts.requests.get((scope, node), Counter())
            out = {s: w * req.get(s, 0) / denominator + (1.0 - w) * out.get(s, 0.0) for s in out.keys() | req.keys()}
            follow = counts.next.get((scope, node, last)) if last is not None else None
            if follow:
                total = sum(follow.values())
                nxt = {s: w * follow.get(s, 0) / total + (1.0 - w) * nxt.get(s, 0.0) for s in nxt.keys() | follow}
        if words and out:
            out = self._by_words(out, node, words, scopes, _word_requests)
        if dag is not None and node in dag.nodes:
            for sid in dag.nodes[node].sections:
                out[sid] = max(out.get(sid, 0.0), self.declared_probability)
        if nxt:
            out = {sid: 0.5 * out.get(sid, 0.0) + 0.5 * nxt.get(sid, 0.0) for sid in out | nxt}
        return out

    # -- prediction --------------------------------------------------------------------------------

    def _workflow_scores(
        self, state: PredictionState, dag: WorkflowDAG
    ) -> tuple[dict[str, float], dict[str, tuple[float, str, int, float]]]:
        task_type = state.request.task_type or None
        words = self._words(state.request.query)
        origin = state.node if state.node is not None and state.node in dag.nodes else START
        shares: dict[str, dict[str, float]] = {}

        def branch(source: str, target: str, alternatives: Sequence[str]) -> float:
            if source not in shares:
                raw = {
                    t: self.branch_probability(source, t, alternatives, task_type, dag=dag, words=words)
                    for t in alternatives
                }
                total = sum(raw.values())
                shares[source] = {t: v / total for t, v in raw.items()} if total > 0 else raw
            return shares[source].get(target, 0.0)

        reach = dag.reach(origin, branch)
        scores: dict[str, float] = defaultdict(float)
        why: dict[str, tuple[float, str, int, float]] = {}
        seen = state.seen
        for node, (p_reach, steps) in reach.items():
            if p_reach <= 0.0:
                continue
            last = state.calls[-1] if node == origin and state.calls else None
            weight = p_reach * self.discount**steps
            for sid, p_sec in self.section_probabilities(node, last, task_type, dag=dag, words=words).items():
                if sid in seen or sid not in state.catalog:
                    continue
                contribution = weight * p_sec
                scores[sid] += contribution
                if sid not in why or contribution > why[sid][0]:
                    why[sid] = (contribution, node, steps, p_reach)
        return scores, why

    def predict(self, state: PredictionState, k: int) -> list[Candidate]:
        """Up to ``k`` sections, best first (ties in document order); none without a graph or fallback."""
        dag = state.workflow if state.workflow is not None else self.dag
        if k <= 0 or (dag is None and self.fallback is None):
            return []
        scores: dict[str, float] = defaultdict(float)
        why: dict[str, tuple[float, str, int, float]] = {}
        if dag is not None:
            found, why = self._workflow_scores(state, dag)
            scores.update(found)
        reasons: dict[str, str] = {}
        if self.fallback is not None:
            # The fallback's view (e.g. lexical: what the turn's words point at) at a lower weight,
            # so workflow evidence leads and the fallback covers what the workflow cannot see.
            for c in self.fallback.predict(state, k):
                if c.section_id in state.seen or c.section_id not in state.catalog:
                    continue
                contribution = self.fallback_weight * c.probability
                scores[c.section_id] += contribution
                if c.section_id not in why or contribution > why[c.section_id][0]:
                    why[c.section_id] = (contribution, "", -1, 0.0)
                    reasons[c.section_id] = f"fallback: {c.reason}"
        ranked = sorted(scores, key=lambda s: (-scores[s], state.catalog.position(s)))
        out: list[Candidate] = []
        for sid in ranked[:k]:
            _, node, steps, p_reach = why[sid]
            reason = reasons.get(sid) or f"workflow: node {node!r} in {steps} step(s), P(reach)={p_reach:.2f}"
            out.append(Candidate(section_id=sid, probability=min(1.0, scores[sid]), reason=reason))
        return out


def blend_signals(
    base: Sequence[Candidate], signals: Sequence[Sequence[Candidate]], state: PredictionState, k: int, weight: float
) -> list[Candidate]:
    """Merge extra signals' candidates into a base ranking: ``p = sum(signal p) + weight x base p``.

    The hook by which a graph-aware signal joins the default predictor: when no signal speaks (no
    graph known) the base ranking comes back unchanged, so plain turns predict exactly as before.
    """
    if not any(signals):
        return list(base)
    scores: dict[str, float] = defaultdict(float)
    reasons: dict[str, tuple[float, str]] = {}
    for cands, w in [(base, weight), *((s, 1.0) for s in signals)]:
        for c in cands:
            contribution = w * c.probability
            scores[c.section_id] += contribution
            if c.section_id not in reasons or contribution > reasons[c.section_id][0]:
                reasons[c.section_id] = (contribution, c.reason)
    ranked = sorted(scores, key=lambda s: (-scores[s], state.catalog.position(s)))[:k]
    return [Candidate(section_id=s, probability=min(1.0, scores[s]), reason=reasons[s][1]) for s in ranked]
