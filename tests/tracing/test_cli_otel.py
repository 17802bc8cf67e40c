"""``--otel`` in the CLI: ``otel_telemetry`` installs the SDK from ``OTEL_*`` variables and flushes at exit.

It sets the *global* providers (so the MCP SDK's spans are exported too), which can happen once per
process, so each case runs in a fresh interpreter against the loopback receiver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mcp import Client, StdioServerParameters
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import prehydrate as ph
from prehydrate.tracing import attributes as A

from .conftest import Receiver, as_dict

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import gc
    import sys
    import prehydrate as ph
    from prehydrate.cli._otel import otel_telemetry

    async def main(engine):
        async with engine, engine.session("cli-1") as session:
            async with session.turn(query="q", expect=["a"]) as turn:
                await turn.prefetches[0].task
                await turn.request_context("a")
        print("frozen while serving:", gc.get_freeze_count(), file=sys.stderr)

    engine = ph.Engine(sources=[ph.MockSource(lambda sid, scope: "text " + sid, ["a", "b"])])
    with otel_telemetry(engine, True, service_name="prehydrate-cli-test"):
        asyncio.run(main(engine))
    print("frozen after:", gc.get_freeze_count(), file=sys.stderr)
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
    # The startup heap is frozen while serving (full collections skip it) and given back after.
    frozen = dict(line.split(": ") for line in proc.stderr.splitlines() if line.startswith("frozen "))
    assert int(frozen["frozen while serving"]) > 10_000 and frozen["frozen after"] == "0"
    names = {
        m.name for req in receiver.metrics for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert A.METRIC_LOOKUPS in names


def test_unsupported_protocol_is_reported_not_ignored(receiver: Receiver) -> None:
    proc = run({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert proc.returncode != 0
    assert "ConfigError" in proc.stderr and "http/protobuf" in proc.stderr
    assert receiver.traces == []


async def test_serve_otel_over_stdio_records_each_call_on_the_mcp_server_span(
    receiver: Receiver, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """``prehydrate serve --otel``: a real stdio subprocess exports its spans to the receiver.

    The client in this process runs under the global SDK provider, so the SDK propagates the trace
    context in ``_meta``: the subprocess's ``tools/call`` server span joins the client's trace, and
    carries prehydrate's attributes itself (no second ``execute_tool`` span).
    """
    ids = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog.ids
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PREHYDRATE_"))}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "PREHYDRATE_HOME": str(tmp_path)}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from prehydrate.cli import main; main()", "serve", "--otel", "--no-record"],
        env=env,
    )
    async with Client(params, mode="legacy") as client:
        for section in (ids[0], ids[5], "no/such-section"):
            await client.call_tool("request_context", {"section": section})
        await client.call_tool("request_context", {})  # refused before the engine
    # The server flushes when stdin closes; the client has waited for the process to exit.
    spans = [s for req in receiver.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    servers = [s for s in spans if s.name == "tools/call request_context"]
    assert len(servers) == 4
    assert not [s for s in spans if s.name == A.SPAN_LOOKUP]  # the SDK's span is the tool span
    tool_spans = [s for s in spans if as_dict(s.attributes).get(A.GEN_AI_OPERATION_NAME) == A.OPERATION_EXECUTE_TOOL]
    assert len(tool_spans) == 4
    results = [as_dict(s.attributes).get(A.PREHYDRATE_CACHE_RESULT, "error") for s in servers]
    assert results[2:] == ["error", "error"] and set(results[:2]) <= {"hit", "inflight", "miss"}
    for span in servers[2:]:
        assert span.status.code == span.status.STATUS_CODE_ERROR
    resources = [as_dict(rs.resource.attributes) for r in receiver.traces for rs in r.resource_spans]
    assert {r["service.name"] for r in resources} == {"prehydrate"}  # as docs/tracing.md says
    assert {r["service.version"] for r in resources} == {ph.__version__}
    clients = {s.context.span_id: s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT}
    for server_span in servers:  # joined across the process boundary
        client_span = clients[int.from_bytes(server_span.parent_span_id, "big")]
        assert int.from_bytes(server_span.trace_id, "big") == client_span.context.trace_id
