"""Export over OTLP/HTTP to a real receiver on loopback, configured only through ``OTEL_*`` variables."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import prehydrate as ph
from prehydrate.tracing import attributes as A
from prehydrate.tracing import configure_from_env, instrument, otel_from_env

from .conftest import Receiver, as_dict, corpus


async def run_turn(engine: ph.Engine) -> None:
    async with engine.session("otlp-1", tenant="acme") as session:
        async with session.turn(query="q", expect=["a", "slow"]) as turn:
            for rec in turn.prefetches:
                if rec.section_id == "a" and rec.task is not None:
                    await rec.task
            await turn.request_context("a", tool_call_id="call_7")
            await turn.request_context("c")


async def test_spans_and_metrics_reach_an_otlp_http_receiver(
    engine: ph.Engine, receiver: Receiver, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    clean_env.setenv("OTEL_SERVICE_NAME", "prehydrate-otlp-test")
    clean_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=s3cret")
    clean_env.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    setup = configure_from_env(set_global=False)
    assert setup.endpoint == receiver.url + "/v1/traces"
    with instrument(engine, setup.tracer_provider, setup.meter_provider):
        await run_turn(engine)
    setup.shutdown()  # flushes the batch span processor and the periodic metric reader

    spans = []
    for req in receiver.traces:
        for rs in req.resource_spans:
            assert as_dict(rs.resource.attributes)["service.name"] == "prehydrate-otlp-test"
            for ss in rs.scope_spans:
                assert ss.scope.name == "prehydrate"
                spans.extend(ss.spans)
    names = sorted(s.name for s in spans)
    assert names == sorted([A.SPAN_TURN, A.SPAN_PREFETCH, A.SPAN_PREFETCH, A.SPAN_LOOKUP, A.SPAN_LOOKUP])
    lookups = [as_dict(s.attributes) for s in spans if s.name == A.SPAN_LOOKUP]
    assert [(a[A.PREHYDRATE_SECTION_ID], a[A.PREHYDRATE_CACHE_RESULT]) for a in lookups] == [
        ("a", "hit"),
        ("c", "miss"),
    ]
    assert lookups[0][A.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert lookups[0][A.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert lookups[0][A.PREHYDRATE_TENANT] == "acme"
    assert lookups[0][A.PREHYDRATE_PREFETCH_LEAD_TIME] >= 0.0
    (turn_span,) = [s for s in spans if s.name == A.SPAN_TURN]
    turn_attrs = as_dict(turn_span.attributes)
    assert (turn_attrs[A.PREHYDRATE_TURN_HITS], turn_attrs[A.PREHYDRATE_TURN_MISSES]) == (1, 1)
    assert turn_attrs[A.PREHYDRATE_TURN_CANCELLED] == 1
    outcomes = sorted(as_dict(s.attributes)[A.PREHYDRATE_PREFETCH_OUTCOME] for s in spans if s.name == A.SPAN_PREFETCH)
    assert outcomes == ["cancelled", "used"]
    for s in spans:
        if s.name != A.SPAN_TURN:
            assert s.parent_span_id == turn_span.span_id
    assert all(h.get("x-honeycomb-team") == "s3cret" for h in receiver.headers)
    assert all(h.get("content-encoding") == "gzip" for h in receiver.headers)

    metric_names = {
        m.name for req in receiver.metrics for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert {A.METRIC_LOOKUPS, A.METRIC_PREFETCHES, A.METRIC_LOOKUP_WAIT, A.METRIC_HYDRATED} <= metric_names


async def test_otel_from_env_flushes_on_exit_and_signal_endpoints_win(
    engine: ph.Engine, receiver: Receiver, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be used
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url + "/v1/traces")
    clean_env.setenv("OTEL_METRICS_EXPORTER", "none")
    with otel_from_env(engine, service_name="prehydrate-cli", set_global=False) as handle:
        await run_turn(engine)
        assert handle.open_spans == 0
    assert receiver.metrics == []
    (req,) = receiver.traces
    (rs,) = req.resource_spans
    assert as_dict(rs.resource.attributes)["service.name"] == "prehydrate-cli"
    assert sum(len(ss.spans) for ss in rs.scope_spans) == 5


@pytest.mark.parametrize(
    ("var", "val"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
    ],
)
def test_unsupported_settings_are_config_errors(clean_env: pytest.MonkeyPatch, var: str, val: str) -> None:
    clean_env.setenv(var, val)
    with pytest.raises(ph.ConfigError, match=val):
        configure_from_env(set_global=False)


def test_exporters_can_be_switched_off(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_TRACES_EXPORTER", "none")
    clean_env.setenv("OTEL_METRICS_EXPORTER", "none")
    clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=test")
    setup = configure_from_env(set_global=False)
    assert setup.endpoint is None and setup.traces_exporter == "none"
    assert setup.tracer_provider.resource.attributes["service.name"] == "from-attrs"
    setup.shutdown()


@pytest.mark.parametrize(("setting", "expect_exemplars"), [(None, False), ("trace_based", True)])
async def test_exemplars_are_off_unless_the_environment_asks(
    clean_env: pytest.MonkeyPatch, setting: str | None, expect_exemplars: bool
) -> None:
    """Every hit records the wait histogram inside a sampled span, so the SDK's default
    ``trace_based`` filter would take an exemplar on each call; ``configure_from_env`` turns them off
    unless ``OTEL_METRICS_EXEMPLAR_FILTER`` says otherwise, and then the SDK's own choice applies."""
    clean_env.setenv("OTEL_TRACES_EXPORTER", "none")
    clean_env.setenv("OTEL_METRICS_EXPORTER", "none")
    if setting is not None:
        clean_env.setenv("OTEL_METRICS_EXEMPLAR_FILTER", setting)
    setup = configure_from_env(set_global=False)
    reader = InMemoryMetricReader()
    setup.meter_provider.add_metric_reader(reader)
    texts = corpus(["a"])
    engine = ph.Engine(sources=[ph.MockSource(lambda sid, scope: texts[sid], list(texts))])
    tracer = setup.tracer_provider.get_tracer("test")
    try:
        with instrument(engine, setup.tracer_provider, setup.meter_provider):
            async with engine, engine.session("ex-1") as session:
                async with session.turn(query="q", expect=[]) as turn:
                    with tracer.start_as_current_span("caller"):  # sampled: the default sampler keeps it
                        await turn.request_context("a")
                        await turn.request_context("a")
        data = reader.get_metrics_data()
        assert data is not None
        (wait,) = [
            m
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == A.METRIC_LOOKUP_WAIT
        ]
        points = list(wait.data.data_points)
        assert sum(p.count for p in points) == 2  # both calls were measured either way
        assert any(p.exemplars for p in points) is expect_exemplars
    finally:
        setup.shutdown()
