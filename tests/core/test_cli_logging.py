"""The CLI's logging: one plain stderr handler, prehydrate at the level asked, libraries quieter."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from prehydrate.cli import _logging
from prehydrate.cli._logging import LOG_LEVEL_ENV, LogLevel, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("prehydrate")
    saved = (root.level, list(root.handlers), ours.level, _logging._handler)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    ours.setLevel(saved[2])
    _logging._handler = saved[3]


def test_configured_once_with_levels_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _logging._handler = None
    before = len(logging.getLogger().handlers)
    monkeypatch.setenv(LOG_LEVEL_ENV, "warning")
    configure_logging()
    assert logging.getLogger("prehydrate").level == logging.WARNING
    configure_logging(LogLevel.info)  # the flag wins over the environment; still one handler
    assert len(logging.getLogger().handlers) == before + 1
    assert logging.getLogger("prehydrate").level == logging.INFO
    assert logging.getLogger().level == logging.WARNING  # the MCP SDK's INFO chatter stays out
    configure_logging(LogLevel.debug)
    assert logging.getLogger().level == logging.DEBUG  # debug shows everything
    monkeypatch.setenv(LOG_LEVEL_ENV, "loud")
    configure_logging()
    assert logging.getLogger("prehydrate").level == logging.INFO  # an unknown name falls back to info
