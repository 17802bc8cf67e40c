"""``prehydrate compile``: turn a master prompt into a static, cache-friendly prefix plus a manifest."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from .._compile import AliasStyle, CompiledContext, compile_context, load_glossary
from .._errors import PrehydrateError
from .._sections import Scope, Section, estimate_tokens
from .._sources import sources_from_paths
from .._text import read_text, write_text
from ._app import app, console, err_console

__all__ = ["compile_command"]

_T = TypeVar("_T")


async def _load_sections(paths: Sequence[Path]) -> tuple[list[Section], dict[str, str]]:
    """List every section of the given sources and hydrate its content, in argument order.

    ``Section.order`` is renumbered across sources so that document order is the order of the
    ``--sections`` options, whatever each source numbered on its own.
    """
    sections: list[Section] = []
    contents: dict[str, str] = {}
    for source in sources_from_paths(paths):
        try:
            for section in source.list_sections():
                hydrated = await source.hydrate(section.id, scope=Scope())
                sections.append(dataclasses.replace(section, order=len(sections)))
                contents[section.id] = hydrated.content
        finally:
            await source.aclose()
    return sections, contents


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on a private loop, leaving the thread's current event loop (if any) alone.

    ``asyncio.run`` would replace and drop a loop a host (a test runner, a notebook) has set, which
    then leaks as an unclosed loop.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _summary(cc: CompiledContext, inputs: Sequence[tuple[str, int]]) -> Table:
    """Token counts before and after, and what the prefix holds, for the terminal."""
    table = Table(title="prehydrate compile", show_header=True, header_style="bold", title_justify="left")
    table.add_column("")
    table.add_column("tokens", justify="right")
    for label, tokens in inputs:
        table.add_row(label, str(tokens))
    table.add_row("[bold]compiled prefix[/bold]", f"[bold]{cc.tokens}[/bold]")
    return table


@app.command("compile")
def compile_command(
    prompt: Annotated[Path, typer.Argument(help="The master prompt (Markdown).", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the compiled prefix here (default: standard output)."),
    ] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Write the JSON manifest here.")] = None,
    glossary: Annotated[
        Path | None,
        typer.Option(
            "--glossary",
            help="JSON object term -> definition. Without it, **Term**: definition lines and "
            "definition lists in the prompt are used.",
        ),
    ] = None,
    sections: Annotated[
        list[Path] | None,
        typer.Option(
            "--sections",
            help="A directory or .jsonl sections file (repeatable); inlined while the budget allows, "
            "the rest become stubs.",
        ),
    ] = None,
    budget_tokens: Annotated[
        int | None,
        typer.Option(
            "--budget-tokens",
            min=0,
            help="Upper bound on the tokens of the static prefix (a --task/--query block comes on top).",
        ),
    ] = None,
    alias_style: Annotated[
        str,
        typer.Option(
            "--alias-style",
            metavar="natural|abstract",
            help="natural: keep the word and add <D1/>; abstract: replace later occurrences by <D1/>.",
        ),
    ] = "natural",
    max_chunk_tokens: Annotated[
        int, typer.Option("--max-chunk-tokens", min=1, help="Cut chunks longer than this at paragraphs.")
    ] = 400,
    task: Annotated[str | None, typer.Option("--task", help="Task line for the closing block.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="Query line for the closing block.")] = None,
    strict: Annotated[
        bool, typer.Option("--strict/--no-strict", help="Refuse glossary terms the prompt never uses.")
    ] = True,
) -> None:
    """Compile a master prompt into a static, byte-stable prefix (definitions at first use, stubs).

    Example: prehydrate compile prompt.md --glossary glossary.json -o prefix.txt --manifest prefix.json
    """
    if alias_style not in ("natural", "abstract"):
        err_console.print(f"[red]error:[/red] --alias-style must be natural or abstract, not {alias_style!r}")
        raise typer.Exit(2)
    style: AliasStyle = "natural" if alias_style == "natural" else "abstract"
    try:
        text = read_text(prompt, "prompt file")
        terms = load_glossary(glossary) if glossary is not None else None
        catalog, contents = _run(_load_sections(sections or []))
        cc = compile_context(
            text,
            glossary=terms,
            sections=catalog,
            contents=contents,
            budget_tokens=budget_tokens,
            alias_style=style,
            task=task,
            query=query,
            max_chunk_tokens=max_chunk_tokens,
            strict=strict,
        )
        if output is not None:
            write_text(output, cc.text, "output file")
        if manifest is not None:
            write_text(manifest, cc.manifest_json(), "manifest file")
    except PrehydrateError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if output is None:
        # The prefix itself goes to stdout untouched (no rich markup or wrapping); the summary to stderr.
        typer.echo(cc.text, nl=False)
    inputs = [("prompt (input)", estimate_tokens(text))]
    if terms:
        inputs.append(("glossary definitions (input)", sum(estimate_tokens(d) for d in terms.values())))
    if contents:
        inputs.append(
            (f"section contents (input, {len(contents)})", sum(estimate_tokens(c) for c in contents.values()))
        )
    out = console if output is not None else err_console
    out.print(_summary(cc, inputs))
    chunks, terms_made = cc.manifest["chunks"], cc.manifest["terms"]
    assert isinstance(chunks, list) and isinstance(terms_made, list)
    out.print(
        f"{len(chunks)} chunks, {len(terms_made)} terms, {len(cc.inlined)} sections inlined, "
        f"{len(cc.stubs)} stubs; sha256 {cc.sha256}",
        highlight=False,
        soft_wrap=True,
    )
