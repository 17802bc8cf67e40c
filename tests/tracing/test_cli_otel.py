"""``--otel`` in the CLI: ``otel_telemetry`` installs the SDK from ``OTEL_*`` variables and flushes at exit.

It sets the *global* providers (so the MCP SDK's spans are exported too), which can happen once per
process, so each case runs in a fresh interpreter against the loopback receiver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from prehydrate.tracing import attributes as A

from .conftest import Receiver, as_dict

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import prehydrate as ph
    from prehydrate.cli._otel import otel_telemetry

    async def main(engine):
        async with engine, engine.session("cli-1") as session:
            async with session.turn(query="q", expect=["a"]) as turn:
                await turn.prefetches[0].task
                await turn.request_context("a")

    engine = ph.Engine(sources=[ph.MockSource(lambda sid, scope: "text " + sid, ["a", "b"])])
    with otel_telemetry(engine, True, service_name="prehydrate-cli-test"):
        asyncio.run(main(engine))
    """
)


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_otel_flag_exports_spans_and_metrics_and_reports_where(receiver: Receiver) -> None:
    proc = run({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert proc.returncode == 0, proc.stderr
    assert f"traces to {receiver.url}/v1/traces" in proc.stderr
    assert proc.stdout == ""  # stdout stays clean for the MCP stdio transport
    spans = [s for req in receiver.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(s.name for s in spans) == sorted([A.SPAN_LOOKUP, A.SPAN_PREFETCH, A.SPAN_TURN])
    for req in receiver.traces:
        for rs in req.resource_spans:
            assert as_dict(rs.resource.attributes)["service.name"] == "prehydrate-cli-test"
    (lookup,) = [s for s in spans if s.name == A.SPAN_LOOKUP]
    assert as_dict(lookup.attributes)[A.PREHYDRATE_CACHE_RESULT] == "hit"
    names = {
        m.name for req in receiver.metrics for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert A.METRIC_LOOKUPS in names


def test_unsupported_protocol_is_reported_not_ignored(receiver: Receiver) -> None:
    proc = run({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert proc.returncode != 0
    assert "ConfigError" in proc.stderr and "http/protobuf" in proc.stderr
    assert receiver.traces == []
