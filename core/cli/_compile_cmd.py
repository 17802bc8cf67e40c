"""``prehydrate compile``: turn a master prompt into a static, cache-friendly prefix plus a manifest."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from .._compile import AliasStyle, CompiledContext, compile_context, load_glossary
from .._errors import PrehydrateError
from .._sections import Scope, Section, estimate_tokens
from .._sources import sources_from_paths
from .._text import read_text, write_text
from ._app import app, console, err_console

if TYPE_CHECKING:
    from rich.table import Table

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
    from rich.table import Table

    table = Table(title="prehydrate compile", show_header=True, header_style="bold", title_justify="left")
    table.add_column("")
    table.add_column("tokens", justify="right")
    for label, tokens in inputs:
        table.add_row(label, str(tokens))
    table.add_row("[bold]compiled prefix[/bold]", f"[bold]{cc.tokens}[/bold]")
    return table


_Prompt = Annotated[Path, typer.Argument(help="The master prompt (Markdown).", show_default=False)]
_Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the compiled prefix here (default: standard output).")
]
_Manifest = Annotated[Path | None, typer.Option("--manifest", help="Write the JSON manifest here.")]
_Glossary = Annotated[
    Path | None,
    typer.Option(
        "--glossary",
        help="JSON object term -> definition. Without it, **Term**: definition lines and "
        "definition lists in the prompt are used.",
    ),
]
_Sections = Annotated[
    list[Path] | None,
    typer.Option(
        "--sections",
        help="A directory or .jsonl sections file (repeatable); inlined while the budget allows, "
        "the rest become stubs.",
    ),
]
_Budget = Annotated[
    int | None,
    typer.Option(
        "--budget-tokens",
        min=0,
        help="Upper bound on the tokens of the static prefix (a --task/--query block comes on top).",
    ),
]
_AliasStyleOption = Annotated[
    str,
    typer.Option(
        "--alias-style",
        metavar="natural|abstract",
        help="natural: keep the word and add <D1/>; abstract: replace later occurrences by <D1/>.",
    ),
]
_MaxChunk = Annotated[int, typer.Option("--max-chunk-tokens", min=1, help="Cut chunks longer than this at paragraphs.")]
_Task = Annotated[str | None, typer.Option("--task", help="Task line for the closing block.")]
_Query = Annotated[str | None, typer.Option("--query", help="Query line for the closing block.")]
_Strict = Annotated[bool, typer.Option("--strict/--no-strict", help="Refuse glossary terms the prompt never uses.")]


@dataclasses.dataclass(frozen=True, slots=True)
class _Inputs:
    """What the command read: the prompt, the glossary and the sections' catalog and contents."""

    text: str
    terms: dict[str, str] | None
    catalog: list[Section]
    contents: dict[str, str]

    def token_rows(self) -> list[tuple[str, int]]:
        """The summary's input rows: tokens of the prompt, the definitions and the section contents."""
        rows = [("prompt (input)", estimate_tokens(self.text))]
        if self.terms:
            rows.append(("glossary definitions (input)", sum(estimate_tokens(d) for d in self.terms.values())))
        if self.contents:
            total = sum(estimate_tokens(c) for c in self.contents.values())
            rows.append((f"section contents (input, {len(self.contents)})", total))
        return rows


def _read_inputs(prompt: Path, glossary: Path | None, sections: Sequence[Path]) -> _Inputs:
    """Read the prompt file, the glossary file and every section (errors are :class:`PrehydrateError`)."""
    text = read_text(prompt, "prompt file")
    terms = load_glossary(glossary) if glossary is not None else None
    catalog, contents = _run(_load_sections(sections))
    return _Inputs(text, terms, catalog, contents)


def _print_summary(cc: CompiledContext, inputs: _Inputs, out: Console) -> None:
    """The token table and one line of counts (stdout, or stderr when stdout carries the prefix)."""
    out.print(_summary(cc, inputs.token_rows()))
    chunks, terms_made = cc.manifest["chunks"], cc.manifest["terms"]
    assert isinstance(chunks, list) and isinstance(terms_made, list)
    out.print(
        f"{len(chunks)} chunks, {len(terms_made)} terms, {len(cc.inlined)} sections inlined, "
        f"{len(cc.stubs)} stubs; sha256 {cc.sha256}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("compile")
def compile_command(
    prompt: _Prompt,
    output: _Output = None,
    manifest: _Manifest = None,
    glossary: _Glossary = None,
    sections: _Sections = None,
    budget_tokens: _Budget = None,
    alias_style: _AliasStyleOption = "natural",
    max_chunk_tokens: _MaxChunk = 400,
    task: _Task = None,
    query: _Query = None,
    strict: _Strict = True,
) -> None:
    """Compile a master prompt into a static, byte-stable prefix (definitions at first use, stubs).

    Example: prehydrate compile prompt.md --glossary glossary.json -o prefix.txt --manifest prefix.json
    """
    if alias_style not in ("natural", "abstract"):
        err_console.print(f"[red]error:[/red] --alias-style must be natural or abstract, not {alias_style!r}")
        raise typer.Exit(2)
    style: AliasStyle = "natural" if alias_style == "natural" else "abstract"
    try:
        inputs = _read_inputs(prompt, glossary, sections or [])
        cc = compile_context(
            inputs.text,
            glossary=inputs.terms,
            sections=inputs.catalog,
            contents=inputs.contents,
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
    _print_summary(cc, inputs, console if output is not None else err_console)
