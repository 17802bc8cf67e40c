"""Fit at scale and start time: what many recorded sessions cost a fit and a starting server.

Run (2 cores; each size in fresh processes, so memory figures are per run)::

    python tests/benchmarks/fit_scale.py                         # 1k, 10k and 100k recorded sessions
    python tests/benchmarks/fit_scale.py --sessions 1000 --serve  # also start `prehydrate serve` on it
    python tests/benchmarks/fit_scale.py --bytes 200e6 --serve    # a 200 MB trace file (issue #16)

The trace store is a real trace set (tau2 train, 178 sessions, bundled under
``tests/benchmarks/data/tau2``) replicated with renamed sessions; every copy's queries also get a
copy number, so no two recorded turns read alike and no query cache makes the fit cheaper than real
traffic would. For each size it reports:

- ``fit``: reading the fit window from the store (``TraceStore.recent``: the newest ``fit_window``
  sessions, read from the end of the file) and fitting the default predictor on it, in a child
  process: seconds and peak RSS.
- ``serve`` (with ``--serve``): ``prehydrate serve --transport http`` on the store, from process start
  to the port accepting connections, to the first ``request_context`` answered over MCP, and to the
  background fit having written its model (the server serves the whole time); the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import prehydrate as ph

DATA = Path(__file__).resolve().parent / "data" / "tau2"


def write_store(path: Path, *, sessions: int | None = None, min_bytes: float | None = None) -> tuple[int, int]:
    """Write a trace store of replicated tau2 sessions; returns (sessions, bytes)."""
    base = ph.read_traces(DATA / "train.jsonl")
    written = size = 0
    with path.open("w", encoding="utf-8") as fh:
        copy = 0
        while True:
            for t in base:
                if sessions is not None and written >= sessions:
                    return written, size
                if min_bytes is not None and size >= min_bytes:
                    return written, size
                turns = tuple(ph.TurnTrace(query=f"{x.query} (ref {copy})", calls=x.calls) for x in t.turns)
                line = ph.SessionTrace(session=f"{t.session}~{copy}", task=t.task, turns=turns).dumps() + "\n"
                fh.write(line)
                written += 1
                size += len(line.encode())
            copy += 1


def child_fit(store: str) -> None:
    """In a fresh process: read the fit window and fit the default predictor; print JSON."""
    t0 = time.perf_counter()
    catalog = ph.Engine(sources=[ph.JsonlSource(DATA / "sections.jsonl")]).catalog.warm()
    t1 = time.perf_counter()
    window = ph.TraceStore(store).recent(None)
    t2 = time.perf_counter()
    predictor = ph.default_predictor()
    predictor.fit(window, catalog)
    t3 = time.perf_counter()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"window": len(window), "catalog_s": t1 - t0, "read_s": t2 - t1, "fit_s": t3 - t2, "peak_rss_mb": rss_mb}
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def first_answer(url: str) -> None:
    from mcp import Client

    async with Client(url) as client:
        result = await client.call_tool("request_context", {"section": "airline/get_user_details"})
        assert not result.is_error, result.content


def serve_start(store: Path, home: Path) -> dict[str, float]:
    """Start `prehydrate serve --transport http` on ``store``; time the port, the first answer, the fit."""
    port = free_port()
    argv = [sys.executable, "-c", "from prehydrate.cli import main; main()", "serve", str(DATA / "sections.jsonl")]
    argv += ["--transport", "http", "--port", str(port), "--traces", str(store)]
    env = {**os.environ, "PREHYDRATE_HOME": str(home)}
    # An installed package starts from its cached bytecode; a PYTHONDONTWRITEBYTECODE left in the
    # environment (some sandboxes set it) would recompile every prehydrate module at every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    model = store.with_name(store.stem + ".models") / "default.model.json.gz"
    import mcp  # noqa: F401  # imported before the clock starts: the client's import is not the server's start

    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, float] = {}
    try:
        while "port_open_s" not in out:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    out["port_open_s"] = time.perf_counter() - t0
            except OSError:
                time.sleep(0.02)
        asyncio.run(first_answer(f"http://127.0.0.1:{port}/mcp"))
        out["first_answer_s"] = time.perf_counter() - t0
        while not model.exists() and proc.poll() is None and time.perf_counter() - t0 < 3600:
            time.sleep(0.2)
        out["model_saved_s"] = time.perf_counter() - t0
        out["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="*", default=[1000, 10_000, 100_000])
    ap.add_argument("--bytes", type=float, default=None, help="instead of --sessions: one store of this many bytes")
    ap.add_argument("--serve", action="store_true", help="also time `prehydrate serve` starting on each store")
    ap.add_argument("--no-fit", action="store_true", help="skip the fit measurement")
    ap.add_argument("--child-fit", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_fit:
        child_fit(args.child_fit)
        return
    sizes: list[tuple[int | None, float | None]] = (
        [(None, args.bytes)] if args.bytes is not None else [(n, None) for n in args.sessions]
    )
    for n, min_bytes in sizes:
        work = Path(tempfile.mkdtemp(prefix="fit-scale-"))
        try:
            store = work / "traces.jsonl"
            count, size = write_store(store, sessions=n, min_bytes=min_bytes)
            row: dict[str, object] = {"sessions": count, "mb": round(size / 1e6, 1)}
            if not args.no_fit:
                cmd = [sys.executable, __file__, "--child-fit", str(store)]
                row["fit"] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            if args.serve:
                row["serve"] = serve_start(store, work / "home")
            print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
