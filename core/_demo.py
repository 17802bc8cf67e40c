"""The arithmetic behind ``prehydrate demo``: which sessions it plays, what it measured, the chart.

The demo itself (a real ``prehydrate serve`` subprocess driven by a real MCP client) lives in
``prehydrate.cli._demo_cmd``, because the MCP SDK is an optional dependency; this module holds the
parts that need no framework, so they can be tested and reused on their own.

Times are reported in *trace milliseconds*: the demo plays the recorded think times and the
simulated hydration latency faster than real time (``speed``), and divides what it measured by the
same factor, so the numbers read as if the sessions had run at their recorded pace.

The context wait of a call is taken from the simulated latency, so it does not depend on the
machine: a miss waits the whole hydration (``hydrate_ms``), a hit waits nothing, and only a call
that joined a running prefetch uses the measured remainder (capped at ``hydrate_ms``). What the
server measured is kept as well (``measured_ms``): it adds the event loop's and the pipe's overhead,
which the speed-up magnifies (1 ms real is 5 trace ms at ``speed=0.2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import ConfigError
from ._traces import SessionTrace

__all__ = [
    "CONCURRENCY",
    "HYDRATE_MS",
    "SPEED",
    "DemoCall",
    "DemoRun",
    "DemoSettings",
    "compare",
    "modelled_wait",
    "plot_comparison",
    "select_sessions",
]

Outcome = Literal["hit", "inflight", "miss"]

SPEED = 0.2
"""Default real seconds per trace second (the demo runs five times faster than recorded)."""
HYDRATE_MS = 300.0
"""Default simulated hydration latency (trace milliseconds), as in ``prehydrate replay``."""
CONCURRENCY = 8
"""Default number of sessions played at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSettings:
    """How the demo plays the recorded sessions."""

    speed: float = SPEED
    """Real seconds per trace second: think times and hydration latency are both scaled by it."""
    hydrate_ms: float = HYDRATE_MS
    """Simulated hydration latency of every section, in trace milliseconds."""
    sessions: int | None = None
    """Play only the first N test sessions (None: all of them)."""
    concurrency: int = CONCURRENCY
    """Sessions played at once (each is its own MCP session, so they never share a cache entry)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.speed <= 10.0:
            raise ConfigError("the demo speed must be within (0, 10]")
        if self.hydrate_ms < 0:
            raise ConfigError("the simulated hydration latency must not be negative")
        if self.sessions is not None and self.sessions < 1:
            raise ConfigError("the demo needs at least one session")
        if self.concurrency < 1:
            raise ConfigError("the demo needs a concurrency of at least 1")

    @property
    def latency_ms(self) -> float:
        """The real latency the server sleeps per hydration (milliseconds)."""
        return self.hydrate_ms * self.speed


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoCall:
    """One ``request_context`` call as the client saw it."""

    run: str
    session: str
    turn: int
    section: str
    outcome: Outcome
    wait_ms: float
    """The call's context wait from the simulated latency (see the module docstring), trace ms."""
    measured_ms: float
    """The wait the server measured, in trace milliseconds."""


def modelled_wait(outcome: Outcome, measured_ms: float, hydrate_ms: float) -> float:
    """A call's context wait in trace ms: the whole hydration for a miss, none for a hit."""
    if outcome == "miss":
        return hydrate_ms
    if outcome == "hit":
        return 0.0
    return min(max(measured_ms, 0.0), hydrate_ms)


@dataclass(slots=True, kw_only=True)
class DemoRun:
    """One pass over the sessions: what the client saw and the server's turn reports."""

    label: str
    turns: int = 0
    calls: list[DemoCall] = field(default_factory=list)
    reports: list[Mapping[str, Any]] = field(default_factory=list)
    """The server's TurnReports (``prehydrate serve --turn-reports``), one per turn."""
    elapsed_s: float = 0.0

    def count(self, outcome: Outcome) -> int:
        """Calls with this outcome."""
        return sum(1 for c in self.calls if c.outcome == outcome)

    @property
    def prefetched(self) -> int:
        """Speculative hydrations the server launched."""
        return sum(int(r.get("prefetched", 0)) for r in self.reports)

    @property
    def wasted(self) -> int:
        """Speculative hydrations nobody requested (finished unused, cancelled or failed)."""
        return sum(int(r.get("wasted", 0)) for r in self.reports)

    @property
    def wait_ms(self) -> float:
        """Context wait summed over every call (trace milliseconds)."""
        return sum(c.wait_ms for c in self.calls)

    @property
    def wait_per_turn_ms(self) -> float:
        """Mean context wait per turn: what the user waits on top of the model, per message."""
        return self.wait_ms / self.turns if self.turns else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers of this run."""
        calls = len(self.calls)
        return {
            "turns": self.turns,
            "calls": calls,
            "hits": self.count("hit"),
            "inflight": self.count("inflight"),
            "misses": self.count("miss"),
            "hit_rate": round(self.count("hit") / calls, 4) if calls else 0.0,
            "covered_rate": round((calls - self.count("miss")) / calls, 4) if calls else 0.0,
            "prefetched": self.prefetched,
            "wasted": self.wasted,
            "wait_ms_per_turn": round(self.wait_per_turn_ms, 1),
            "wait_ms_total": round(self.wait_ms, 1),
            "measured_wait_ms_per_turn": (
                round(sum(c.measured_ms for c in self.calls) / self.turns, 1) if self.turns else 0.0
            ),
            "elapsed_s": round(self.elapsed_s, 2),
        }


def select_sessions(traces: Sequence[SessionTrace], limit: int | None) -> list[SessionTrace]:
    """The sessions to play: the first ``limit`` (file order, so every run plays the same ones)."""
    return list(traces if limit is None else traces[:limit])


def compare(without: DemoRun, with_prefetch: DemoRun) -> dict[str, Any]:
    """Both runs side by side, plus the headline: how much of the context wait prefetching removed."""
    base = without.wait_per_turn_ms
    cut = (1.0 - with_prefetch.wait_per_turn_ms / base) if base > 0 else 0.0
    return {
        "without_prefetch": without.summary(),
        "with_prefetch": with_prefetch.summary(),
        "wait_cut": round(cut, 4),
    }


def plot_comparison(
    without: DemoRun, with_prefetch: DemoRun, path: str | Path, *, title: str = "prehydrate demo"
) -> Path:
    """Save the comparison chart: context wait per turn, and how the calls were served.

    Uses matplotlib's Agg backend (no display needed); returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    labels = ["without prefetch", "with prefetch"]
    runs = [without, with_prefetch]
    fig, (ax_wait, ax_calls) = plt.subplots(1, 2, figsize=(10, 4))
    waits = [r.wait_per_turn_ms for r in runs]
    bars = ax_wait.bar(labels, waits, color=["#9e9e9e", "#2e7d32"])
    ax_wait.bar_label(bars, fmt="%.0f ms")
    ax_wait.set_ylabel("context wait per turn (ms)")
    ax_wait.set_title("Context wait per turn")
    bottom = [0.0, 0.0]
    colors: tuple[tuple[Outcome, str], ...] = (("hit", "#2e7d32"), ("inflight", "#f9a825"), ("miss", "#c62828"))
    for outcome, color in colors:
        values = [float(r.count(outcome)) for r in runs]
        ax_calls.bar(labels, values, bottom=bottom, color=color, label=outcome)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax_calls.set_ylabel("request_context calls")
    ax_calls.set_title("How calls were served")
    ax_calls.set_ylim(0, max(max(bottom), 1.0) * 1.2)  # headroom for the legend above the bars
    ax_calls.legend(loc="upper center", ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
