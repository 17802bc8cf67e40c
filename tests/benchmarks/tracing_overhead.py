"""What OpenTelemetry instrumentation costs on the hit path (a predicted section served from the warm cache).

Run: ``python tests/benchmarks/tracing_overhead.py [--calls 2000] [--rounds 15] [--mcp-calls 300] [--stdio-calls 500]``

Each round times ``--calls`` warm-cache hits through ``turn.request_context`` for every
configuration in turn (interleaved, so machine noise hits all of them alike) and reports the median
per-call time over rounds and the overhead against the uninstrumented engine. Time is the process's
CPU time (``time.process_time``: every thread, so the batch span processor's worker counts too),
which stays meaningful on a shared, loaded machine where wall time mostly measures the neighbours;
the wall-clock median is printed alongside.

- ``off``: no subscriber (the engine still builds its events; nobody listens).
- ``api-noop``: ``instrument(engine)`` with no SDK installed (the library default: API only).
- ``sdk``: an SDK TracerProvider with a BatchSpanProcessor (spans queued to an exporter that encodes
  them to OTLP protobuf and drops the bytes: the production shape minus the network) and an SDK
  MeterProvider with a reader and exemplars off, as ``configure_from_env`` builds it.
- ``sdk-unsampled``: the same with the ``always_off`` sampler (metrics still recorded).

``--mcp-calls`` repeats the ``off``/``sdk`` comparison through an in-memory MCP client calling a
minimal ``request_context`` tool, with the SDK installed globally in both arms so the MCP SDK's
own server span is there either way: only prehydrate's instrumentation differs.

``--stdio-calls`` measures the product path: real ``prehydrate serve`` subprocesses over stdio,
driven by the same MCP client, alternating every ``--stdio-block`` calls: two plain servers
(``off``), two ``--otel`` servers whose prehydrate instrumentation is replaced by nothing (``otel,
MCP SDK tracing only``: the MCP SDK's spans and their export, nothing of prehydrate's), and one
``--otel`` server (``otel``), all exporting to a loopback OTLP receiver that accepts and drops the
payloads. The cost is the *server* process's CPU time per call, every thread of it (the span
processor's exporting worker included), read from ``/proc/<pid>/task/*/schedstat``; the client's
and the receiver's work is not counted. The servers keep their defaults (re-prediction on), as a
user runs them. Identical servers differ by a few per cent, so each base is the mean of two, and
their rows show by how much. Two comparisons are made round by round (each round against the base
of the same round) and reported as the median with quartiles and range: the total cost of
``--otel`` against plain, and prehydrate's increment, ``otel`` against the SDK-only servers.

``--repredict`` keeps the engine's default re-prediction after every call (more work per call, so
a smaller relative overhead); by default it is off to isolate the lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import prehydrate as ph
from prehydrate.tracing import Instrumentation, instrument

SECTIONS = [f"kb/section-{i}" for i in range(50)]


class DropExporter(SpanExporter):
    """Encodes every batch as the OTLP exporter does (protobuf), then drops it: the pipeline minus the network."""

    def __init__(self) -> None:
        self.exported = 0
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        self.bytes += len(encode_spans(spans).SerializePartialToString())
        return SpanExportResult.SUCCESS


def make_engine(repredict: bool) -> ph.Engine:
    sections = [ph.Section(id=s, title=s, version="v1") for s in SECTIONS]
    source = ph.MockSource(lambda sid, scope: f"# {sid}\n" + "lorem ipsum " * 200, sections)
    return ph.Engine(sources=[source], policy=ph.PrefetchPolicy(top_n=0, repredict=repredict))


def sdk_providers(sampled: bool) -> tuple[TracerProvider, MeterProvider, DropExporter]:
    exporter = DropExporter()
    tp = TracerProvider(sampler=None if sampled else ALWAYS_OFF)
    # A queue that never overflows: a tight benchmark loop outruns the worker thread, and a dropped
    # span would be one whose encoding nobody paid for.
    tp.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 17))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()], exemplar_filter=AlwaysOffExemplarFilter())
    return tp, mp, exporter


Sample = tuple[float, float]
"""(CPU seconds per call, wall seconds per call)."""


async def hits(turn: ph.Turn, n: int, flush: Callable[[], object] | None = None) -> Sample:
    """Per-hit cost over ``n`` calls (every section is already warm).

    ``flush`` exports what the block queued before the clock stops, so that the encoding of one
    configuration's spans is not paid inside the next configuration's block.
    """
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        await turn.request_context(SECTIONS[i % len(SECTIONS)])
    if flush is not None:
        flush()
    return (time.process_time() - c0) / n, (time.perf_counter() - t0) / n


def summarize(samples: dict[str, list[Sample]], *base: str) -> list[dict[str, Any]]:
    """Median per configuration, and overhead against the mean of the ``base`` configurations' medians."""
    base_cpu = statistics.fmean(statistics.median(c for c, _ in samples[b]) for b in base)
    base_wall = statistics.fmean(statistics.median(w for _, w in samples[b]) for b in base)
    rows = []
    for name, vals in samples.items():
        cpu = statistics.median(c for c, _ in vals)
        wall = statistics.median(w for _, w in vals)
        rows.append(
            {
                "config": name,
                "cpu_us_per_call": round(cpu * 1e6, 2),
                "overhead_cpu_us": round((cpu - base_cpu) * 1e6, 2),
                "overhead_pct": round((cpu / base_cpu - 1) * 100, 1),
                "wall_us_per_call": round(wall * 1e6, 2),
                "overhead_wall_pct": round((wall / base_wall - 1) * 100, 1),
            }
        )
    return rows


async def engine_path(calls: int, rounds: int, repredict: bool) -> list[dict[str, Any]]:
    engine = make_engine(repredict)
    sdk = sdk_providers(sampled=True)
    unsampled = sdk_providers(sampled=False)
    configs: dict[str, tuple[Callable[[], Instrumentation | None], Callable[[], object] | None]] = {
        "off": (lambda: None, None),
        "api-noop": (lambda: instrument(engine, trace.NoOpTracerProvider(), None), None),
        "sdk": (lambda: instrument(engine, sdk[0], sdk[1]), sdk[0].force_flush),
        "sdk-unsampled": (lambda: instrument(engine, unsampled[0], unsampled[1]), unsampled[0].force_flush),
    }
    samples: dict[str, list[Sample]] = {k: [] for k in configs}
    async with engine, engine.session("bench") as session:
        turn = await session.turn(query="q", expect=[]).start()
        for sid in SECTIONS:  # warm every section (misses), then only hits are timed
            await turn.request_context(sid)
        await hits(turn, calls)  # warm-up
        for _ in range(rounds):
            for name, (make, flush) in configs.items():
                handle = make()
                samples[name].append(await hits(turn, calls, flush))
                if handle is not None:
                    handle.uninstrument()
            turn.calls.clear()  # keep the turn's bookkeeping from growing across rounds
            turn.results.clear()
        await turn.end()
    for tp, mp, _ in (sdk, unsampled):
        tp.shutdown()
        mp.shutdown()
    assert sdk[2].exported >= rounds * calls, "the sdk arm must really have exported every span"
    return summarize(samples, "off")


async def mcp_path(calls: int, rounds: int) -> list[dict[str, Any]]:
    from mcp import Client
    from mcp.server.mcpserver import MCPServer

    tp, mp, exporter = sdk_providers(sampled=True)
    trace.set_tracer_provider(tp)  # the MCP SDK's spans follow the global provider: on in both arms
    engine = make_engine(repredict=False)
    samples: dict[str, list[Sample]] = {"off": [], "sdk": []}
    async with engine, engine.session("bench-mcp") as session:
        turn = await session.turn(query="q", expect=[]).start()
        for sid in SECTIONS:
            await turn.request_context(sid)
        server: MCPServer[Any] = MCPServer("bench")

        @server.tool()
        async def request_context(section: str) -> dict[str, str]:
            r = await turn.request_context(section)
            return {"section": r.section_id, "outcome": r.outcome}

        async with Client(server) as client:

            async def run(n: int) -> Sample:
                c0, t0 = time.process_time(), time.perf_counter()
                for i in range(n):
                    await client.call_tool("request_context", {"section": SECTIONS[i % len(SECTIONS)]})
                tp.force_flush()  # both arms export the MCP SDK's spans; the sdk arm also prehydrate's
                return (time.process_time() - c0) / n, (time.perf_counter() - t0) / n

            await run(calls)
            for _ in range(rounds):
                samples["off"].append(await run(calls))
                with instrument(engine, tp, mp):
                    samples["sdk"].append(await run(calls))
                turn.calls.clear()
                turn.results.clear()
        await turn.end()
    tp.force_flush()  # the global provider stays installed (a later arm's client spans still go there)
    mp.shutdown()
    return summarize(samples, "off")


def _children_serving() -> list[int]:
    """Pids of this process's children whose command line runs ``serve`` (Linux ``/proc``)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == me and b"serve" in cmdline:
            found.append(int(entry))
    return found


def _cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid``, alive now (``/proc/<pid>/task/*/schedstat``, nanoseconds).

    Per thread rather than the process's ``stat`` line, whose clock ticks (10 ms) are too coarse
    for blocks of a few dozen calls. A thread that has exited is no longer counted, which does
    not happen here: the server's threads (stdio readers, span processor, metric reader) live as
    long as the process.
    """
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except OSError:  # the thread ended between listdir and open
            continue
    return total / 1e9


class _DropReceiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing."""

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


PLAIN = ("off", "off, second server")
SDK_ONLY = ("otel, MCP SDK tracing only", "otel, MCP SDK tracing only, second server")
OTEL = "otel"

_SERVE = "from prehydrate.cli import main; main()"
_SERVE_SDK_ONLY = (
    "import prehydrate.tracing as t\n"
    "class _Off:\n"
    "    def uninstrument(self): pass\n"
    "t.instrument = lambda *a, **k: _Off()\n" + _SERVE
)
"""``serve --otel`` with prehydrate's own instrumentation replaced by nothing: what remains is the
MCP SDK's tracing (its ``tools/call`` span and its export). The base of prehydrate's increment."""


async def stdio_path(calls: int, rounds: int, block: int) -> list[dict[str, Any]]:
    from contextlib import AsyncExitStack

    from mcp import Client, StdioServerParameters

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _DropReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}"
    ids = ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog.ids[:20]
    env["PYTHONHASHSEED"] = "0"  # one hash seed for every server: less process-to-process spread
    arms_argv = {
        PLAIN[0]: [_SERVE, "serve", "--no-record"],
        PLAIN[1]: [_SERVE, "serve", "--no-record"],
        SDK_ONLY[0]: [_SERVE_SDK_ONLY, "serve", "--no-record", "--otel"],
        SDK_ONLY[1]: [_SERVE_SDK_ONLY, "serve", "--no-record", "--otel"],
        OTEL: [_SERVE, "serve", "--no-record", "--otel"],
    }
    samples: dict[str, list[Sample]] = {name: [] for name in arms_argv}
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as home:
            env["PREHYDRATE_HOME"] = home
            async with AsyncExitStack() as stack:
                arms: dict[str, tuple[Any, int]] = {}
                for name, argv in arms_argv.items():
                    before = set(_children_serving())
                    params = StdioServerParameters(command=sys.executable, args=["-c", *argv], env=env)
                    client = await stack.enter_async_context(Client(params))
                    (pid,) = [p for p in _children_serving() if p not in before]
                    arms[name] = (client, pid)
                for client, _ in arms.values():  # warm every section: later calls are hits
                    for sid in ids * 2:
                        await client.call_tool("request_context", {"section": sid})
                for _ in range(rounds):
                    # Each round gives every arm `calls` calls, alternating between the arms every
                    # `block` calls (in reverse order every other time), so that a neighbour's burst
                    # or the servers' growing turn state hits all arms alike.
                    cpu = dict.fromkeys(arms, 0.0)
                    wall = dict.fromkeys(arms, 0.0)
                    for b in range(0, calls, block):
                        order = list(arms.items()) if (b // block) % 2 == 0 else list(reversed(arms.items()))
                        for name, (client, pid) in order:
                            n = min(block, calls - b)
                            c0, t0 = _cpu_seconds(pid), time.perf_counter()
                            for i in range(b, b + n):
                                await client.call_tool("request_context", {"section": ids[i % len(ids)]})
                            wall[name] += time.perf_counter() - t0
                            cpu[name] += _cpu_seconds(pid) - c0
                    for name in arms:
                        samples[name].append((cpu[name] / calls, wall[name] / calls))
    finally:
        receiver.shutdown()
        receiver.server_close()
    return stdio_rows(samples)


def stdio_rows(samples: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    """Per-server medians, then the round-by-round comparisons the docs report."""
    # Two identical servers differ by a few per cent (their own heap layout), as much as a whole
    # run's noise: each base is the mean of two, and their rows show the spread.
    rows = summarize(samples, *PLAIN)
    rows.append(paired(samples, (OTEL,), PLAIN, "`--otel` (all of it) vs plain"))
    rows.append(paired(samples, (OTEL,), SDK_ONLY, "prehydrate's increment: `--otel` vs MCP SDK tracing only"))
    rows.append(paired(samples, SDK_ONLY, PLAIN, "MCP SDK tracing only vs plain"))
    return rows


def paired(samples: dict[str, list[Sample]], arm: Sequence[str], base: Sequence[str], label: str) -> dict[str, Any]:
    """The mean of ``arm`` against the mean of ``base``, round by round (same round, same machine state)."""
    ratios = []
    for r in range(len(samples[base[0]])):
        cpu = statistics.fmean(samples[a][r][0] for a in arm)
        ref = statistics.fmean(samples[b][r][0] for b in base)
        ratios.append((cpu / ref - 1) * 100)
    ratios.sort()
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else (ratios[0], 0.0, ratios[0])
    return {
        "config": label,
        "rounds": len(ratios),
        "median_pct": round(statistics.median(ratios), 1),
        "q1_pct": round(q1, 1),
        "q3_pct": round(q3, 1),
        "min_pct": round(ratios[0], 1),
        "max_pct": round(ratios[-1], 1),
    }


def table(title: str, rows: list[dict[str, Any]]) -> str:
    out = [
        title,
        "| config | CPU µs/call | added µs | overhead (CPU) | wall µs/call | overhead (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "median_pct" in r:
            continue
        out.append(
            f"| {r['config']} | {r['cpu_us_per_call']} | {r['overhead_cpu_us']:+.1f} | {r['overhead_pct']:+.1f}% "
            f"| {r['wall_us_per_call']} | {r['overhead_wall_pct']:+.1f}% |"
        )
    paired_rows = [r for r in rows if "median_pct" in r]
    if paired_rows:
        out += ["", "| per round, against the base of the same round | rounds | median | quartiles | min to max |"]
        out.append("|---|---|---|---|---|")
        for r in paired_rows:
            out.append(
                f"| {r['config']} | {r['rounds']} | {r['median_pct']:+.1f}% "
                f"| {r['q1_pct']:+.1f} to {r['q3_pct']:+.1f}% | {r['min_pct']:+.1f} to {r['max_pct']:+.1f}% |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="hits per timed block")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds per configuration")
    ap.add_argument("--mcp-calls", type=int, default=300, help="MCP calls per block (0 skips the MCP path)")
    ap.add_argument(
        "--stdio-calls",
        type=int,
        default=0,
        help="calls per arm and round through real `prehydrate serve` subprocesses",
    )
    ap.add_argument("--stdio-block", type=int, default=50, help="stdio arms alternate every this many calls")
    ap.add_argument("--repredict", action="store_true", help="re-predict after every call (engine default)")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of tables")
    args = ap.parse_args()
    engine_rows = asyncio.run(engine_path(args.calls, args.rounds, args.repredict))
    mcp_rows = asyncio.run(mcp_path(args.mcp_calls, args.rounds)) if args.mcp_calls else []
    stdio_rows = asyncio.run(stdio_path(args.stdio_calls, args.rounds, args.stdio_block)) if args.stdio_calls else []
    if args.json:
        for r in engine_rows:
            print(json.dumps({"path": "engine", **r}))
        for r in mcp_rows:
            print(json.dumps({"path": "mcp-in-memory", **r}))
        for r in stdio_rows:
            print(json.dumps({"path": "serve-stdio", **r}))
        return
    print(
        table(f"engine hit path ({args.calls} calls x {args.rounds} rounds, repredict={args.repredict})", engine_rows)
    )
    if mcp_rows:
        print()
        print(table(f"MCP in-memory hit path ({args.mcp_calls} calls x {args.rounds} rounds)", mcp_rows))
    if stdio_rows:
        print()
        title = f"`prehydrate serve` over stdio, server CPU ({args.stdio_calls} calls x {args.rounds} rounds)"
        print(table(title, stdio_rows))


if __name__ == "__main__":
    main()
