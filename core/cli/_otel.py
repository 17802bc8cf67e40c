"""``--otel`` for commands that run an engine (``serve``, ``demo``): OpenTelemetry from ``OTEL_*`` variables.

A command adds the flag and wraps its run::

    otel: OtelFlag = False,
    ...
    with otel_telemetry(engine, otel):
        asyncio.run(...)

``prehydrate.tracing`` (and through it the OpenTelemetry SDK and OTLP exporter) is imported only when
the flag is on, so the CLI works without the ``otel`` extra. Messages go to stderr: on the stdio
transport, stdout belongs to the MCP protocol.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ._app import err_console
from ._extras import missing_extra

if TYPE_CHECKING:
    from prehydrate import Engine

__all__ = ["OtelFlag", "otel_telemetry"]

OtelFlag = Annotated[
    bool,
    typer.Option(
        "--otel",
        help="Export traces and metrics over OTLP/HTTP, configured by the standard OTEL_* variables "
        "(OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318). See docs/tracing.md.",
    ),
]


@contextmanager
def otel_telemetry(engine: Engine, enabled: bool, *, service_name: str = "prehydrate") -> Iterator[None]:
    """Instrument ``engine`` and install SDK providers for the block when ``enabled``; flush at exit.

    Raises:
        typer.Exit: the ``otel`` extra is not installed (exit code 2, with the install command).
        ConfigError: an unsupported ``OTEL_*`` setting (the command reports it like any input error).
    """
    if not enabled:
        yield
        return
    try:  # the API comes with the mcp extra; the SDK and exporter only with otel, imported on configure
        from prehydrate.tracing import configure_from_env, instrument

        setup = configure_from_env(service_name=service_name)
    except ImportError as exc:  # the optional extra is missing
        raise missing_extra(exc, "--otel", "otel") from None
    handle = instrument(engine, setup.tracer_provider, setup.meter_provider)
    where = setup.endpoint or f"the {setup.traces_exporter} exporter"
    err_console.print(f"OpenTelemetry: traces to {where}, metrics to the {setup.metrics_exporter} exporter")
    froze = _freeze_startup_heap()
    try:
        yield
    finally:
        handle.uninstrument()
        setup.shutdown()  # flushes what the batch processor and the metric reader still hold
        if froze:
            gc.unfreeze()


def _freeze_startup_heap() -> bool:
    """Keep the garbage collector's full passes off the objects the process started with.

    Finished spans wait in the batch processor's queue for hundreds of calls, so they outlive the
    young generations and count toward the next *full* collection, which scans every object in the
    process: about 100,000 after ``prehydrate serve`` has imported its dependencies, about 50 ms a
    pass. An untraced server makes no full pass once it serves; a traced one made one every 2,000
    calls or so, about 25 µs per call. ``gc.freeze()`` moves what exists now to a generation the
    collector skips, after one collection so that no garbage is kept forever.

    Returns:
        Whether this call froze the heap (so the caller unfreezes it); False when someone else
        (the application) froze it already.
    """
    if gc.get_freeze_count():
        return False
    gc.collect()
    gc.freeze()
    return True
