"""``prehydrate traces``: check recorded traces and summarise what they hold."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from .._errors import PrehydrateError
from .._sources import sources_from_paths
from .._traces import SessionTrace, read_traces_tolerant
from ._app import app, console, print_error, print_warning

__all__: list[str] = []


def summarize(traces: list[SessionTrace], known: set[str] | None = None, top: int = 10) -> dict[str, Any]:
    """Counts a planner reads before training on traces: sizes, task types, busiest sections, think time."""
    turns = [t for s in traces for t in s.turns]
    calls = [c for t in turns for c in t.calls]
    keys = Counter(c.key for c in calls)
    think = sorted(c.think_ms for c in calls)
    out: dict[str, Any] = {
        "sessions": len(traces),
        "turns": len(turns),
        "turns_without_calls": sum(1 for t in turns if not t.calls),
        "calls": len(calls),
        "calls_per_turn": round(len(calls) / len(turns), 3) if turns else 0.0,
        "distinct_sections": len(keys),
        "think_ms_p50": round(statistics.median(think), 1) if think else 0.0,
        "think_ms_p95": round(think[max(0, int(0.95 * len(think)) - 1)], 1) if think else 0.0,
        "task_types": dict(sorted(Counter(s.task.type for s in traces).items(), key=lambda kv: (-kv[1], kv[0]))),
        "top_sections": [[k, n] for k, n in sorted(keys.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
    }
    if known is not None:
        out["unknown_keys"] = sorted(k for k in keys if k not in known)
    return out


@app.command()
def traces(
    files: Annotated[list[Path], typer.Argument(help="Trace files (JSONL, one session per line).")],
    sections: Annotated[
        list[Path] | None,
        typer.Option("--sections", help="Sections (directory or .jsonl) every call key must exist in; repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    top: Annotated[int, typer.Option(help="How many of the most requested sections to list.")] = 10,
) -> None:
    """Check trace files and summarise them; each bad line gets one warning naming file and line.

    A bad line (a torn last line from an interrupted write, binary garbage, a wrong type) does not
    stop the check: the summary covers the good lines and the exit code is 1. Files are only read.
    """
    try:
        loaded: list[SessionTrace] = []
        problems = 0
        for f in files:
            good, bad = read_traces_tolerant(f)
            loaded.extend(good)
            problems += len(bad)
            for problem in bad:
                print_warning(f"{problem}; line skipped")
        known: set[str] | None = None
        if sections:
            known = {s.id for src in sources_from_paths(sections) for s in src.list_sections()}
    except PrehydrateError as exc:
        print_error(str(exc))
        raise typer.Exit(code=2) from exc
    summary = summarize(loaded, known, top)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        from rich.table import Table

        table = Table(title=f"{', '.join(str(f) for f in files)}", show_header=False)
        for key in ("sessions", "turns", "turns_without_calls", "calls", "calls_per_turn", "distinct_sections",
                    "think_ms_p50", "think_ms_p95"):  # fmt: skip
            table.add_row(key.replace("_", " "), str(summary[key]))
        table.add_row("task types", ", ".join(f"{k or '(none)'} {n}" for k, n in summary["task_types"].items()))
        table.add_row("most requested", ", ".join(f"{k} {n}" for k, n in summary["top_sections"]))
        if known is not None:
            table.add_row("unknown keys", ", ".join(summary["unknown_keys"]) or "none")
        console.print(table)
    if (known is not None and summary["unknown_keys"]) or problems:
        raise typer.Exit(code=1)
