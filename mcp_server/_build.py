"""Build the Engine a server runs on, from command-line style arguments.

``prehydrate serve`` (and anything that wraps it) calls :func:`build_engine` once, so options that
change the engine (another cache tier, another trace store) are added in one place.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import prehydrate as ph

__all__ = ["build_engine", "default_traces_path"]

logger = logging.getLogger("prehydrate.mcp_server")


class _SlowSource:
    """Wraps a source so every hydration first sleeps: simulated latency for in-memory corpora.

    The bundled sample corpus hydrates in microseconds, so there would be nothing for prefetching to
    hide; ``prehydrate demo`` (and anyone trying the server) sets the latency a real source has.
    """

    def __init__(self, inner: ph.Source, latency_s: float) -> None:
        self.inner = inner
        self.latency_s = latency_s
        self.name = inner.name
        self.speculative = inner.speculative

    def list_sections(self) -> Sequence[ph.Section]:
        return self.inner.list_sections()

    async def hydrate(self, section_id: str, *, scope: ph.Scope) -> ph.Hydrated:
        await asyncio.sleep(self.latency_s)
        return await self.inner.hydrate(section_id, scope=scope)

    async def aclose(self) -> None:
        await self.inner.aclose()


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
    simulate_latency_s: float = 0.0,
    learn: Sequence[str | Path] = (),
    learning: ph.LearningPolicy | None = None,
) -> ph.Engine:
    """An Engine over ``paths`` with a memory tier, an optional disk tier and a trace store.

    Args:
        paths: directories and ``.jsonl`` section files; empty means the bundled sample corpus.
        cache_dir: adds a ``DiskTier`` there (persists across restarts and processes). A directory
            that cannot be opened (read-only, full) is skipped with a warning: the server still
            serves from memory and the sources, as it does when the disk fails later.
        traces: the TraceStore (or its path) that sessions are recorded in and predictors learn
            from; ``None`` means no trace store at all.
        memory_bytes: size bound of the in-process tier.
        policy: prefetch policy (defaults to ``PrefetchPolicy()``).
        predictor: predictor (defaults to ``prehydrate.default_predictor()``).
        simulate_latency_s: every hydration first sleeps this long (a demo of a slow source).
        learn: trace files shared with every tenant (never written to): the default tenant's
            predictor is fitted on them and its recorded sessions now, every other tenant's
            predictor learns from them besides its own sessions.
        learning: how the engine learns (per tenant, online, persisted models; see
            ``prehydrate.LearningPolicy``).

    Raises:
        prehydrate.ConfigError: a path that is neither a directory nor a ``.jsonl`` file, or a
            negative latency.
        prehydrate.MalformedInputError: a broken line in a ``learn`` file (names file and line).
    """
    if simulate_latency_s < 0:
        raise ph.ConfigError("the simulated latency must not be negative")
    sources: list[ph.Source] = ph.sources_from_paths(paths) if paths else [ph.JsonlSource(ph.sample_sections_path())]
    if simulate_latency_s > 0:
        sources = [_SlowSource(s, simulate_latency_s) for s in sources]
    tiers: list[ph.CacheTier] = [ph.MemoryTier(max_bytes=memory_bytes)]
    if cache_dir is not None:
        try:
            tiers.append(ph.DiskTier(cache_dir))
        except ph.CacheError as exc:
            logger.warning("skipping the disk cache tier: %s; serving from memory and the sources", exc)
    store = traces if isinstance(traces, ph.TraceStore) or traces is None else ph.TraceStore(traces)
    engine = ph.Engine(
        sources=sources,
        cache=ph.WarmCache(tiers=tiers),
        predictor=predictor if predictor is not None else ph.default_predictor(),
        policy=policy,
        traces=store,
        learning=learning,
    )
    if learn:
        engine.learning.share([t for path in learn for t in ph.read_traces(path)])
        # An operator's corpus is fitted before serving (the demo relies on it); recorded
        # sessions of other tenants are fitted when the engine starts.
        engine.learning.fit(engine.catalog)
    return engine
