"""Hostile input through the engine API: every case is a clear error, nothing leaks, serving goes on.

The MCP side of the same cases is in ``test_mcp_reliability.py``. Property-based tests (hypothesis)
cover the three parsers of untrusted text: the catalog's free-text resolution, the cache key and
entry codec, and the trace reader.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prehydrate as ph

from .conftest import SECRET

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def assert_still_answers(turn: ph.Turn) -> None:
    """After a refused request the same turn still serves a good one."""
    r = await turn.request_context(query="refund policy")
    assert r.section_id and r.content and SECRET not in r.content


# --------------------------------------------------------------------------------------------------
# DirectorySource: traversal, symlinks, NUL, non-UTF-8, size


TRAVERSAL_IDS = [
    "../outside/secret",
    "../../etc/passwd",
    "billing/../../outside/secret",
    "/etc/passwd",
    "\\\\server\\share\\x",
    "..\\outside\\secret",
    "C:\\Windows\\win.ini",
    "c:/windows/win.ini",
]


@pytest.mark.parametrize("section_id", TRAVERSAL_IDS)
async def test_traversal_ids_are_refused_by_source_and_engine(
    docs_root: Path, secret_file: Path, section_id: str
) -> None:
    src = ph.DirectorySource(docs_root)
    with pytest.raises(ph.PathTraversalError):
        await src.hydrate(section_id, scope=ph.Scope())
    async with ph.Engine(sources=[src]) as engine, engine.session("s") as session:
        async with session.turn() as turn:
            with pytest.raises(ph.PathTraversalError) as info:
                await turn.request_context(section_id)
            assert SECRET not in str(info.value)
            await assert_still_answers(turn)
        assert turn.report is not None and turn.report.errors == 1


@pytest.mark.parametrize("relative", ["../outside/secret.md", "/etc/passwd", "a/../../outside/secret.md", "x\x00y"])
def test_resolve_refuses_paths_leaving_the_root(docs_root: Path, secret_file: Path, relative: str) -> None:
    src = ph.DirectorySource(docs_root)
    with pytest.raises(ph.InputError):
        src.resolve(relative)


def test_symlinks_escaping_the_root_are_skipped_when_listing(docs_root: Path, secret_file: Path) -> None:
    (docs_root / "leak.md").symlink_to(secret_file)
    (docs_root / "outside-dir").symlink_to(secret_file.parent, target_is_directory=True)
    (docs_root / "inside.md").symlink_to(docs_root / "billing" / "refunds.md")  # stays inside: allowed
    src = ph.DirectorySource(docs_root)
    ids = [s.id for s in src.list_sections()]
    assert not any(i.startswith(("leak", "outside-dir")) for i in ids)
    assert any(i.startswith("inside") for i in ids)
    assert [rel for rel, _ in src.skipped] == ["leak.md"]
    assert "outside the source root" in src.skipped[0][1]
    assert all(SECRET not in s.index_text and SECRET not in s.summary for s in src.list_sections())


async def test_file_swapped_for_an_escaping_symlink_after_listing_is_refused(
    docs_root: Path, secret_file: Path
) -> None:
    """The check happens at every read, not only when listing (a swap in between must not leak)."""
    src = ph.DirectorySource(docs_root)
    async with ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False)) as engine:
        assert "notes" in engine.catalog
        target = docs_root / "notes.txt"
        target.unlink()
        target.symlink_to(secret_file)
        async with engine.session("s") as session, session.turn() as turn:
            with pytest.raises(ph.PathTraversalError) as info:
                await turn.request_context("notes")
            assert SECRET not in str(info.value)
            await assert_still_answers(turn)


async def test_prefetch_of_a_swapped_file_fails_quietly_and_the_request_gets_the_error(
    docs_root: Path, secret_file: Path
) -> None:
    src = ph.DirectorySource(docs_root)
    async with ph.Engine(sources=[src]) as engine:
        target = docs_root / "notes.txt"
        target.unlink()
        target.symlink_to(secret_file)
        async with engine.session("s") as session:
            async with session.turn(expect=["notes"]) as turn:
                await asyncio.sleep(0.05)
                with pytest.raises(ph.PathTraversalError):
                    await turn.request_context("notes")
                await assert_still_answers(turn)
        assert turn.report is not None and turn.report.failed == 1
        assert all(SECRET not in r.content for r in turn.results)


async def test_non_utf8_files_are_skipped_and_a_file_turning_binary_is_a_clear_error(docs_root: Path) -> None:
    (docs_root / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve\n".encode("latin-1"))
    src = ph.DirectorySource(docs_root)
    assert not any(s.id.startswith("latin1") for s in src.list_sections())
    assert "not UTF-8" in dict(src.skipped)["latin1.md"]
    async with ph.Engine(sources=[src], policy=ph.PrefetchPolicy(enabled=False)) as engine:
        (docs_root / "notes.txt").write_bytes(b"\xff\xfe\x00binary\x00")
        async with engine.session("s") as session, session.turn() as turn:
            with pytest.raises(ph.InputError, match="not UTF-8"):
                await turn.request_context("notes")
            await assert_still_answers(turn)


async def test_oversized_files_are_skipped(docs_root: Path) -> None:
    (docs_root / "huge.md").write_text("# Huge\n\n" + "x" * 5000 + "\n", encoding="utf-8")
    src = ph.DirectorySource(docs_root, max_file_bytes=4096)
    assert not any(s.id.startswith("huge") for s in src.list_sections())
    assert "huge.md" in dict(src.skipped) and "over the limit" in dict(src.skipped)["huge.md"]


def test_nul_bytes_in_file_names_and_ids_are_refused(docs_root: Path) -> None:
    src = ph.DirectorySource(docs_root)
    with pytest.raises(ph.InputError, match="NUL"):
        src.resolve("notes\x00.txt")
    with pytest.raises(ph.InputError, match="NUL"):
        ph.MockSource(lambda s, c: s, ["a\x00b"])


# --------------------------------------------------------------------------------------------------
# The engine API: ids, queries and argument types


HOSTILE_REQUESTS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"key": "x" * 100_000}, ph.InputError),
    ({"key": "a\x00b"}, ph.InputError),
    ({"key": ""}, ph.InputError),
    ({"key": 123}, ph.InputError),
    ({"key": ["refunds/request"]}, ph.InputError),
    ({"key": b"refunds/request"}, ph.InputError),
    ({"key": "\ud800"}, ph.InputError),  # not Unicode text: refused by its shape, never looked up
    ({"key": "refunds/request\n"}, ph.UnknownSectionError),
    ({"query": "q" * 1_000_000}, ph.RequestTooLargeError),
    ({"query": "refund\x00policy"}, ph.InputError),
    ({"query": ""}, ph.InputError),
    ({"query": "   "}, ph.InputError),
    ({"query": 5}, ph.InputError),
    ({"query": {"$ne": None}}, ph.InputError),
    ({"query": "the of and a"}, ph.NoMatchError),
    ({"query": "\udcff\ud800"}, ph.NoMatchError),
    ({}, ph.InputError),
    ({"key": "refunds/request", "query": "refund"}, ph.InputError),
]


@pytest.mark.parametrize(("kwargs", "error"), HOSTILE_REQUESTS, ids=lambda v: repr(v)[:40])
async def test_hostile_requests_are_clear_errors_and_serving_goes_on(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    events: list[object] = []
    async with ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]) as engine:
        engine.subscribe(events.append)
        async with engine.session("s") as session:
            async with session.turn(query="refunds") as turn:
                with pytest.raises(error) as info:
                    await turn.request_context(**kwargs)
                assert len(str(info.value)) < 2000, "the error message echoes the whole input"
                await assert_still_answers(turn)
    failed = [e for e in events if isinstance(e, ph.LookupFailed)]
    assert len(failed) == 1 and failed[0].error_type == type(info.value).__name__
    assert turn.report is not None and (turn.report.errors, turn.report.calls) == (1, 1)


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("session", {"session_id": ""}),
        ("session", {"session_id": 5}),
        ("session", {"session_id": "s", "tenant": ""}),
        ("session", {"session_id": "s", "tenant": None}),
        ("session", {"session_id": "s", "task_type": 5}),
        ("session", {"session_id": "s", "tags": "billing"}),
        ("session", {"session_id": "s", "tags": [1, 2]}),
        ("turn", {"query": 5}),
        ("turn", {"query": "q" * 1_000_000}),
        ("turn", {"task_type": ["x"]}),
        ("turn", {"tags": 5}),
        ("turn", {"expect": "refunds/request"}),
        ("turn", {"expect": ["refunds/request", None]}),
        ("turn", {"node": 1}),
        ("turn", {"budget_tokens": "100"}),
        ("turn", {"budget_tokens": True}),
    ],
)
async def test_wrong_argument_types_are_input_errors(call: str, kwargs: dict[str, Any]) -> None:
    async with ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]) as engine:
        if call == "session":
            with pytest.raises(ph.InputError):
                engine.session(**kwargs)
        else:
            async with engine.session("s") as session:
                with pytest.raises(ph.InputError):
                    session.turn(**kwargs)
                async with session.turn(query="refunds") as turn:
                    await assert_still_answers(turn)


async def test_expected_ids_that_do_not_exist_are_ignored_not_hydrated() -> None:
    src = ph.MockSource(lambda s, c: f"content {s}", ["a", "b"])
    async with ph.Engine(sources=[src]) as engine, engine.session("s") as session:
        async with session.turn(expect=["../../etc/passwd", "zz" * 300, "a"]) as turn:
            r = await turn.request_context("a")
    assert r.content == "content a" and src.calls == ["a"]


# --------------------------------------------------------------------------------------------------
# JSONL sections and traces: deep nesting, enormous lines, non-UTF-8


def write_lines(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


GOOD_SECTION = json.dumps({"id": "ok", "title": "OK", "text": "fine", "tags": []}).encode()
BAD_LINES = [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"id": "a", "title": "t", "text": "x", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"id": "a", "title": ' + b"9" * 5000 + b', "text": "x", "tags": []}',
    b'{"id": "a", "title": "\xff\xfe", "text": "x", "tags": []}',
    b"\xef\xbb\xbf\x00\x00garbage",
    b'{"id": "a\\u0000b", "title": "t", "text": "x", "tags": []}',
    b'{"id": "' + b"i" * 1000 + b'", "title": "t", "text": "x", "tags": []}',
    b'{"id": "../../etc/passwd", "title": "t", "text": "x", "tags": []}',
    b'{"id": 5, "title": "t", "text": "x", "tags": []}',
    b'{"id": "a", "title": "t", "text": ["x"], "tags": []}',
    b'{"id": "a", "title": "t", "text": "x", "tags": "billing"}',
]


@pytest.mark.parametrize("line", BAD_LINES, ids=lambda b: repr(b[:30]))
def test_bad_section_lines_name_file_and_line(tmp_path: Path, line: bytes) -> None:
    path = write_lines(tmp_path / "sections.jsonl", GOOD_SECTION, line)
    with pytest.raises(ph.InputError) as info:
        ph.JsonlSource(path)
    assert f"{path}:2" in str(info.value)
    assert len(str(info.value)) < 2000


async def test_enormous_section_is_listed_but_refused_at_hydration(tmp_path: Path) -> None:
    big = json.dumps({"id": "big", "title": "Big", "text": "y" * (3 << 20), "tags": []}).encode()
    path = write_lines(tmp_path / "sections.jsonl", GOOD_SECTION, big)
    limits = ph.EngineLimits(max_content_bytes=1 << 20)
    async with ph.Engine(sources=[ph.JsonlSource(path)], limits=limits) as engine:
        async with engine.session("s") as session, session.turn(expect=["big"]) as turn:
            with pytest.raises(ph.RequestTooLargeError):
                await turn.request_context("big")
            assert (await turn.request_context("ok")).content == "fine"
        assert turn.report is not None and turn.report.failed == 1


TRACE_OK = b'{"session": "s1", "task": {"type": "t", "query": "q", "tags": []}, "turns": []}'
BAD_TRACE_LINES = [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": ' + b"9" * 400 + b"}]}]}",
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": ' + b"9" * 5000 + b"}]}]}",
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": 1e400}]}]}',
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": NaN}]}]}',
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": -Infinity}]}]}',
    b'{"session": "s", "turns": [{"calls": [{"key": "a", "think_ms": true}]}]}',
    b'{"session": "\xff", "turns": []}',
    b'{"session": "s", "turns": {"0": {}}}',
    b'{"session": "s", "turns": [{"calls": [{"key": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}]}",
]


@pytest.mark.parametrize("line", BAD_TRACE_LINES, ids=lambda b: repr(b[:30]))
def test_bad_trace_lines_name_file_and_line(tmp_path: Path, line: bytes) -> None:
    path = write_lines(tmp_path / "traces.jsonl", TRACE_OK, line)
    with pytest.raises(ph.MalformedInputError) as info:
        ph.read_traces(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert len(str(info.value)) < 2000


# --------------------------------------------------------------------------------------------------
# Properties


@pytest.fixture(scope="module")
def catalog() -> ph.Catalog:
    return ph.Engine(sources=[ph.JsonlSource(ph.sample_sections_path())]).catalog


@HYPOTHESIS
@given(query=st.text(max_size=300))
def test_catalog_search_and_resolve_never_fail_unexpectedly(catalog: ph.Catalog, query: str) -> None:
    hits = catalog.search(query, k=5)
    assert len(hits) <= 5
    scores = [score for _, score in hits]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
    assert all(s.id in catalog for s, _ in hits)
    try:
        best = catalog.resolve(query)
    except ph.NoMatchError as exc:
        assert hits == [] and exc.query == query
    else:
        assert hits and best.id == hits[0][0].id


@HYPOTHESIS
@given(key=st.text(max_size=600))
def test_catalog_get_is_a_section_or_an_unknown_section_error(catalog: ph.Catalog, key: str) -> None:
    try:
        section = catalog.get(key)
    except ph.UnknownSectionError as exc:
        assert key not in catalog
        assert len(exc.suggestions) <= 3 and all(s in catalog for s in exc.suggestions)
    else:
        assert section.id == key


key_parts = st.text(max_size=40)
keys = st.builds(ph.CacheKey, key_parts, key_parts, key_parts, st.none() | key_parts)


@HYPOTHESIS
@given(a=keys, b=keys)
def test_cache_key_derivation_is_injective(a: ph.CacheKey, b: ph.CacheKey) -> None:
    """Different (tenant, partition, section, version) never share a key, whatever characters they contain."""
    if a != b:
        assert a.raw != b.raw and a.digest != b.digest
    else:
        assert a.raw == b.raw and a.digest == b.digest
    assert json.loads(a.raw) == [a.tenant, a.partition, a.section_id, a.version]
    assert len(a.digest) == 64


@HYPOTHESIS
@given(tenant=key_parts, section=key_parts)
def test_tenant_and_section_cannot_be_confused_by_separators(tenant: str, section: str) -> None:
    moved = ph.CacheKey(tenant + "/" + section[:1], section[1:], "v")
    original = ph.CacheKey(tenant, section, "v")
    assert moved.raw != original.raw


@HYPOTHESIS
@given(tenant=key_parts, partition=key_parts, cut=st.integers(0, 40))
def test_tenant_and_partition_cannot_be_confused_by_separators(tenant: str, partition: str, cut: int) -> None:
    """The --isolate-sessions bug: tenant ``a/b`` + session ``c`` once equalled tenant ``a`` + session ``b/c``."""
    joined = tenant + "/" + partition
    a = ph.CacheKey(joined[:cut], "s", "v", joined[cut:])
    b = ph.CacheKey(tenant, "s", "v", partition)
    assert (a.raw == b.raw) == (a == b) and (a.digest == b.digest) == (a == b)
    assert ph.CacheKey(tenant, "s", "v", None).raw != ph.CacheKey(tenant, "s", "v", "").raw


@HYPOTHESIS
@given(key=keys, content=st.text(max_size=200), title=st.text(max_size=20), data=st.data())
def test_entry_codec_round_trips_and_damage_never_yields_other_content(
    key: ph.CacheKey, content: str, title: str, data: st.DataObject
) -> None:
    entry = replace(ph.CacheEntry.make(key, content, title=title), created_at=0.0)  # same bytes on every run
    raw = entry.to_bytes()
    assert ph.CacheEntry.from_bytes(raw) == entry
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    with pytest.raises(ph.CacheError):
        ph.CacheEntry.from_bytes(raw[:cut])  # a torn write never parses
    pos = data.draw(st.integers(0, len(raw) - 1), label="flip")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(raw)
    damaged[pos] ^= 1 << bit
    try:
        parsed = ph.CacheEntry.from_bytes(bytes(damaged))
    except ph.CacheError:
        return
    if parsed.key == key and parsed.intact():
        assert parsed.content == content  # what a tier would serve for this key is the original content


@settings(max_examples=20, deadline=None)  # each example opens a SQLite database
@given(key=keys, content=st.text(max_size=100), data=st.data())
def test_disk_tier_serves_damaged_bytes_as_a_miss(key: ph.CacheKey, content: str, data: st.DataObject) -> None:
    raw = replace(ph.CacheEntry.make(key, content), created_at=0.0).to_bytes()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with tempfile.TemporaryDirectory() as d:
        tier = ph.DiskTier(d)

        async def run() -> ph.CacheEntry | None:
            tier._dc.set(key.raw, raw[:cut])  # a torn value, as a crash could leave it
            got = await tier.get(key)
            await tier.aclose()
            return got

        assert asyncio.run(run()) is None


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
trace_like = st.fixed_dictionaries(
    {"session": json_values | st.text(min_size=1, max_size=8)},
    optional={
        "task": json_values | st.fixed_dictionaries({}, optional={"type": json_values, "tags": json_values}),
        "turns": json_values
        | st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "query": json_values,
                    "calls": json_values
                    | st.lists(
                        st.fixed_dictionaries(
                            {}, optional={"key": json_values, "think_ms": json_values, "node": json_values}
                        ),
                        max_size=3,
                    ),
                },
            ),
            max_size=3,
        ),
    },
)


@HYPOTHESIS
@given(objs=st.lists(trace_like | json_values, min_size=1, max_size=4), junk=st.binary(max_size=40))
def test_trace_reader_accepts_or_names_the_line(objs: list[Any], junk: bytes) -> None:
    lines = [json.dumps(o).encode() for o in objs] + [junk.replace(b"\n", b" ")]
    fd, name = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\n".join(lines) + b"\n")
        try:
            traces = ph.read_traces(name)
        except ph.MalformedInputError as exc:
            assert exc.path == name and 1 <= exc.line <= len(lines)
        else:
            # Whatever was accepted writes back as valid JSON and reads back the same.
            ph.write_traces(name, traces)
            assert ph.read_traces(name) == traces
    finally:
        os.unlink(name)


sessions = st.builds(
    ph.SessionTrace,
    session=st.text(min_size=1, max_size=10),
    task=st.builds(ph.TaskSpec, type=st.text(max_size=8), query=st.text(max_size=20), tags=st.tuples(st.text())),
    turns=st.lists(
        st.builds(
            ph.TurnTrace,
            query=st.text(max_size=20),
            calls=st.lists(
                st.builds(
                    ph.Call,
                    key=st.text(min_size=1, max_size=12),
                    think_ms=st.integers(0, 10**6) | st.floats(0, 1e6, allow_nan=False).map(lambda x: round(x, 3)),
                    node=st.none() | st.text(max_size=6),
                ),
                max_size=3,
            ).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
)


@HYPOTHESIS
@given(traces=st.lists(sessions, max_size=4))
def test_trace_store_round_trips_any_session(traces: list[ph.SessionTrace]) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = ph.TraceStore(Path(d) / "t.jsonl")
        store.extend(traces)
        assert [t.dumps() for t in store.load()] == [t.dumps() for t in traces]


@pytest.mark.parametrize("widest", ["x", "é", "€", "🙂"], ids=["ascii", "latin1", "bmp", "astral"])
async def test_memory_tier_bound_holds_in_real_memory_whatever_the_characters(widest: str) -> None:
    """Content that CPython stores at 4 bytes per character must not get 4x the tier's bound."""
    import tracemalloc

    bound = 4 << 20
    tier = ph.MemoryTier(max_bytes=bound)
    tracemalloc.start()
    try:
        for i in range(200):
            content = f"{i} {widest}" + "x" * 50_000  # one wide character widens the whole string
            await tier.put(ph.CacheEntry.make(ph.CacheKey("t", f"s{i}", "v"), content))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tier.bytes_used <= bound
    assert held <= bound * 1.1, f"{held} bytes held for a {bound}-byte tier"
