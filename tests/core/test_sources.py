"""Built-in sources: directory splitting and confinement, JSONL parsing, callables and mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import prehydrate as ph

SCOPE = ph.Scope()


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(
        root,
        "billing/refunds.md",
        "# Refunds\n\nWe refund within 14 days.\n\n## Partial refunds\n\nProrated.\n\n"
        "```\n# not a heading\n```\n\n## Partial refunds\n\nSecond one.\n",
    )
    write(root, "notes.txt", "plain text notes\n")
    code = '"""Module doc."""\n\nimport os\n\n\ndef helper():\n    return 1\n\n\nclass Thing:\n    pass\n'
    write(root, "tool.py", code)
    write(root, ".hidden.md", "# secret\n")
    return root


async def test_directory_splits_at_headings_with_stable_ids(docs: Path) -> None:
    src = ph.DirectorySource(docs)
    ids = [s.id for s in src.list_sections()]
    assert ids == [
        "billing/refunds#refunds",
        "billing/refunds#partial-refunds",
        "billing/refunds#partial-refunds-2",
        "notes",
        "tool",
        "tool#helper",
        "tool#thing",
    ]
    assert ids == [s.id for s in ph.DirectorySource(docs).list_sections()]
    h = await src.hydrate("billing/refunds#partial-refunds", scope=SCOPE)
    assert h.content.startswith("## Partial refunds") and "Prorated" in h.content
    first = src.list_sections()[0]
    assert first.tags == ("billing",) and first.tokens > 0 and first.summary == "We refund within 14 days."


async def test_fenced_code_headings_do_not_split(docs: Path) -> None:
    src = ph.DirectorySource(docs)
    h = await src.hydrate("billing/refunds#partial-refunds", scope=SCOPE)
    assert "```\n# not a heading\n```" in h.content


async def test_directory_refuses_traversal_and_escaping_symlinks(tmp_path: Path, docs: Path) -> None:
    outside = write(tmp_path, "outside/secret.md", "# Secret\n\ntop secret\n")
    os.symlink(outside, docs / "link.md")
    os.symlink(outside.parent, docs / "linkdir")
    src = ph.DirectorySource(docs)
    listed = [s.id for s in src.list_sections()]
    assert not any("link" in i or "secret" in i for i in listed)
    assert ("link.md", f"path 'link.md' resolves outside the source root {str(docs.resolve())!r}") in src.skipped
    for bad in ("../outside/secret.md", "/etc/passwd", "link.md"):
        with pytest.raises(ph.PathTraversalError):
            src.resolve(bad)
    with pytest.raises(ph.PathTraversalError):
        await src.hydrate("../outside/secret", scope=SCOPE)
    with pytest.raises(ph.UnknownSectionError):
        await src.hydrate("linkdir/secret", scope=SCOPE)


async def test_symlink_swapped_after_listing_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = write(root, "real/a.md", "# A\n\ninside\n")
    write(tmp_path, "evil/a.md", "# A\n\nstolen\n")
    os.symlink(target, root / "alias.md")  # a symlink that stays inside the root is fine
    src = ph.DirectorySource(root)
    assert "alias#a" in [s.id for s in src.list_sections()]
    os.remove(root / "alias.md")
    os.symlink(tmp_path / "evil" / "a.md", root / "alias.md")
    with pytest.raises(ph.PathTraversalError):
        await src.hydrate("alias#a", scope=SCOPE)


def test_directory_skips_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    write(tmp_path, "bad.md", b"# Bad\n\xff\xfe broken\n")
    write(tmp_path, "big.txt", "x" * 2000)
    write(tmp_path, "ok.md", "# Ok\n\nfine\n")
    src = ph.DirectorySource(tmp_path, max_file_bytes=1000)
    assert [s.id for s in src.list_sections()] == ["ok#ok"]
    reasons = dict(src.skipped)
    assert "not UTF-8" in reasons["bad.md"] and "over the limit" in reasons["big.txt"]


def test_directory_root_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ph.ConfigError, match="not a directory"):
        ph.DirectorySource(tmp_path / "missing")


async def test_jsonl_source_reads_the_sections_format(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.jsonl",
        '{"id": "a", "title": "A", "text": "alpha text", "tags": ["x"]}\n\n{"id": "b", "title": "B", "text": "beta"}\n',
    )
    src = ph.JsonlSource(path)
    sections = src.list_sections()
    assert [(s.id, s.title, s.tags, s.order) for s in sections] == [("a", "A", ("x",), 0), ("b", "B", (), 1)]
    assert (await src.hydrate("a", scope=SCOPE)).content == "alpha text"
    assert sections[0].version == (await src.hydrate("a", scope=SCOPE)).version


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"title": "x", "text": "y"}', "'id' must be a non-empty string"),
        ('{"id": "a", "title": "x"}', "'text' must be a string"),
        ('{"id": "a", "title": "x", "text": "y", "tags": "nope"}', "'tags' must be a list of strings"),
        ('{"id": "../a", "title": "x", "text": "y"}', "outside"),
        ('{"id": "ok", "title": "x", "text": "y"}', "duplicate section id"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path, "bad.jsonl", '{"id": "ok", "title": "fine", "text": "t"}\n' + line + "\n")
    with pytest.raises(ph.MalformedInputError) as info:
        ph.JsonlSource(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert reason in str(info.value)
    assert str(info.value).startswith(f"{path}:2: ")


async def test_callable_source_accepts_sync_and_async_functions() -> None:
    async def afn(sid: str, scope: ph.Scope) -> str:
        return f"async {sid} {scope.tenant}"

    sync_src = ph.CallableSource(lambda sid, scope: f"sync {sid}", ["a", "b"])
    async_src = ph.CallableSource(afn, ["a"], speculative=True)
    assert not sync_src.speculative and async_src.speculative
    assert (await sync_src.hydrate("b", scope=SCOPE)).content == "sync b"
    assert (await async_src.hydrate("a", scope=ph.Scope(tenant="t1"))).content == "async a t1"
    with pytest.raises(ph.UnknownSectionError):
        await sync_src.hydrate("zzz", scope=SCOPE)


async def test_callable_returning_wrong_type_is_a_source_error() -> None:
    src = ph.CallableSource(lambda sid, scope: 42, ["a"])  # type: ignore[arg-type,return-value]
    with pytest.raises(ph.SourceError, match="returned int"):
        await src.hydrate("a", scope=SCOPE)


def test_sources_from_paths(tmp_path: Path, docs: Path) -> None:
    jsonl = write(tmp_path, "s.jsonl", '{"id": "a", "title": "A", "text": "x"}\n')
    kinds = [type(s).__name__ for s in ph.sources_from_paths([docs, jsonl])]
    assert kinds == ["DirectorySource", "JsonlSource"]
    with pytest.raises(ph.ConfigError, match="no such file"):
        ph.sources_from_paths([tmp_path / "nope"])
    with pytest.raises(ph.ConfigError, match="neither a directory"):
        ph.sources_from_paths([write(tmp_path, "x.csv", "a,b")])


def test_bundled_sample_corpus_loads() -> None:
    src = ph.JsonlSource(ph.sample_sections_path())
    assert len(src.list_sections()) >= 40
    assert ph.read_traces(ph.sample_traces_path("test"))
