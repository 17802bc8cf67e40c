"""Build the Engine a server runs on, from command-line style arguments.

``prehydrate serve`` (and anything that wraps it) calls :func:`build_engine` once, so options that
change the engine (another cache tier, another trace store) are added in one place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import prehydrate as ph

__all__ = ["build_engine", "default_traces_path"]

HOME_ENV = "PREHYDRATE_HOME"
"""Directory for prehydrate's own state (the default trace store); ``~/.prehydrate`` if unset."""


def default_traces_path() -> Path:
    """Where sessions are recorded when no ``--traces`` is given.

    A fixed per-user location rather than the working directory: MCP hosts such as Claude Desktop
    start servers with an arbitrary (often read-only) working directory.
    """
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path.home() / ".prehydrate"
    return base / "traces.jsonl"


def build_engine(
    paths: Sequence[str | Path] = (),
    *,
    cache_dir: str | Path | None = None,
    traces: str | Path | ph.TraceStore | None = None,
    memory_bytes: int = 64 << 20,
    policy: ph.PrefetchPolicy | None = None,
    predictor: ph.Predictor | None = None,
) -> ph.Engine:
    """An Engine over ``paths`` with a memory tier, an optional disk tier and a trace store.

    Args:
        paths: directories and ``.jsonl`` section files; empty means the bundled sample corpus.
        cache_dir: adds a ``DiskTier`` there (persists across restarts and processes).
        traces: the TraceStore (or its path) that sessions are recorded in and predictors learn
            from; ``None`` means no trace store at all.
        memory_bytes: size bound of the in-process tier.
        policy: prefetch policy (defaults to ``PrefetchPolicy()``).
        predictor: predictor (defaults to ``prehydrate.default_predictor()``).

    Raises:
        prehydrate.ConfigError: a path that is neither a directory nor a ``.jsonl`` file.
    """
    sources = ph.sources_from_paths(paths) if paths else [ph.JsonlSource(ph.sample_sections_path())]
    tiers: list[ph.CacheTier] = [ph.MemoryTier(max_bytes=memory_bytes)]
    if cache_dir is not None:
        tiers.append(ph.DiskTier(cache_dir))
    store = traces if isinstance(traces, ph.TraceStore) or traces is None else ph.TraceStore(traces)
    return ph.Engine(
        sources=sources,
        cache=ph.WarmCache(tiers=tiers),
        predictor=predictor if predictor is not None else ph.default_predictor(),
        policy=policy,
        traces=store,
    )
