"""OpenTelemetry for prehydrate: spans and metrics from engine events.

``instrument(engine)`` subscribes to the engine and records, with ``opentelemetry-api`` only:

- exactly one span per call with the cache result (``hit``/``inflight``/``miss`` or an error),
  section, wait, prefetch lead, bytes and tenant. Under MCP it is the SDK's own ``tools/call
  request_context`` span (the tool-execution span by the conventions; the front end declares it
  with :func:`host_span`); elsewhere (engine API, LangChain tool, LangGraph) prehydrate opens an
  ``execute_tool request_context`` span, a child of the LangChain run in progress or of the
  current span. Section reads as MCP resources are recorded the same way;
- one ``prehydrate turn`` span per turn carrying its TurnReport, and one ``prehydrate prefetch`` span
  per speculative hydration (a child of and linked to its turn) with its outcome
  (``used``/``wasted``/``cancelled``/``failed``);
- metrics: lookups by result, prefetches by outcome, a wait-time histogram, bytes hydrated and wasted.

Providers are arguments (default: the global ones); the library never installs them. Applications
and the CLI call :func:`configure_from_env` (or the :func:`otel_from_env` context manager) to export
over OTLP/HTTP according to the standard ``OTEL_*`` variables. Attribute keys are in
:mod:`prehydrate.tracing.attributes`. See docs/tracing.md.

Example:
    >>> import prehydrate as ph
    >>> from prehydrate.tracing import instrument
    >>> engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
    >>> with instrument(engine):  # the global providers: a no-op until the app installs an SDK
    ...     pass
"""

from __future__ import annotations

from prehydrate.tracing import attributes
from prehydrate.tracing._configure import OtelSetup, configure_from_env, otel_from_env
from prehydrate.tracing._hosts import host_span
from prehydrate.tracing._instrument import Instrumentation, instrument

__all__ = [
    "Instrumentation",
    "OtelSetup",
    "attributes",
    "configure_from_env",
    "host_span",
    "instrument",
    "otel_from_env",
]
