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
    for req in receiver.traces:
        for rs in req.resource_spans:
            name = as_dict(rs.resource.attributes)["service.name"]
            services.setdefault(name, set()).update(s.name for ss in rs.scope_spans for s in ss.spans)
    assert any(n.startswith("MCP send tools/call") for n in services["prehydrate-demo"])  # the MCP client's spans
    assert A.SPAN_LOOKUP in services["prehydrate-serve"]  # the engine's spans, from the servers
    assert A.SPAN_PREFETCH in services["prehydrate-serve"]  # only the prefetching server speculates
