"""Import guard: the integrations are an optional extra, so say how to install it when it is missing."""

from __future__ import annotations

import importlib.util

__all__ = ["require"]


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules (set to None)
        return False


def require(module: str, *packages: str) -> None:
    """Raise a helpful ImportError when any of ``packages`` is not installed.

    Raises:
        ImportError: naming the missing package and the extra that brings it.
    """
    missing = [p for p in packages if not _installed(p)]
    if missing:
        raise ImportError(
            f"{module} needs {', '.join(missing)}, which is not installed. "
            "Install the extra: pip install 'prehydrate[langgraph]'"
        )
