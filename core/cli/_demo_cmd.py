"""``prehydrate demo``: the bundled sample sessions played against a real server, without and with prefetch.

Two real ``prehydrate serve`` subprocesses over stdio, each driven by a real MCP client: the first
with ``--no-prefetch`` (the baseline: every call hydrates on demand), the second fitted on the
bundled training traces (``--learn``). Both simulate a slow source (``--simulate-latency-ms``), give
every session its own cache scope (``--isolate-sessions``: a section fetched in one conversation is
not a free hit in the next, so what is measured is prediction, not a shared cache) and append their
turn reports to a file (``--turn-reports``), where the wasted prefetches are counted.

Each test session is played as recorded: every turn starts with the ``compiled_context`` prompt
(which opens the turn and launches the prefetches), then each call sleeps its ``think_ms`` and calls
``request_context``. Time runs ``speed`` times real time (think times and latency alike), and the
numbers are reported in trace milliseconds. The MCP SDK is imported inside the command only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from .._demo import (
    CONCURRENCY,
    HYDRATE_MS,
    SPEED,
    DemoCall,
    DemoRun,
    DemoSettings,
    compare,
    modelled_wait,
    plot_comparison,
    select_sessions,
)
from .._errors import PrehydrateError
from .._jsonl import iter_jsonl
from .._text import log_text, write_text
from ._app import app, console, err_console, print_error
from ._extras import missing_extra, require_extra
from ._otel import OtelFlag

if TYPE_CHECKING:
    from rich.console import Group
    from rich.live import Live
    from rich.table import Table

    from prehydrate import SessionTrace

__all__ = ["demo_command"]

SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]
"""``prehydrate serve`` as the console script runs it, with this interpreter (works in any venv)."""

SESSION_META_KEY = "prehydrate/session"
"""The ``_meta`` key the server reads a client's session id from (``SessionPolicy.meta_key``)."""

OUTCOME_STYLE = {"hit": "green", "inflight": "yellow", "miss": "red"}


class DemoFailed(Exception):
    """The server or a call failed; carries what the server printed."""


def _server_argv(settings: DemoSettings, workdir: Path, label: str, *, prefetch: bool, otel: bool) -> list[str]:
    import prehydrate as ph

    argv = [
        *SERVE,
        "--traces",
        str(workdir / f"traces-{label}.jsonl"),  # a private store: the user's recorded sessions stay out
        "--no-record",
        "--isolate-sessions",
        "--simulate-latency-ms",
        f"{settings.latency_ms:g}",
        "--turn-reports",
        str(workdir / f"reports-{label}.jsonl"),
    ]
    if prefetch:
        argv += ["--learn", str(ph.sample_traces_path("train"))]
    else:
        argv.append("--no-prefetch")
    if otel:
        argv.append("--otel")
    return argv


def _child_env(server: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREHYDRATE_TOKENS"}
    # Both servers report as service "prehydrate"; under --otel a backend tells them apart by these.
    ours = f"service.instance.id=prehydrate-demo-{server},prehydrate.demo.server={server}"
    env["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(filter(None, (env.get("OTEL_RESOURCE_ATTRIBUTES", ""), ours)))
    # The fit is small; BLAS thread pools would only fight the other process for the two cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


async def _play(
    label: str,
    argv: list[str],
    plan: list[SessionTrace],
    settings: DemoSettings,
    errlog: TextIO,
    *,
    gate: asyncio.Event | None,
    on_call: Callable[[DemoCall], None],
    on_start: Callable[[str], None],
) -> DemoRun:
    """Start one server, wait for ``gate``, play every session of ``plan`` through it."""
    from mcp import Client, StdioServerParameters  # noqa: TID251  (optional extra, imported on use)
    from mcp.client.stdio import stdio_client  # noqa: TID251

    server = label.split()[0]  # "without" or "with"
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=_child_env(server))
    run = DemoRun(label=label, turns=sum(len(t.turns) for t in plan))
    async with Client(stdio_client(params, errlog=errlog)) as client:
        if gate is not None:
            await gate.wait()
        on_start(label)
        sem = asyncio.Semaphore(settings.concurrency)

        async def session(trace: SessionTrace) -> None:
            async with sem:
                # Session (and so turn) ids name the server: the two runs' traces never collide.
                meta: dict[str, Any] = {SESSION_META_KEY: f"demo-{server}-{trace.session}"}
                for i, turn in enumerate(trace.turns):
                    args = {"task": trace.task.type or "", "query": turn.query}
                    await client.get_prompt("compiled_context", args, meta=meta)  # type: ignore[arg-type]
                    for call in turn.calls:
                        await asyncio.sleep(call.think_ms * settings.speed / 1000.0)
                        result = await client.call_tool(
                            "request_context",
                            {"section": call.key},
                            meta=meta,  # type: ignore[arg-type]
                        )
                        out = result.structured_content
                        if result.is_error or out is None:
                            raise DemoFailed(f"request_context({call.key!r}) failed: {result.content}")
                        measured = float(out["waited_ms"]) / settings.speed
                        record = DemoCall(
                            run=label,
                            session=trace.session,
                            turn=i + 1,
                            section=str(out["section"]),
                            outcome=out["outcome"],
                            wait_ms=modelled_wait(out["outcome"], measured, settings.hydrate_ms),
                            measured_ms=measured,
                        )
                        run.calls.append(record)
                        on_call(record)

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for trace in plan:
                tg.create_task(session(trace))
        run.elapsed_s = time.perf_counter() - t0
    return run


class _LiveView:
    """The rolling view: the latest calls with outcome and wait, and a tally per run."""

    def __init__(self, total_calls: int, rows: int = 12) -> None:
        self.total = total_calls
        self.latest: deque[DemoCall] = deque(maxlen=rows)
        self.tally: dict[str, dict[str, int]] = {}
        self.status = "starting the servers"

    def add(self, call: DemoCall) -> None:
        self.latest.append(call)
        t = self.tally.setdefault(call.run, {"hit": 0, "inflight": 0, "miss": 0})
        t[call.outcome] += 1

    def __rich__(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("run", "session", "turn", "section", "outcome"):
            table.add_column(col)
        table.add_column("wait", justify="right")
        for c in self.latest:
            style = OUTCOME_STYLE[c.outcome]
            table.add_row(c.run, c.session, str(c.turn), c.section, Text(c.outcome, style=style), f"{c.wait_ms:.0f} ms")
        lines = [Text(self.status, style="bold")]
        for run, t in self.tally.items():
            done = sum(t.values())
            lines.append(
                Text.assemble(
                    f"{run:>17}: {done}/{self.total} calls  ",
                    (f"hit {t['hit']}", "green"),
                    "  ",
                    (f"inflight {t['inflight']}", "yellow"),
                    "  ",
                    (f"miss {t['miss']}", "red"),
                )
            )
        return Group(*lines, table)


def _pct(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.0%})" if whole else str(part)


def summary_table(without: DemoRun, with_prefetch: DemoRun) -> Table:
    """The comparison table the demo prints (and the README shows)."""
    from rich.table import Table

    table = Table(title="request_context over MCP, simulated hydration latency", title_justify="left")
    table.add_column("")
    table.add_column("without prefetch", justify="right")
    table.add_column("with prefetch", justify="right")
    runs = (without, with_prefetch)
    calls = len(without.calls)
    table.add_row("calls", *(str(len(r.calls)) for r in runs))
    table.add_row("hit (warm cache)", *(_pct(r.count("hit"), len(r.calls)) for r in runs))
    table.add_row("inflight (joined a prefetch)", *(_pct(r.count("inflight"), len(r.calls)) for r in runs))
    table.add_row("miss (hydrated on demand)", *(_pct(r.count("miss"), len(r.calls)) for r in runs))
    table.add_row("prefetches launched", *(str(r.prefetched) for r in runs))
    table.add_row("wasted prefetches", *(str(r.wasted) for r in runs))
    table.add_row("context wait per turn", *(f"{r.wait_per_turn_ms:.0f} ms" for r in runs))
    table.add_row("context wait per call", *(f"{r.wait_ms / calls:.0f} ms" if calls else "-" for r in runs))
    return table


@contextlib.contextmanager
def _client_otel(enabled: bool) -> Iterator[None]:
    """The demo's own spans (the MCP client's) on the global provider, joined by the servers' spans."""
    if not enabled:
        yield
        return
    try:  # the API comes with the mcp extra; the SDK and exporter only with otel, imported on configure
        from prehydrate.tracing import configure_from_env

        setup = configure_from_env(service_name="prehydrate-demo")
    except ImportError as exc:  # the optional extra is missing
        raise missing_extra(exc, "--otel", "otel") from None
    err_console.print(f"OpenTelemetry: traces to {setup.endpoint or setup.traces_exporter} (client and both servers)")
    try:
        yield
    finally:
        setup.shutdown()


@app.command("demo")
def demo_command(
    sessions: Annotated[
        int | None, typer.Option(help="Play only the first N bundled test sessions (default: all 100).")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Real time per trace time (think times and latency alike); 0.2 = 5x faster.")
    ] = SPEED,
    hydrate_ms: Annotated[
        float, typer.Option(help="Simulated hydration latency of a section, in trace milliseconds.")
    ] = HYDRATE_MS,
    concurrency: Annotated[int, typer.Option(help="Sessions played at once.")] = CONCURRENCY,
    plot: Annotated[Path | None, typer.Option(help="Save the comparison chart here (PNG).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the numbers here as JSON.")] = None,
    otel: OtelFlag = False,
) -> None:
    """Play the bundled sample sessions against a real MCP server, without and then with prefetch."""
    settings, plan = _demo_plan(sessions, speed, hydrate_ms, concurrency)
    if importlib.util.find_spec("mcp") is None:
        raise missing_extra(ModuleNotFoundError(name="mcp"), "prehydrate demo", "mcp")
    if plot is not None:
        require_extra("matplotlib", "--plot", "plot")
    n_calls = sum(len(turn.calls) for t in plan for turn in t.turns)
    n_turns = sum(len(t.turns) for t in plan)
    console.print(
        f"[bold]prehydrate demo[/bold]: {len(plan)} recorded sessions ({n_turns} turns, {n_calls} request_context "
        f"calls) against `prehydrate serve` over stdio; hydration takes {settings.hydrate_ms:g} ms; "
        f"played {1 / settings.speed:g}x faster than recorded."
    )
    without, with_prefetch = _play_both(plan, settings, _LiveView(n_calls), otel=otel)
    _report(without, with_prefetch, settings, json_out=json_out, plot=plot)


def _demo_plan(
    sessions: int | None, speed: float, hydrate_ms: float, concurrency: int
) -> tuple[DemoSettings, list[SessionTrace]]:
    """The checked settings and the bundled test sessions to play; bad options are one line, exit 2."""
    import prehydrate as ph

    try:
        settings = DemoSettings(speed=speed, hydrate_ms=hydrate_ms, sessions=sessions, concurrency=concurrency)
        return settings, select_sessions(ph.read_traces(ph.sample_traces_path("test")), settings.sessions)
    except PrehydrateError as exc:
        print_error(str(exc))
        raise typer.Exit(code=2) from exc


_LABELS = ("without prefetch", "with prefetch")


def _play_both(
    plan: list[SessionTrace], settings: DemoSettings, view: _LiveView, *, otel: bool
) -> tuple[DemoRun, DemoRun]:
    """Both servers in a scratch folder; on a failure, what they printed; then their turn reports."""
    with tempfile.TemporaryDirectory(prefix="prehydrate-demo-") as tmp, _client_otel(otel):
        workdir = Path(tmp)
        errlog_path = workdir / "servers.log"
        argvs = (
            _server_argv(settings, workdir, "without", prefetch=False, otel=otel),
            _server_argv(settings, workdir, "with", prefetch=True, otel=otel),
        )
        try:
            if console.is_terminal:
                from rich.live import Live

                with Live(view, console=console, refresh_per_second=8, transient=True) as live:
                    runs = asyncio.run(_both(plan, settings, argvs, errlog_path, view, live))
            else:
                runs = asyncio.run(_both(plan, settings, argvs, errlog_path, view, None))
        except Exception as exc:  # a failed server or call: show what the servers printed
            log = log_text(errlog_path.read_bytes()) if errlog_path.exists() else ""
            err_console.print(f"[red]error:[/red] the demo failed: {type(exc).__name__}: {exc}")
            if log.strip():
                err_console.print(log[-4000:], markup=False, highlight=False)
            raise typer.Exit(code=1) from exc
        for run, name in zip(runs, ("without", "with"), strict=True):
            path = workdir / f"reports-{name}.jsonl"
            if path.exists():
                run.reports = [report for _, report in iter_jsonl(path, "turn reports file")]
    return runs


async def _both(
    plan: list[SessionTrace],
    settings: DemoSettings,
    argvs: tuple[list[str], list[str]],
    errlog_path: Path,
    view: _LiveView,
    live: Live | None,
) -> tuple[DemoRun, DemoRun]:
    """The baseline, then the prefetching server (which starts, and fits, while the baseline plays)."""

    def on_call(call: DemoCall) -> None:
        view.add(call)
        if live is not None:
            live.refresh()

    def started(label: str) -> None:
        view.status = f"playing {label}"
        if not console.is_terminal:  # no live view: say what is going on, once per run
            console.print(f"playing {label} ...")

    with errlog_path.open("w", encoding="utf-8") as errlog:  # the SDK wants a text file for the servers' stderr
        first_done = asyncio.Event()

        async def baseline() -> DemoRun:
            try:
                return await _play(
                    _LABELS[0], argvs[0], plan, settings, errlog, gate=None, on_call=on_call, on_start=started
                )
            finally:
                first_done.set()

        async with asyncio.TaskGroup() as tg:
            a = tg.create_task(baseline())
            b = tg.create_task(
                _play(_LABELS[1], argvs[1], plan, settings, errlog, gate=first_done, on_call=on_call, on_start=started)
            )
        return a.result(), b.result()


def _report(
    without: DemoRun, with_prefetch: DemoRun, settings: DemoSettings, *, json_out: Path | None, plot: Path | None
) -> None:
    """The table, two lines of numbers, and the JSON and chart files when asked for."""
    result = compare(without, with_prefetch)
    console.print(summary_table(without, with_prefetch))
    cut = result["wait_cut"]
    w = result["with_prefetch"]
    console.print(
        f"Context wait per turn: {without.wait_per_turn_ms:.0f} ms without prefetch, "
        f"{with_prefetch.wait_per_turn_ms:.0f} ms with ([bold]{cut:.0%} less[/bold]); "
        f"hit rate {w['hit_rate']:.0%}, {w['wasted']} of {w['prefetched']} prefetches wasted."
    )
    console.print(
        f"[dim]Played in {without.elapsed_s:.1f} s + {with_prefetch.elapsed_s:.1f} s. Waits in recorded time: "
        f"a miss waits the {settings.hydrate_ms:g} ms hydration, a hit none, an inflight join what its "
        f"prefetch still needed (measured).[/dim]"
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_text(json_out, json.dumps(result, indent=2) + "\n", "JSON output file")
        except PrehydrateError as exc:
            print_error(str(exc))
            raise typer.Exit(2) from None
    if plot is not None:
        written = plot_comparison(without, with_prefetch, plot)
        console.print(f"chart saved to {written}")
