"""``prehydrate serve``: run the MCP tool server over stdio or streamable HTTP.

The MCP SDK is an optional dependency (``prehydrate[mcp]``), so it is imported inside the command
only: the rest of the CLI works without it.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._errors import PrehydrateError
from ._app import app, err_console, print_error
from ._extras import missing_extra
from ._logging import LogLevelOption, configure_logging
from ._otel import OtelFlag, otel_telemetry

if TYPE_CHECKING:
    from prehydrate import Engine

__all__ = ["Transport", "serve_command"]

logger = logging.getLogger("prehydrate.serve")


class Transport(enum.StrEnum):
    """How clients reach the server."""

    stdio = "stdio"
    http = "http"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _record_turn_reports(engine: Engine, path: Path) -> None:
    """Append every finished turn's report to ``path`` as one JSON line (waste is only known here)."""
    from prehydrate import TurnEnded, TurnReport

    path.parent.mkdir(parents=True, exist_ok=True)

    def on_event(event: object) -> None:
        if isinstance(event, TurnEnded) and isinstance(event.report, TurnReport):
            line = {**event.report.as_dict(), "wait_ms": [round(w, 3) for w in event.report.wait_ms]}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")

    engine.subscribe(on_event)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _close_traces(engine: Engine) -> None:
    """Write sessions the trace store kept in memory after an I/O error (to a named file if need be)."""
    if engine.traces is not None:
        engine.traces.close()


async def _terminate(engine: Engine, sessions: Any) -> None:
    """Bail out, record every session, close the engine, then leave the process."""
    try:
        await sessions.aclose()
        await engine.aclose()
    finally:
        _close_traces(engine)
        sys.stderr.flush()
        os._exit(0)  # the stdin reader thread cannot be interrupted; nothing is left to wait for


def _report_startup(engine: Engine, paths: list[Path], store: Path | None, record: bool, learned: int | None) -> None:
    """Say on stderr what is being served, where sessions go and what the predictor learned from."""
    counts = Counter(s.source for s in engine.catalog)
    where = [str(p.resolve()) for p in paths] or ["the bundled sample corpus"]
    for src, path in zip(engine.sources, where, strict=False):
        if counts.get(src.name, 0) == 0:
            logger.warning("no sections found in %s (served: Markdown, text and code files, .jsonl)", path)
    logger.info("serving %d sections from %s", len(engine.catalog), ", ".join(where))
    if store is None:
        logger.info("no trace store: sessions are not recorded and the predictor does not learn")
    else:
        logger.info("%s sessions in %s", "recording" if record else "not recording (--no-record)", store)
    if learned is None:
        logger.info("predictor: %s, fitted at start on the --learn files", type(engine.predictor).__name__)
    elif learned:
        logger.info(
            "predictor: %s, fitted in the background on the recorded sessions of %d tenant(s) (serving meanwhile)",
            type(engine.predictor).__name__,
            learned,
        )
    else:
        logger.info("predictor: %s, no recorded sessions yet (predicting from the text alone)",
                    type(engine.predictor).__name__)  # fmt: skip


async def _serve(
    engine: Engine,
    server: Any,
    transport: Transport,
    host: str,
    port: int,
    sessions: Any,
    report: Callable[[int | None], None] = lambda learned: None,
    limits: Any = None,
) -> None:
    """Run until the client leaves (stdio EOF) or a signal arrives; the engine is closed after.

    On HTTP nothing but imports and listing the sources stands before the port: the lexical index
    and the learning worker (which reads the trace store) start once the port accepts connections,
    so neither competes with the start for the interpreter. On stdio (no port; the host starts the
    server for one session) the engine warms up before the first message is read, as it always did.
    """
    loop = asyncio.get_running_loop()
    stdio_signals = (signal.SIGTERM, signal.SIGINT) if transport is Transport.stdio else ()
    tasks: list[asyncio.Task[None]] = []  # strong references: the loop keeps tasks weakly

    def on_signal() -> None:
        if not any(t.get_name() == "terminate" for t in tasks):
            tasks.append(loop.create_task(_terminate(engine, sessions), name="terminate"))

    def warm_up() -> None:
        tasks.append(loop.create_task(_warm_up(engine), name="warm-up"))

    for sig in stdio_signals:
        # uvicorn handles signals itself for HTTP. On stdio the SDK reads stdin in a worker thread
        # that no cancellation interrupts, so a host's SIGTERM would wait for input that never
        # comes: run the shutdown work (bailout, recording, closing the engine) here instead.
        loop.add_signal_handler(sig, on_signal)
    try:
        await engine.start(warm_up=transport is Transport.stdio)
        try:
            store = engine.traces
            report(len(await asyncio.to_thread(store.tenants)) if store is not None else 0)
            await _transport(server, transport, host, port, warm_up, limits)
        finally:
            for task in tasks:
                if task.get_name() == "warm-up":
                    task.cancel()
            await engine.aclose()
    finally:
        _close_traces(engine)
        for sig in stdio_signals:
            loop.remove_signal_handler(sig)


async def _warm_up(engine: Engine) -> None:
    """The engine's warm-up (index, learning), reported if it fails: the server keeps serving."""
    try:
        await engine.warm_up()
    except Exception:  # an unexpected fault: searches build the index on demand, learning stays off
        logger.exception("warming up the engine failed; serving on, without learning")


async def _transport(
    server: Any, transport: Transport, host: str, port: int, warm_up: Callable[[], None], limits: Any = None
) -> None:
    """Serve over ``transport``; on HTTP, ``warm_up`` runs once clients can connect (``limits``: ``HttpLimits``)."""
    if transport is Transport.stdio:
        await server.run_stdio_async()
        return
    from prehydrate.mcp_server import run_http  # admission control: connections, headers, 503s

    await run_http(server, host=host, port=port, limits=limits, on_listening=warm_up)


PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Directories, text files and .jsonl section files (default: the sample corpus)."),
]
TransportOpt = Annotated[Transport, typer.Option(help="stdio for local hosts, http for streamable HTTP.")]
HostOpt = Annotated[str, typer.Option(help="HTTP bind address.")]
PortOpt = Annotated[int, typer.Option(help="HTTP port.")]
CacheDirOpt = Annotated[Path | None, typer.Option(help="Add a disk cache tier here (persists across restarts).")]
RedisOpt = Annotated[
    str | None,
    typer.Option(help="Share the warm cache with other replicas through this Redis (redis://host:port/db)."),
]
RedisPrefixOpt = Annotated[str, typer.Option(help="This deployment's key prefix in Redis.")]
RedisSecretOpt = Annotated[
    str | None,
    typer.Option(
        envvar="PREHYDRATE_REDIS_SECRET",
        show_envvar=True,
        help="Authenticate Redis entries with this key (HMAC-SHA256, same on every replica); "
        "without it, whoever can write to Redis can serve any content to any tenant.",
    ),
]
TracesOpt = Annotated[
    Path | None,
    typer.Option(help="Trace store to learn from and record into (default: $PREHYDRATE_HOME/traces.jsonl)."),
]
NoRecordOpt = Annotated[bool, typer.Option("--no-record", help="Do not record sessions in the trace store.")]
IdleGapOpt = Annotated[float, typer.Option(help="Seconds of quiet after which the next call starts a new turn.")]
MaxPostsOpt = Annotated[
    int,
    typer.Option(
        min=1,
        help="HTTP: requests handled at once; one more is answered 503 (Retry-After: 1). "
        "Lower trades answers in a burst for memory, higher the reverse.",
    ),
]
TokensOpt = Annotated[
    Path | None,
    typer.Option(help="HTTP bearer tokens: a JSON file mapping token -> tenant (also $PREHYDRATE_TOKENS)."),
]
AllowRemoteOpt = Annotated[
    bool, typer.Option("--allow-remote", help="Allow HTTP without tokens on a non-loopback address.")
]
LatencyOpt = Annotated[
    float, typer.Option(help="Every hydration first sleeps this long (try prefetching on a fast corpus).")
]
NoPrefetchOpt = Annotated[
    bool, typer.Option("--no-prefetch", help="No speculation: every request hydrates on demand (baseline).")
]
LearnOpt = Annotated[
    list[Path] | None,
    typer.Option(help="Also fit the predictor on this trace file at start (repeatable; not written to)."),
]
IsolateOpt = Annotated[
    bool,
    typer.Option("--isolate-sessions", help="A cache scope per session: nothing fetched for one is served to another."),
]
TurnReportsOpt = Annotated[
    Path | None, typer.Option(help="Append every turn's report (hits, misses, waste, waits) here as JSON lines.")
]
ModelDirOpt = Annotated[
    Path | None,
    typer.Option(help="Persist fitted models here and serve with them at the next start (default: beside the traces)."),
]
RefitDelayOpt = Annotated[
    float,
    typer.Option(help="Seconds after a session ends until its tenant's predictor is refitted (one per burst)."),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    """What ``prehydrate serve`` was asked for (its options, see ``--help``)."""

    paths: list[Path]
    transport: Transport
    host: str
    port: int
    cache_dir: Path | None
    redis: str | None
    redis_prefix: str
    redis_secret: str | None
    traces: Path | None
    no_record: bool
    idle_gap: float
    max_active_posts: int
    tokens: Path | None
    allow_remote: bool
    otel: bool
    simulate_latency_ms: float
    no_prefetch: bool
    learn: list[Path]
    isolate_sessions: bool
    turn_reports: Path | None
    model_dir: Path | None
    refit_delay: float


@app.command("serve")
def serve_command(
    paths: PathsArg = None,
    transport: TransportOpt = Transport.stdio,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    cache_dir: CacheDirOpt = None,
    redis: RedisOpt = None,
    redis_prefix: RedisPrefixOpt = "prehydrate",
    redis_secret: RedisSecretOpt = None,
    traces: TracesOpt = None,
    no_record: NoRecordOpt = False,
    idle_gap: IdleGapOpt = 30.0,
    max_active_posts: MaxPostsOpt = 256,
    tokens: TokensOpt = None,
    allow_remote: AllowRemoteOpt = False,
    otel: OtelFlag = False,
    simulate_latency_ms: LatencyOpt = 0.0,
    no_prefetch: NoPrefetchOpt = False,
    learn: LearnOpt = None,
    isolate_sessions: IsolateOpt = False,
    turn_reports: TurnReportsOpt = None,
    log_level: LogLevelOption = None,
    model_dir: ModelDirOpt = None,
    refit_delay: RefitDelayOpt = 30.0,
) -> None:
    """Serve the request_context tool over MCP (stdio or streamable HTTP)."""
    configure_logging(log_level)  # before the MCP SDK builds its server (it would install Rich logging)
    options = ServeOptions(
        paths=paths or [],
        transport=transport,
        host=host,
        port=port,
        cache_dir=cache_dir,
        redis=redis,
        redis_prefix=redis_prefix,
        redis_secret=redis_secret or None,
        traces=traces,
        no_record=no_record,
        idle_gap=idle_gap,
        max_active_posts=max_active_posts,
        tokens=tokens,
        allow_remote=allow_remote,
        otel=otel,
        simulate_latency_ms=simulate_latency_ms,
        no_prefetch=no_prefetch,
        learn=learn or [],
        isolate_sessions=isolate_sessions,
        turn_reports=turn_reports,
        model_dir=model_dir,
        refit_delay=refit_delay,
    )
    try:
        from prehydrate import mcp_server
    except ImportError as exc:  # the optional extra is missing
        raise missing_extra(exc, "prehydrate serve", "mcp") from None
    try:
        _run(options, mcp_server)
    except PrehydrateError as exc:
        print_error(str(exc))
        raise typer.Exit(code=2) from exc


def _run(options: ServeOptions, mcp_server: Any) -> None:
    """Check the options, build the engine and the server, and serve until stopped."""
    token_map = _check_options(options, mcp_server)
    store = options.traces if options.traces is not None else mcp_server.default_traces_path()
    engine = _build_engine(options, mcp_server, store)
    server = _create_server(options, mcp_server, engine, token_map)
    if options.redis is not None:
        from .._redis import RedisTier

        engine.cache.tiers.append(RedisTier(options.redis, prefix=options.redis_prefix, secret=options.redis_secret))
    with otel_telemetry(engine, options.otel):  # service.name "prehydrate", as docs/tracing.md says
        report = partial(_report_startup, engine, options.paths, store, not options.no_record)
        sessions = mcp_server.session_manager(server)
        limits = mcp_server.HttpLimits(max_active_posts=options.max_active_posts)
        asyncio.run(_serve(engine, server, options.transport, options.host, options.port, sessions, report, limits))


def _check_options(options: ServeOptions, mcp_server: Any) -> dict[str, str]:
    """Refuse contradictory or unsafe options before any work; returns the token map (maybe empty)."""
    if not 0 < options.port < 65536:
        raise typer.BadParameter("--port must be between 1 and 65535")
    token_map: dict[str, str] = mcp_server.load_tokens(options.tokens)
    if options.transport is Transport.stdio and options.tokens is not None:
        raise typer.BadParameter("--tokens applies to --transport http only (stdio is a local pipe)")
    unauthenticated_remote = options.transport is Transport.http and not token_map and not _is_loopback(options.host)
    if unauthenticated_remote and not options.allow_remote:
        err_console.print(
            f"[red]error:[/red] refusing to serve without auth on {options.host!r}: pass --tokens FILE "
            "(or set $PREHYDRATE_TOKENS), bind to 127.0.0.1, or pass --allow-remote"
        )
        raise typer.Exit(code=2)
    if unauthenticated_remote:
        err_console.print(
            f"warning: serving without auth on {options.host!r} (--allow-remote): anyone who can reach this port "
            "reads every section as the default tenant; pass --tokens FILE to require tokens",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if options.refit_delay < 0:
        raise typer.BadParameter("--refit-delay must not be negative")
    return token_map


def _build_engine(options: ServeOptions, mcp_server: Any, store: Path) -> Engine:
    """The engine: the sources, a cache, the trace store, learning that never delays the port."""
    import prehydrate as ph

    model_dir = options.model_dir if options.model_dir is not None else store.with_name(store.stem + ".models")
    engine: Engine = mcp_server.build_engine(
        options.paths,
        cache_dir=options.cache_dir,
        traces=store,
        # The port opens before any fit: persisted models are loaded and tenants refitted in the background.
        learning=ph.LearningPolicy(wait_at_start=False, refit_delay_s=options.refit_delay, model_dir=model_dir),
        policy=ph.PrefetchPolicy(enabled=False) if options.no_prefetch else None,
        simulate_latency_s=options.simulate_latency_ms / 1000.0,
        learn=options.learn,
    )
    if options.turn_reports is not None:
        _record_turn_reports(engine, options.turn_reports)
    return engine


def _create_server(options: ServeOptions, mcp_server: Any, engine: Engine, token_map: dict[str, str]) -> Any:
    """The MCP server over ``engine``, with bearer-token auth on HTTP when tokens are given."""
    settings = mcp_server.ServerSettings(
        sessions=mcp_server.SessionPolicy(
            idle_gap_s=options.idle_gap,
            session_ttl_s=max(1800.0, options.idle_gap),
            record=not options.no_record,
            isolate=options.isolate_sessions,
        )
    )
    if options.transport is Transport.http and token_map:
        return mcp_server.create_server(
            engine,
            settings,
            token_verifier=mcp_server.TenantTokenVerifier(token_map),
            auth=mcp_server.static_auth_settings(f"http://{_url_host(options.host)}:{options.port}"),
        )
    return mcp_server.create_server(engine, settings)
