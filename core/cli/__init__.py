"""The ``prehydrate`` command line: one private module per command, registered on one typer app."""

from __future__ import annotations

from . import _sources_cmd, _traces_cmd  # noqa: F401  (register `sections`, `fetch` and `traces`)
from ._app import app
from ._compile_cmd import compile_command  # noqa: F401  (registers `compile`)
from ._demo_cmd import demo_command  # noqa: F401  (registers `demo`)
from ._extras import run_guarded
from ._mcp_config_cmd import mcp_config_command  # noqa: F401  (registers `mcp-config`)
from ._replay_cmd import replay_command  # noqa: F401  (registers `replay`)
from ._serve_cmd import serve_command  # noqa: F401  (registers `serve`)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``prehydrate`` console script (a missing optional extra is one line, exit 2)."""
    run_guarded(app)
