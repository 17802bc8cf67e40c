"""``prehydrate sections`` and ``prehydrate fetch``: look at what sources yield."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .._engine import Engine
from .._errors import PrehydrateError
from .._sources import sources_from_paths
from ._app import app, console, print_error

__all__: list[str] = []

PathsArg = Annotated[list[Path], typer.Argument(help="Directories and .jsonl section files.")]


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
            print(json.dumps({"id": s.id, "title": s.title, "tags": list(s.tags), "tokens": s.tokens,
                              "bytes": s.size_bytes, "version": s.version}, ensure_ascii=False))
        return
    table = Table(title=f"{len(catalog)} sections")
    for col in ("id", "title", "tokens", "version"):
        table.add_column(col, justify="right" if col == "tokens" else "left")
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
    except PrehydrateError as exc:
        raise _fail(exc) from exc
    print(content, end="" if content.endswith("\n") else "\n")
