"""Optional extras missing at run time: one line naming the extra to install, exit code 2.

The command line works with the base install; ``serve`` needs ``prehydrate[mcp]``, ``--otel`` needs
``prehydrate[otel]``, ``--redis`` needs ``prehydrate[redis]``, ``--plot`` needs ``prehydrate[plot]``
(matplotlib) and ``prehydrate replay`` needs ``prehydrate[replay]`` (looptime). A command that imports an extra guards
the import with :func:`missing_extra`, and :func:`run_guarded` (around the whole app) catches any
import of an extra that slipped past a guard, so a user never sees a traceback for an install step.
The message is printed without Rich markup (``print_error``): ``prehydrate[otel]`` would otherwise be
read as a style tag and vanish from the very line meant to show it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import typer

from ._app import print_error

__all__ = ["EXTRA_OF_PACKAGE", "extra_of", "missing_extra", "require_extra", "run_guarded"]

EXTRA_OF_PACKAGE: dict[str, str] = {
    "langchain_core": "langgraph",
    "langgraph": "langgraph",
    "looptime": "replay",
    "matplotlib": "plot",
    "mcp": "mcp",
    "mcp_types": "mcp",
    "opentelemetry": "otel",
    "redis": "redis",
}
"""Top-level import name -> the extra of ``pyproject.toml`` that installs it."""


def extra_of(exc: ImportError) -> str | None:
    """The extra that brings the module ``exc`` failed to import, or None if no extra does."""
    top = (exc.name or "").split(".")[0]
    return EXTRA_OF_PACKAGE.get(top)


def _say(what: str, extra: str, module: str | None) -> None:
    missing = f" ({module} is not installed)" if module else ""
    print_error(f'{what} needs the {extra} extra{missing}: pip install "prehydrate[{extra}]"')


def missing_extra(exc: ImportError, what: str, extra: str) -> typer.Exit:
    """Print the one-line install hint for ``extra`` and return the exit (code 2) to raise.

    Args:
        exc: the failed import.
        what: what needed it, as the user typed it (``"--otel"``, ``"prehydrate serve"``).
        extra: the extra to name when the failed module is not one :data:`EXTRA_OF_PACKAGE` knows.
    """
    _say(what, extra_of(exc) or extra, exc.name)
    return typer.Exit(code=2)


def require_extra(module: str, what: str, extra: str) -> None:
    """Import ``module`` now, before any work, or stop with the one-line hint naming ``extra``.

    A command checks its options' extras up front, so ``--plot`` without matplotlib fails at once
    rather than after a replay or demo of several minutes whose results it could not draw.
    """
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(exc, what, extra) from None


def run_guarded(app: Callable[[], object]) -> None:
    """Run the typer app; an extra's module missing anywhere becomes the one-line hint and exit 2."""
    try:
        app()
    except ImportError as exc:
        extra = extra_of(exc)
        if extra is None:
            raise
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
        _say(f"prehydrate {command}".strip(), extra, exc.name)
        raise SystemExit(2) from None
