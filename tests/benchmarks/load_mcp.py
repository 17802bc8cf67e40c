"""Load: N concurrent MCP sessions against `prehydrate serve --transport http` on loopback.

Run: ``python tests/benchmarks/load_mcp.py [--sessions 200] [--duration 60] [--json out.json]``
Burst: ``python tests/benchmarks/load_mcp.py --burst 10000 [--burst-connections 1000] [--json out.json]``

The script generates a Markdown corpus larger than the server's memory tier, starts the real
command line (``prehydrate serve DIR --transport http --tokens FILE``) as a subprocess, and drives
it with ``--sessions`` MCP clients over streamable HTTP, each with a bearer token of one of
``--tenants`` tenants and its own session (``_meta["prehydrate/session"]``). A session reads the
corpus like an agent does: mostly the next section in document order (which the server predicts
and prefetches), sometimes a jump elsewhere (a miss), sometimes the same section again, with
``--think-ms`` of model time between calls. It stops by itself after ``--duration`` seconds or
``--max-requests`` calls, whichever comes first.

Measured: client-observed latency of each call (p50/p95, split by the outcome the server reported:
hit, inflight, miss), the server's own wait, errors (tool errors, exceptions, wrong content), and
the server's resident memory (RSS, sampled every 0.2 s from /proc) against the configured memory
tier bound plus a fixed overhead.

``--burst N`` measures admission control instead: after the warm-up it fires N tool calls at once
over ``--burst-connections`` connections (each call a different section, so most are misses), then
waits ``--settle`` seconds and reports the server's RSS before, at its peak and after, with how many
calls were answered, refused as busy (the server's bound on tool calls in progress), refused with
``503`` (the HTTP concurrency limit) or failed. The goal: RSS after the burst within 20% of before.

On a machine shared with other jobs, latencies measure the queue for a CPU more than prehydrate.
``chrt -f 10 python tests/benchmarks/load_mcp.py`` (root) runs the server and the load generator
ahead of the other jobs, which is how the numbers in docs/reliability.md were taken; the result
records the scheduler and the load average before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MEMORY_TIER_BYTES = 64 << 20
"""The memory tier bound of ``prehydrate serve`` (``build_engine(memory_bytes=...)`` default)."""

FIXED_OVERHEAD_BYTES = 96 << 20
"""Allowed RSS growth on top of the memory tier: sessions, HTTP buffers, allocator slack."""

SERVE = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve"]


@dataclass(slots=True, kw_only=True)
class LoadConfig:
    """One load run."""

    sessions: int = 200
    duration_s: float = 60.0
    max_requests: int = 40_000
    tenants: int = 4
    files: int = 150
    sections_per_file: int = 20
    section_bytes: int = 6000
    think_ms: tuple[float, float] = (1000.0, 3000.0)
    """Model time between a session's calls, uniform in this range (recorded traces: p50 0.6 s, p90 1.8 s)."""
    warmup_s: float = 5.0
    """Calls in the first seconds (clients connecting) count for errors but not for latency."""
    jump_p: float = 0.15
    repeat_p: float = 0.1
    seed: int = 1
    session_meta: bool = True
    """Name each session in ``_meta``; without it the server keys sessions on the token's principal."""
    client: str = "raw"
    """``raw``: the lean JSON-RPC client (measures the server); ``mcp``: the MCP SDK's ``Client``."""


@dataclass(slots=True)
class Stats:
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"hit": [], "inflight": [], "miss": []})
    server_wait_ms: dict[str, list[float]] = field(default_factory=lambda: {"hit": [], "inflight": [], "miss": []})
    errors: list[str] = field(default_factory=list)
    wrong: int = 0
    requests: int = 0
    answered: int = 0
    rss: list[int] = field(default_factory=list)
    measure_from: float = 0.0
    """``perf_counter`` time from which latencies are recorded (after the warm-up)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_corpus(root: Path, cfg: LoadConfig) -> list[str]:
    """Write the Markdown corpus; returns the section ids in document order."""
    rng = random.Random(cfg.seed)
    words = ["refund", "invoice", "ledger", "policy", "retry", "quota", "tenant", "region", "audit", "token"]
    ids: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    for f in range(cfg.files):
        parts = []
        for s in range(cfg.sections_per_file):
            sid = f"part{f:03d}" if s == 0 else f"part{f:03d}#topic-{f}-{s}"  # a file's first section: its id
            body = " ".join(rng.choice(words) for _ in range(cfg.section_bytes // 7))
            parts.append(f"## Topic {f}-{s}\n\n[{sid}] {body}\n")
            ids.append(sid)
        (root / f"part{f:03d}.md").write_text("\n".join(parts), encoding="utf-8")
    return ids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def serve(workdir: Path, corpus: Path, tokens: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``prehydrate serve CORPUS --transport http --tokens FILE`` on a free loopback port."""
    port = free_port()
    token_file = workdir / "tokens.json"
    token_file.write_text(json.dumps(tokens), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PREHYDRATE_TOKENS"}
    env["PREHYDRATE_HOME"] = str(workdir / "home")
    log = (workdir / "server.log").open("wb")
    argv = [*SERVE, str(corpus), "--transport", "http", "--port", str(port), "--tokens", str(token_file)]
    proc = subprocess.Popen([*argv, "--no-record"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{(workdir / 'server.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not open its port within 120 s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


PROTOCOL = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "load_mcp", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class RawSession:
    """A lean MCP client for the load generator: JSON-RPC over streamable HTTP with ``httpx``.

    It speaks the 2026-07-28 protocol the way the SDK's ``Client`` does by default (a stateless
    envelope in every request's ``_meta``, ``server/discover`` first, plain JSON replies) but skips
    the SDK's per-call machinery, so the load generator, which shares the cores with the server,
    stays cheap.
    """

    def __init__(self, http: Any, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "mcp-protocol-version": PROTOCOL,
        }
        self.ids = 0

    async def _request(self, method: str, params: dict[str, Any], **headers: str) -> dict[str, Any]:
        self.ids += 1
        meta = {**params.pop("_meta", {}), **ENVELOPE}
        body = {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": {"_meta": meta, **params}}
        response = await self.http.post(
            self.url, content=json.dumps(body), headers={**self.headers, "mcp-method": method, **headers}
        )
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:") and json.loads(line[5:]).get("id") == self.ids:
                    return json.loads(line[5:])  # type: ignore[no-any-return]
            raise RuntimeError(f"no response to request {self.ids} in the event stream")
        return response.json()  # type: ignore[no-any-return]

    async def open(self) -> None:
        reply = await self._request("server/discover", {})
        if "error" in reply:
            raise RuntimeError(f"server/discover failed: {reply['error']}")

    async def call(self, section: str, meta: dict[str, str]) -> tuple[bool, dict[str, Any] | None, str]:
        params = {"name": "request_context", "arguments": {"section": section}, "_meta": dict(meta)}
        msg = await self._request("tools/call", params, **{"mcp-name": "request_context"})
        if "error" in msg:
            return True, None, str(msg["error"])[:200]
        result = msg["result"]
        text = " ".join(c.get("text", "") for c in result.get("content", []))[:200]
        return bool(result.get("isError")), result.get("structuredContent"), text

    async def close(self) -> None:
        return None


@asynccontextmanager
async def open_caller(client: str, url: str, token: str) -> AsyncIterator[Any]:
    """A ``call(section, meta) -> (is_error, structured, text)`` for one session, with either client."""
    if client == "raw":
        import httpx

        # One connection per session, as separate agents have. Idle connections are dropped well
        # before uvicorn's 5 s keep-alive timeout, so a reused connection is never one being closed.
        limits = httpx.Limits(max_connections=1, keepalive_expiry=2.0)
        async with httpx.AsyncClient(limits=limits, timeout=120) as own:
            session = RawSession(own, url, token)
            await session.open()
            yield session.call
        return
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    sdk_http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with sdk_http, Client(streamable_http_client(url, http_client=sdk_http)) as mcp_client:

        async def call(section: str, meta: dict[str, str]) -> tuple[bool, dict[str, Any] | None, str]:
            result = await mcp_client.call_tool("request_context", {"section": section}, meta=meta)  # type: ignore[arg-type]
            text = " ".join(getattr(c, "text", "") for c in result.content)[:200]
            return result.is_error, result.structured_content, text

        yield call


async def one_session(
    n: int, url: str, token: str, ids: list[str], cfg: LoadConfig, stats: Stats, stop: asyncio.Event
) -> None:
    rng = random.Random(cfg.seed * 1_000_003 + n)
    meta = {"prehydrate/session": f"load-{n}"} if cfg.session_meta else {}
    start = rng.randrange(len(ids))
    await asyncio.sleep(rng.uniform(0, cfg.warmup_s))  # stagger the starts over the warm-up

    async def loop(call: Any) -> None:
        pos = start
        while not stop.is_set():
            if stats.requests >= cfg.max_requests:
                stop.set()
                break
            stats.requests += 1
            sid = ids[pos]
            t0 = time.perf_counter()
            try:
                is_error, out, text = await call(sid, meta)
            except Exception as exc:  # counted, never fatal: the run reports every error
                stats.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                ms = (time.perf_counter() - t0) * 1000
                if is_error or out is None:
                    stats.errors.append(text or "empty error")
                else:
                    outcome = out["outcome"]
                    stats.answered += 1
                    if t0 >= stats.measure_from:
                        stats.latency_ms[outcome].append(ms)
                        stats.server_wait_ms[outcome].append(float(out["waited_ms"]))
                    if out["section"] != sid or f"[{sid}]" not in out["content"]:
                        stats.wrong += 1
            r = rng.random()
            if r < cfg.jump_p:
                pos = rng.randrange(len(ids))
            elif r >= cfg.jump_p + cfg.repeat_p:
                pos = (pos + 1) % len(ids)
            try:
                await asyncio.wait_for(stop.wait(), rng.uniform(*cfg.think_ms) / 1000)
            except TimeoutError:
                pass

    try:
        async with open_caller(cfg.client, url, token) as call:
            await loop(call)
    except Exception as exc:  # a session that cannot connect or is cut off counts as an error
        stats.errors.append(f"session {n}: {type(exc).__name__}: {exc}")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))], 2)


async def run_load(cfg: LoadConfig, workdir: Path | None = None) -> dict[str, Any]:
    """Start the server, drive it, stop it; returns the measurements (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="prehydrate-load-") as tmp:
        work = workdir or Path(tmp)
        ids = make_corpus(work / "corpus", cfg)
        tokens = {f"load-token-{t:02d}-0123456789abcdef": f"tenant-{t}" for t in range(cfg.tenants)}
        token_list = list(tokens)
        stats = Stats()
        with serve(work, work / "corpus", tokens) as (url, proc):
            # Warm-up: one call per tenant; the server's RSS after it is the baseline.
            warm_cfg = LoadConfig(**{**asdict(cfg), "max_requests": 1, "think_ms": (0.0, 0.0), "warmup_s": 0.0})
            for t in range(cfg.tenants):
                warm = Stats()
                await one_session(-1 - t, url, token_list[t], ids, warm_cfg, warm, asyncio.Event())
                if warm.errors:
                    raise RuntimeError(f"warm-up call failed: {warm.errors[0]}")
            baseline = rss_bytes(proc.pid)
            stop = asyncio.Event()

            async def sample_rss() -> None:
                while not stop.is_set():
                    stats.rss.append(rss_bytes(proc.pid))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample_rss())
            load_before = os.getloadavg()[0]
            server_cpu0, client_cpu0 = cpu_seconds(proc.pid), time.process_time()
            t0 = time.perf_counter()
            stats.measure_from = t0 + cfg.warmup_s
            sessions = [
                asyncio.create_task(one_session(n, url, token_list[n % cfg.tenants], ids, cfg, stats, stop))
                for n in range(cfg.sessions)
            ]
            try:
                done, _ = await asyncio.wait(sessions, timeout=cfg.duration_s)
                if len(done) < len(sessions):
                    stop.set()
                await asyncio.gather(*sessions, return_exceptions=False)
            finally:
                stop.set()
                for task in sessions:
                    task.cancel()
                await asyncio.gather(*sessions, return_exceptions=True)
                await sampler
            elapsed = time.perf_counter() - t0
            stats.rss.append(rss_bytes(proc.pid))
            server_cpu = cpu_seconds(proc.pid) - server_cpu0
            client_cpu = time.process_time() - client_cpu0
        log_lines = (work / "server.log").read_text(encoding="utf-8", errors="replace").splitlines()
        notable = [line for line in log_lines if any(w in line for w in ("WARNING", "ERROR", "Traceback", "Error"))]
        peak = max(stats.rss)
        bound = baseline + MEMORY_TIER_BYTES + FIXED_OVERHEAD_BYTES
        answered = stats.answered
        return {
            "config": {**asdict(cfg), "think_ms": list(cfg.think_ms), "corpus_sections": len(ids)},
            "elapsed_s": round(elapsed, 2),
            "requests": stats.requests,
            "answered": answered,
            "throughput_rps": round(answered / elapsed, 1) if elapsed else 0.0,
            "cpu_ms_per_call": {
                "server": round(1000 * server_cpu / max(1, answered), 2),
                "load_generator": round(1000 * client_cpu / max(1, answered), 2),
            },
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_1m_before": round(load_before, 2),
                "scheduler": "fifo (chrt)" if os.sched_getscheduler(0) == os.SCHED_FIFO else "normal",
            },
            "errors": len(stats.errors),
            "error_samples": stats.errors[:5],
            "server_log": notable[-30:],
            "wrong_content": stats.wrong,
            "latency_ms": {
                outcome: {"n": len(v), "p50": pct(v, 0.5), "p95": pct(v, 0.95), "max": pct(v, 1.0)}
                for outcome, v in stats.latency_ms.items()
            },
            "server_wait_ms": {
                outcome: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for outcome, v in stats.server_wait_ms.items()
            },
            "rss_mb": {
                "baseline": round(baseline / 2**20, 1),
                "peak": round(peak / 2**20, 1),
                "mean": round(statistics.fmean(stats.rss) / 2**20, 1),
                "bound": round(bound / 2**20, 1),
                "memory_tier_bound": MEMORY_TIER_BYTES >> 20,
                "fixed_overhead": FIXED_OVERHEAD_BYTES >> 20,
            },
            "within_memory_bound": peak <= bound,
        }


_OPEN_AT_ONCE = 50
"""Connections the burst opens at a time before it fires (below the server's listen backlog)."""


async def _burst_calls(url: str, token: str, ids: list[str], n: int, connections: int) -> dict[str, Any]:
    """Fire ``n`` tool calls at once over ``connections`` connections; count what became of them.

    Every call is started at once; call ``i`` goes out on connection ``i % connections``, each
    connection its own client with a pool of one. One shared httpx pool for all of them cannot
    take a burst: httpcore re-scans every queued request against every connection each time a
    request is queued or finishes (O(queued x connections) per event), so 10,000 calls over 500
    connections spent the load generator's CPU in the pool and never finished.

    The connections are opened first (``server/discover`` on each, ``_OPEN_AT_ONCE`` at a time),
    so the burst is one of calls: 500 connects in the same instant overflow the listen backlog,
    and the kernel's resets made a few first calls fail with ``ReadError`` (a SYN flood, which
    tests/reliability/test_admission.py covers as such).
    """
    import ssl

    import httpx

    counts = {"answered": 0, "busy": 0, "http_503": 0, "other_errors": 0}
    samples: list[str] = []
    latencies: list[float] = []
    # Kept open from the opening round to the burst (the server keeps idle connections 15 s).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=10.0)
    tls = ssl.create_default_context()  # built once: httpx would load the CA bundle for every client
    clients = [httpx.AsyncClient(limits=limits, timeout=120, verify=tls) for _ in range(connections)]
    sessions = [RawSession(http, url, token) for http in clients]
    try:
        for start in range(0, connections, _OPEN_AT_ONCE):
            await asyncio.gather(*(session.open() for session in sessions[start : start + _OPEN_AT_ONCE]))

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            try:
                meta = {"prehydrate/session": f"burst-{i % connections}"}  # one session per connection
                is_error, out, text = await sessions[i % connections].call(ids[i % len(ids)], meta)
            except httpx.HTTPStatusError as exc:
                key = "http_503" if exc.response.status_code == 503 else "other_errors"
                counts[key] += 1
                if key == "other_errors" and len(samples) < 5:
                    samples.append(f"HTTP {exc.response.status_code}")
                return
            except Exception as exc:  # counted: the run reports every failure
                counts["other_errors"] += 1
                if len(samples) < 5:
                    samples.append(f"call {i}: {type(exc).__name__}: {exc}"[:200])
                return
            if not is_error and out is not None:
                counts["answered"] += 1
                latencies.append((time.perf_counter() - t0) * 1000)
            elif "busy" in text:
                counts["busy"] += 1
            else:
                counts["other_errors"] += 1
                if len(samples) < 5:
                    samples.append(text)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return {
        **counts,
        "error_samples": samples,
        "elapsed_s": round(elapsed, 2),
        "answered_ms": {"p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95), "max": pct(latencies, 1.0)},
    }


async def _steady_rss(pid: int, *, window_s: float = 7.0, tolerance: int = 1 << 20, timeout_s: float = 90.0) -> int:
    """The server's RSS once it has not moved by more than ``tolerance`` for ``window_s`` seconds.

    The window is longer than the server's 5 s memory-trim period, so the baseline, like the RSS
    after the burst, is read after the server has handed back what its warm-up freed; and the
    warm-up after the port opens (the lexical index, the learning worker) is over by then.
    """
    per_window = int(window_s / 0.5) + 1
    samples = [rss_bytes(pid)]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        samples.append(rss_bytes(pid))
        last = samples[-per_window:]
        if len(last) == per_window and max(last) - min(last) <= tolerance:
            break
    return samples[-1]


def _raise_own_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run_burst(cfg: LoadConfig, n: int, connections: int, settle_s: float, sections: int) -> dict[str, Any]:
    """Start the server, fire a burst of ``n`` calls, let it settle; RSS before, at peak and after.

    The burst asks for ``sections`` sections, all requested once before the baseline is read, so
    the RSS difference is what the burst itself left behind (connections, tasks, buffers), not
    entries the memory tier keeps by design (up to its 64 MB bound).
    """
    _raise_own_fd_limit()
    with tempfile.TemporaryDirectory(prefix="prehydrate-burst-") as tmp:
        work = Path(tmp)
        ids = make_corpus(work / "corpus", cfg)
        tokens = {f"load-token-{t:02d}-0123456789abcdef": f"tenant-{t}" for t in range(cfg.tenants)}
        token = next(iter(tokens))
        with serve(work, work / "corpus", tokens) as (url, proc):
            ids = ids[:sections]  # the burst's sections, cached first: RSS then measures the burst, not the cache
            warm = await _burst_calls(url, token, ids, len(ids), 20)
            if warm["answered"] != len(ids):
                raise RuntimeError(f"warm-up failed: {warm}")
            baseline = await _steady_rss(proc.pid)
            rss: list[int] = []
            done = asyncio.Event()

            async def sample() -> None:
                while not done.is_set():
                    rss.append(rss_bytes(proc.pid))
                    await asyncio.sleep(0.1)

            sampler = asyncio.create_task(sample())
            result = await _burst_calls(url, token, ids, n, connections)
            done.set()
            await sampler
            after_burst = rss_bytes(proc.pid)
            await asyncio.sleep(settle_s)
            settled = rss_bytes(proc.pid)
            alive = proc.poll() is None
            check = await _burst_calls(url, token, ids, 20, 4) if alive else {"answered": 0}
        log_lines = (work / "server.log").read_text(encoding="utf-8", errors="replace").splitlines()
    mb = 2**20
    return {
        "config": {"calls": n, "connections": connections, "settle_s": settle_s, "burst_sections": len(ids)},
        "burst": result,
        "server_alive": alive,
        "answers_after": check["answered"],
        "rss_mb": {
            "baseline": round(baseline / mb, 1),
            "peak": round(max(rss, default=after_burst) / mb, 1),
            "after_burst": round(after_burst / mb, 1),
            "settled": round(settled / mb, 1),
        },
        "settled_vs_baseline": round(settled / baseline - 1, 3),
        "within_20_percent": settled <= 1.2 * baseline,
        "server_log": [line for line in log_lines if "Traceback" in line or "ERROR" in line][-10:],
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": round(os.getloadavg()[0], 2)},
    }


def burst_table(result: dict[str, Any]) -> str:
    b, rss = result["burst"], result["rss_mb"]
    return (
        f"{result['config']['calls']} calls over {result['config']['connections']} connections in {b['elapsed_s']} s: "
        f"answered {b['answered']} (p50 {b['answered_ms']['p50']} ms, p95 {b['answered_ms']['p95']} ms), "
        f"busy {b['busy']}, 503 {b['http_503']}, other errors {b['other_errors']}; server alive "
        f"{result['server_alive']}, {result['answers_after']}/20 answered after.\n"
        f"RSS MB: baseline {rss['baseline']}, peak {rss['peak']}, right after {rss['after_burst']}, "
        f"after {result['config']['settle_s']} s {rss['settled']} ({result['settled_vs_baseline']:+.1%} vs baseline; "
        f"goal within 20%: {'met' if result['within_20_percent'] else 'NOT met'})"
    )


def table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        f"{cfg['sessions']} sessions ({cfg['client']} client), {cfg['tenants']} tenants, {result['elapsed_s']} s, "
        f"{result['answered']} calls answered ({result['throughput_rps']}/s), errors {result['errors']}, "
        f"wrong content {result['wrong_content']}; CPU per call: server {result['cpu_ms_per_call']['server']} ms, "
        f"load generator {result['cpu_ms_per_call']['load_generator']} ms; machine {result['machine']}",
        "| outcome | calls | p50 ms | p95 ms | max ms | server wait p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for outcome, lat in result["latency_ms"].items():
        wait = result["server_wait_ms"][outcome]
        lines.append(
            f"| {outcome} | {lat['n']} | {lat['p50']} | {lat['p95']} | {lat['max']} | {wait['p50']} / {wait['p95']} |"
        )
    rss = result["rss_mb"]
    lines.append(
        f"RSS MB: baseline {rss['baseline']}, peak {rss['peak']}, mean {rss['mean']}; bound {rss['bound']} "
        f"(baseline + memory tier {rss['memory_tier_bound']} + overhead {rss['fixed_overhead']}): "
        f"{'within' if result['within_memory_bound'] else 'OVER'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=40_000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--think-ms", type=float, nargs=2, default=(1000.0, 3000.0), metavar=("MIN", "MAX"))
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of ramp-up left out of the latencies")
    parser.add_argument("--files", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-session-meta", action="store_true", help="no _meta session: all of a tenant's clients share one session"
    )
    parser.add_argument(
        "--client", choices=["raw", "mcp"], default="raw", help="lean JSON-RPC client, or the MCP SDK's Client"
    )
    parser.add_argument("--burst", type=int, default=0, help="fire this many calls at once instead of the load run")
    parser.add_argument("--burst-connections", type=int, default=1000, help="connections the burst uses")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after the burst before RSS is read")
    parser.add_argument("--burst-sections", type=int, default=200, help="distinct sections the burst asks for")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    cfg = LoadConfig(
        sessions=args.sessions,
        duration_s=args.duration,
        max_requests=args.max_requests,
        tenants=args.tenants,
        think_ms=tuple(args.think_ms),
        warmup_s=args.warmup,
        files=args.files,
        seed=args.seed,
        client=args.client,
        session_meta=not args.no_session_meta,
    )
    if args.burst:
        burst = asyncio.run(run_burst(cfg, args.burst, args.burst_connections, args.settle, args.burst_sections))
        print(burst_table(burst))
        if args.json:
            args.json.write_text(json.dumps(burst, indent=2) + "\n", encoding="utf-8")
        return 0 if burst["server_alive"] and burst["within_20_percent"] and burst["answers_after"] == 20 else 1
    result = asyncio.run(run_load(cfg))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = result["errors"] == 0 and result["wrong_content"] == 0 and result["within_memory_bound"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
