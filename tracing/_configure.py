"""Configure the OpenTelemetry SDK from the standard ``OTEL_*`` variables, for applications and the CLI.

A library must not install providers (the application owns them), so :func:`instrument` never
does. This module is the one exception, for programs: ``prehydrate serve --otel``, ``prehydrate
demo --otel`` and applications that want one call. The SDK and exporter are imported inside the
functions, so ``import prehydrate.tracing`` needs only ``opentelemetry-api``.

Variables read (by the SDK and exporter themselves, not re-implemented here):

- ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``: the resource (service name defaults to
  ``prehydrate``, ``service.version`` to prehydrate's version).
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``; ``/v1/traces`` and
  ``/v1/metrics`` are appended), ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
  ``..._METRICS_ENDPOINT`` (used as-is), ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]HEADERS``,
  ``..._TIMEOUT``, ``..._COMPRESSION``, ``..._CERTIFICATE``.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*``,
  ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_SDK_DISABLED``.
- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: ``otlp`` (default), ``console`` or ``none``.
- ``OTEL_METRICS_EXEMPLAR_FILTER``: the SDK's default, ``trace_based``, offers every histogram
  measurement taken inside a sampled span to the exemplar reservoir, and every warm-cache hit is
  inside one. Here the default is ``always_off`` (about 2.5 µs less per call); set the variable to
  ``trace_based`` or ``always_on`` to get exemplars.
- ``OTEL_EXPORTER_OTLP_PROTOCOL``: only ``http/protobuf`` is supported (the gRPC exporter is not a
  dependency); anything else is a :class:`~prehydrate.ConfigError` rather than a silent failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from prehydrate import ConfigError, Engine, __version__
from prehydrate.tracing._instrument import Instrumentation, instrument

__all__ = ["OtelSetup", "configure_from_env", "otel_from_env"]

_SUPPORTED_PROTOCOLS = ("http/protobuf",)
_EXPORTERS = ("otlp", "console", "none")


@dataclass(slots=True)
class OtelSetup:
    """The providers :func:`configure_from_env` built; ``shutdown()`` flushes and stops them."""

    tracer_provider: Any
    """An ``opentelemetry.sdk.trace.TracerProvider``."""
    meter_provider: Any
    """An ``opentelemetry.sdk.metrics.MeterProvider``."""
    traces_exporter: str
    metrics_exporter: str
    endpoint: str | None
    """The OTLP traces endpoint spans go to (None when traces are not exported over OTLP)."""

    def force_flush(self, timeout_millis: int = 10_000) -> None:
        """Export everything buffered now (spans are batched, metrics periodic)."""
        self.tracer_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop both providers (call it before the process exits)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _exporter_choice(var: str) -> str:
    value = os.environ.get(var, "otlp").strip().lower() or "otlp"
    if value not in _EXPORTERS:
        raise ConfigError(f"{var}={value!r} is not supported; use one of {', '.join(_EXPORTERS)}")
    return value


def _traces_endpoint() -> str:
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if explicit:
        return explicit
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"


def configure_from_env(*, service_name: str = "prehydrate", set_global: bool = True) -> OtelSetup:
    """Build SDK tracer and meter providers exporting over OTLP/HTTP, configured by ``OTEL_*`` variables.

    Args:
        service_name: ``service.name`` when neither ``OTEL_SERVICE_NAME`` nor
            ``OTEL_RESOURCE_ATTRIBUTES`` sets one.
        set_global: also install them as the global providers. Needed for the MCP SDK's own
            ``tools/call`` spans (its tracer follows the global provider), so prehydrate's spans
            nest under them.

    Returns:
        The :class:`OtelSetup`; pass its providers to :func:`instrument` and call ``shutdown()`` at exit.

    Raises:
        ConfigError: an unsupported exporter or OTLP protocol was requested.
    """
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    base_protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower() or "http/protobuf"
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"):
        protocol = os.environ.get(var, "").strip().lower() or base_protocol
        if protocol not in _SUPPORTED_PROTOCOLS:
            raise ConfigError(
                f"OTLP protocol {protocol!r} is not supported by prehydrate; set OTEL_EXPORTER_OTLP_PROTOCOL="
                "http/protobuf and point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (usually 4318)"
            )
    traces_exporter = _exporter_choice("OTEL_TRACES_EXPORTER")
    metrics_exporter = _exporter_choice("OTEL_METRICS_EXPORTER")

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "unknown_service")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    if SERVICE_VERSION not in resource.attributes:  # the environment may name the application's version
        resource = resource.merge(Resource({SERVICE_VERSION: __version__}))

    tracer_provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    endpoint: str | None = None
    if traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = _traces_endpoint()
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif traces_exporter == "console":
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))

    readers: list[MetricReader] = []
    metric_exporter: MetricExporter | None = None
    if metrics_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        metric_exporter = OTLPMetricExporter()
    elif metrics_exporter == "console":
        metric_exporter = ConsoleMetricExporter()
    if metric_exporter is not None:
        readers.append(PeriodicExportingMetricReader(metric_exporter))  # interval: OTEL_METRIC_EXPORT_INTERVAL
    # None lets the SDK read OTEL_METRICS_EXEMPLAR_FILTER; unset, we choose always_off (see above).
    exemplar_filter: ExemplarFilter | None = (
        None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip() else AlwaysOffExemplarFilter()
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, exemplar_filter=exemplar_filter)

    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return OtelSetup(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        traces_exporter=traces_exporter,
        metrics_exporter=metrics_exporter,
        endpoint=endpoint,
    )


@contextmanager
def otel_from_env(
    engine: Engine, *, service_name: str = "prehydrate", set_global: bool = True
) -> Iterator[Instrumentation]:
    """Configure OpenTelemetry from the environment and instrument ``engine`` for the block.

    The helper behind ``--otel`` in the CLI: on exit it detaches the instrumentation and shuts the
    providers down, which flushes buffered spans and metrics to the exporter. ``service_name`` and
    ``set_global`` are passed to :func:`configure_from_env`.

    Example:
        >>> import prehydrate as ph
        >>> from prehydrate.tracing import otel_from_env
        >>> engine = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())])
        >>> with otel_from_env(engine):  # doctest: +SKIP
        ...     ...  # serve or run the demo
    """
    setup = configure_from_env(service_name=service_name, set_global=set_global)
    handle = instrument(engine, setup.tracer_provider, setup.meter_provider)
    try:
        yield handle
    finally:
        handle.uninstrument()
        setup.shutdown()
