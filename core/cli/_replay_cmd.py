"""``prehydrate replay``: recorded sessions through the real engine on virtual time, policy by policy."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .._errors import PrehydrateError
from .._replay import POLICIES, ReplayResult, replay
from .._text import write_text
from ._app import app, console, err_console
from ._extras import require_extra

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

__all__ = ["replay_command", "write_plot"]


@app.command("replay")
def replay_command(
    sections: Annotated[Path, typer.Option("--sections", help="Sections file (JSONL).", show_default=False)],
    train: Annotated[Path, typer.Option("--train", help="Traces the predictors learn from.", show_default=False)],
    test: Annotated[Path, typer.Option("--test", help="Traces to replay.", show_default=False)],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    top_n: Annotated[int, typer.Option("--top-n", min=0, help="Candidates prefetched per prediction.")] = 3,
    hydrate_ms: Annotated[
        float, typer.Option("--hydrate-ms", min=0, help="Simulated hydration latency of every section (ms).")
    ] = 300,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help=f"Replay only these policies (repeatable): {', '.join(POLICIES)}."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG: hit rate per policy and the CDF of context wait.")
    ] = None,
) -> None:
    """Train on --train, replay --test through the engine with each policy, compare them side by side."""
    for name in policy or ():
        if name not in POLICIES:
            err_console.print(f"[red]error:[/red] unknown policy {escape(name)!r}; choose from {', '.join(POLICIES)}")
            raise typer.Exit(2)
    names = list(dict.fromkeys(policy)) if policy else list(POLICIES)
    require_extra("looptime", "prehydrate replay", "replay")
    if plot is not None:
        require_extra("matplotlib", "--plot", "plot")
    handler = _WarningsToConsole()
    log = logging.getLogger("prehydrate.replay")
    log.addHandler(handler)
    try:
        with _progress_bars() as bar:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            result = replay(
                sections, train, test, policies=names, top_n=top_n, hydrate_ms=hydrate_ms, progress=progress
            )
    except PrehydrateError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        log.removeHandler(handler)
    console.print(_table(result))
    if json_out is not None:
        _write_json(json_out, result)
    if plot is not None:
        write_plot(result, plot)
        err_console.print(f"wrote {escape(str(plot))}")


def _progress_bars() -> Progress:
    """One bar per policy on stderr (rich's progress module is imported only when a replay runs)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=True)


class _WarningsToConsole(logging.Handler):
    """Shows replay warnings (calls to unknown sections) on standard error while the command runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {escape(record.getMessage())}")


def _table(result: ReplayResult) -> Table:
    from rich import box
    from rich.table import Table

    doc = result.json
    calls = max((p["calls"] for p in doc["policies"].values()), default=0)
    table = Table(
        title=f"replay: {calls} calls, top_n={doc['top_n']}, hydrate {doc['hydrate_ms']} ms",
        caption="* default   cov: hit or in flight   pref: prefetches   w/call: wasted per call\n"
        "p50, p95, mean: context wait per call (ms)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("policy", no_wrap=True)
    for col in ("hit", "cov", "pref", "w/call", "p50", "p95", "mean"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, p in doc["policies"].items():
        waits = result.waits.get(name, [])
        mean_wait = sum(waits) / len(waits) if waits else 0.0
        table.add_row(
            f"{name}*" if name == doc["default_policy"] else name,
            f"{p['hit_rate']:.3f}",
            f"{p['covered_rate']:.3f}",
            str(p["prefetched"]),
            f"{p['wasted'] / p['calls']:.2f}" if p["calls"] else "-",
            f"{p['wait_ms_p50']:.0f}",
            f"{p['wait_ms_p95']:.0f}",
            f"{mean_wait:.0f}",
        )
    return table


def write_plot(result: ReplayResult, path: Path) -> None:
    """Hit and covered rate per policy (bars) and the CDF of context wait per call (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    doc: dict[str, Any] = result.json
    names = list(doc["policies"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(names))
    left.bar(x - 0.2, [doc["policies"][n]["hit_rate"] for n in names], 0.4, label="hit")
    left.bar(x + 0.2, [doc["policies"][n]["covered_rate"] for n in names], 0.4, label="hit + in flight")
    left.set_xticks(x, names, rotation=30, ha="right")
    left.set_ylim(0, 1)
    left.set_ylabel("share of calls")
    left.set_title(f"hit rate (top_n={doc['top_n']}, hydrate {doc['hydrate_ms']} ms)")
    left.legend()
    for n in names:
        w = np.sort(np.asarray(result.waits.get(n, []), dtype=float))
        if len(w):
            right.step(w, np.arange(1, len(w) + 1) / len(w), where="post", label=n)
    right.set_xlabel("context wait per call (ms)")
    right.set_ylabel("share of calls waiting at most this long")
    right.set_title("CDF of context wait")
    right.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _write_json(path: Path, result: ReplayResult) -> None:
    """The replay JSON (the format other tools read) to ``path``; a failed write is one line, exit 2."""
    try:
        write_text(path, json.dumps(result.json, indent=2) + "\n", "JSON output file")
    except PrehydrateError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    err_console.print(f"wrote {escape(str(path))}")
