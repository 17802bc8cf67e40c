"""``prehydrate demo --otel``: the client's and both servers' spans reach a real OTLP receiver on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

from prehydrate.tracing import attributes as A

from .conftest import Receiver, as_dict


def test_demo_otel_exports_client_and_server_spans(receiver: Receiver) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    proc = subprocess.run(
        [sys.executable, "-c", "from prehydrate.cli import main; main()", "demo", "--sessions", "2", "--speed", "0.05"]
        + ["--otel"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"traces to {receiver.url}/v1/traces" in proc.stderr
    services: dict[str, set[str]] = {}
    turn_ids: dict[str, set[str]] = {}
    for req in receiver.traces:
        for rs in req.resource_spans:
            resource = as_dict(rs.resource.attributes)
            name = resource["service.name"]
            if name == "prehydrate":  # a server: which one is in its resource
                name = f"prehydrate/{resource['prehydrate.demo.server']}"
                assert resource["service.instance.id"] == f"prehydrate-demo-{resource['prehydrate.demo.server']}"
            spans = [s for ss in rs.scope_spans for s in ss.spans]
            services.setdefault(name, set()).update(s.name for s in spans)
            turn_ids.setdefault(name, set()).update(
                str(as_dict(s.attributes)[A.PREHYDRATE_TURN_ID]) for s in spans if s.name == A.SPAN_TURN
            )
    assert any(n.startswith("MCP send tools/call") for n in services["prehydrate-demo"])  # the MCP client's spans
    assert "tools/call request_context" in services["prehydrate/without"]  # the servers' tool spans
    assert A.SPAN_PREFETCH in services["prehydrate/with"]  # only the prefetching server speculates
    assert A.SPAN_PREFETCH not in services["prehydrate/without"]
    assert turn_ids["prehydrate/with"] and turn_ids["prehydrate/without"]
    assert not turn_ids["prehydrate/with"] & turn_ids["prehydrate/without"]  # no turn id in both runs
