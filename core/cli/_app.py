"""The typer application every CLI command registers on."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = ["app", "console", "err_console", "print_error", "print_warning"]

app = typer.Typer(
    name="prehydrate",
    help="Make context arrive before an LLM agent asks for it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """Print ``error: message`` to stderr as one line, taken literally.

    Messages carry user text (paths, section ids) and install hints (``prehydrate[otel]``) that Rich
    would read as markup tags, and a non-terminal stderr would be wrapped at 80 columns.
    """
    err_console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """Print ``warning: message`` to stderr as one line, taken literally (see :func:`print_error`)."""
    err_console.print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)
