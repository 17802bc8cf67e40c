"""``prehydrate sections`` and ``prehydrate fetch``: look at what sources yield."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from .._engine import Engine
from .._errors import PathTraversalError, PrehydrateError
from .._sources import sources_from_paths
from ._app import app, console, print_error

__all__: list[str] = []

PathsArg = Annotated[list[Path], typer.Argument(help="Directories, single text files and .jsonl section files.")]


def _fail(exc: PrehydrateError) -> typer.Exit:
    print_error(str(exc))
    return typer.Exit(code=2)


@app.command()
def sections(
    paths: PathsArg,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per section.")] = False,
) -> None:
    """List the sections the given sources yield, in document order."""
    try:
        engine = Engine(sources_from_paths(paths))
        catalog = engine.catalog
    except PrehydrateError as exc:
        raise _fail(exc) from exc
    if as_json:
        for s in catalog:
            print(
                json.dumps(
                    {
                        "id": s.id,
                        "title": s.title,
                        "tags": list(s.tags),
                        "tokens": s.tokens,
                        "bytes": s.size_bytes,
                        "version": s.version,
                    },
                    ensure_ascii=False,
                )
            )
        return
    longest = max((len(s.id) for s in catalog), default=2)
    if not console.is_terminal or longest + 40 > console.width:
        # Piped, or too narrow for a table: one tab-separated line per section, the id never cut,
        # since the id is what the agent must type back (like `ls`, plain when not on a terminal).
        for s in catalog:
            print(f"{s.id}\t{s.title}\t{s.tokens}\t{s.version}")
        return
    from rich.table import Table  # here: only a terminal listing draws one (serve starts faster)

    table = Table(title=f"{len(catalog)} sections")
    table.add_column("id", no_wrap=True, min_width=longest)
    table.add_column("title", overflow="ellipsis", no_wrap=True)
    table.add_column("tokens", justify="right")
    table.add_column("version", no_wrap=True)
    for s in catalog:
        table.add_row(s.id, s.title, str(s.tokens), s.version)
    console.print(table)


@app.command()
def fetch(
    path: Annotated[Path, typer.Argument(help="A directory or .jsonl sections file.")],
    section_id: Annotated[str, typer.Argument(help="The section id to hydrate.")],
) -> None:
    """Hydrate one section and print its content."""

    async def run() -> str:
        async with Engine(sources_from_paths([path])) as engine:
            async with engine.session("cli", record=False) as session:
                async with session.turn(expect=[]) as turn:
                    result = await turn.request_context(section_id)
        return result.content

    try:
        content = asyncio.run(run())
    except PathTraversalError as exc:
        root = exc.root or str(path.resolve() if path.is_dir() else path.resolve().parent)
        print_error(f"section id {section_id!r} would resolve outside the source root {root!r}: "
                    "ids are catalog keys (see `prehydrate sections`), not file paths")  # fmt: skip
        raise typer.Exit(code=2) from exc
    except PrehydrateError as exc:
        raise _fail(exc) from exc
    print(content, end="" if content.endswith("\n") else "\n")
