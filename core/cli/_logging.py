"""Logging for the command line: configured once, plain text, on stderr, level from flag or env.

Nothing here writes to stdout, which belongs to the MCP protocol under ``serve``'s stdio transport.
Configuring the root logger before the MCP SDK builds its server also keeps the SDK from installing
its own Rich handler (it calls ``logging.basicConfig``, a no-op once a handler exists): Rich
tracebacks took about a second to render for every bad prompt call and held up the other clients'
calls meanwhile.

Levels: prehydrate's own loggers (``prehydrate.*``) use the level asked for (default ``INFO``, so
``serve`` reports what it loaded); the libraries (the MCP SDK, uvicorn's, httpx) stay at
``WARNING`` unless ``DEBUG`` is asked for, which shows everything.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from typing import Annotated

import typer

__all__ = ["LOG_LEVEL_ENV", "LogLevel", "LogLevelOption", "configure_logging"]

LOG_LEVEL_ENV = "PREHYDRATE_LOG_LEVEL"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogLevel(enum.StrEnum):
    """The levels ``--log-level`` accepts."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOption = Annotated[
    LogLevel | None,
    typer.Option(
        "--log-level",
        case_sensitive=False,
        help=f"Log level on stderr (default: ${LOG_LEVEL_ENV} or info; debug also shows the MCP SDK's logs).",
    ),
]

_handler: logging.Handler | None = None


def _level_from_env() -> int:
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    level = logging.getLevelName(name) if name else logging.INFO
    return level if isinstance(level, int) else logging.INFO


def configure_logging(level: LogLevel | None = None) -> None:
    """Install the one stderr handler (first call) and set the levels (every call).

    Args:
        level: the level asked for on the command line; ``None`` takes ``$PREHYDRATE_LOG_LEVEL``
            (an unknown name there falls back to ``info``).
    """
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(_handler)
    value = logging.getLevelName(level.value.upper()) if level is not None else _level_from_env()
    logging.getLogger("prehydrate").setLevel(value)
    root.setLevel(value if value <= logging.DEBUG else max(value, logging.WARNING))
