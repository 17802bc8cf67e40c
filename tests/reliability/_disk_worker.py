"""Child process for the disk-tier fault tests (run as a script, never imported by pytest).

Modes:
    write DIR START        put entries into a DiskTier forever, printing each index once stored
                           (the parent SIGKILLs it mid-way).
    fill DIR N             put entries 0..N-1 and exit.
    full DIR LIMIT         serve requests through an engine whose disk fills up (RLIMIT_FSIZE=LIMIT).
    readonly DIR           serve requests while the disk tier's directory and files turn read-only.
    readonly-start DIR     open a DiskTier on a directory that is read-only from the start.

The serving modes print one JSON line: what was served and whether every answer was right.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import resource
import signal
import sys
from pathlib import Path

import prehydrate as ph

BIG_EVERY = 4
"""Every fourth entry is larger than diskcache's 32 KB threshold, so it is written as a separate file."""


def make_content(i: int) -> str:
    """Deterministic content of entry ``i``: small SQLite rows and big file-backed values mixed."""
    size = 40_000 + (i % 7) * 1000 if i % BIG_EVERY == 0 else 100 + (i * 37) % 3000
    seed = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"entry {i} " + seed * (size // 64 + 1))[:size]


def section_id(i: int) -> str:
    return f"s/{i}"


def key_of(i: int) -> ph.CacheKey:
    return ph.CacheKey("tenant", section_id(i), ph._sections.content_version(make_content(i)))


async def write(directory: str, start: int, stop: int | None) -> None:
    tier = ph.DiskTier(directory)
    i = start
    while stop is None or i < stop:
        entry = ph.CacheEntry.make(key_of(i), make_content(i), title=section_id(i))
        assert await tier.put(entry)
        print(i, flush=True)
        i += 1
    await tier.aclose()


def mock_source(n: int) -> ph.MockSource:
    sections = [ph.Section(id=section_id(i), title=section_id(i), version=key_of(i).version, order=i) for i in range(n)]
    return ph.MockSource(lambda sid, scope: make_content(int(sid.split("/")[1])), sections)


class Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def serve(directory: str, n: int, *, before: int, fault: str) -> dict[str, object]:
    counter = Counter()
    logging.getLogger("prehydrate").addHandler(counter)
    cache = ph.WarmCache([ph.MemoryTier(max_bytes=64 << 10), ph.DiskTier(directory)])
    wrong: list[int] = []
    errors: list[str] = []
    served = 0
    async with ph.Engine(sources=[mock_source(n)], cache=cache) as engine:
        for i in range(n):
            if i == before:
                apply_fault(directory, fault)
            try:
                async with engine.session(f"s{i}", tenant="tenant") as session:
                    async with session.turn(expect=[section_id((i + 1) % n)]) as turn:
                        r = await turn.request_context(section_id(i))
                served += 1
                if r.content != make_content(i):
                    wrong.append(i)
            except Exception as exc:  # the test asserts there are none
                errors.append(f"{i}: {type(exc).__name__}: {exc}")
    return {"served": served, "wrong": wrong, "errors": errors[:5], "warnings": counter.messages[:5]}


def apply_fault(directory: str, fault: str) -> None:
    if fault == "full":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        limit = int(os.environ["FSIZE_LIMIT"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    elif fault == "readonly":
        make_read_only(directory)


def make_read_only(directory: str) -> None:
    for dirpath, dirnames, filenames in os.walk(directory):
        for fn in filenames:
            os.chmod(os.path.join(dirpath, fn), 0o444)
        for dn in dirnames:
            os.chmod(os.path.join(dirpath, dn), 0o555)
    os.chmod(directory, 0o555)


def main() -> None:
    mode, directory = sys.argv[1], sys.argv[2]
    if mode == "write":
        asyncio.run(write(directory, int(sys.argv[3]), None))
    elif mode == "fill":
        asyncio.run(write(directory, 0, int(sys.argv[3])))
    elif mode in ("full", "readonly"):
        result = asyncio.run(serve(directory, 120, before=20, fault=mode))
        print(json.dumps(result), flush=True)
    elif mode == "readonly-start":
        make_read_only(directory)
        try:
            tier = ph.DiskTier(directory)
        except ph.CacheError as exc:
            print(json.dumps({"opened": False, "error": str(exc)}), flush=True)
            return
        print(json.dumps({"opened": True}), flush=True)
        result = asyncio.run(serve(directory, 60, before=0, fault="none"))
        asyncio.run(tier.aclose())
        print(json.dumps(result), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    Path(sys.argv[2]).mkdir(parents=True, exist_ok=True)
    main()
