"""Built-in sources: directory splitting and confinement, JSONL parsing, callables and mocks."""

from __future__ import annotations

import json
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
        "# Refunds\n\nWe refund within 14 days.\n\n## Partial refunds\n\nProrated by the days left in the period.\n\n"
        "```\n# not a heading\n```\n\n## Partial refunds\n\nSecond one, for annual plans billed up front.\n",
    )
    write(root, "notes.txt", "plain text notes\n")
    code = (
        '"""Module doc."""\n\nimport os\n\n\n'
        'def helper(path):\n    """Say where the path lives."""\n    return os.path.dirname(path) or "."\n\n\n'
        "class Thing:\n    def __init__(self, name):\n        self.name = name.strip().lower()\n"
    )
    write(root, "tool.py", code)
    write(root, ".hidden.md", "# secret\n")
    return root


async def test_directory_splits_at_headings_with_stable_ids(docs: Path) -> None:
    src = ph.DirectorySource(docs)
    ids = [s.id for s in src.list_sections()]
    assert ids == [
        "billing/refunds",  # the file opens with its heading: that section has the file's id
        "billing/refunds#partial-refunds",
        "billing/refunds#partial-refunds-2",
        "notes",  # documents drop their suffix
        "tool.py",  # code and data keep it: config.json and config.yaml never collide
        "tool.py#helper",
        "tool.py#Thing",  # code ids keep the identifier as written
    ]
    assert ids == [s.id for s in ph.DirectorySource(docs).list_sections()]
    h = await src.hydrate("billing/refunds#partial-refunds", scope=SCOPE)
    assert h.content.startswith("## Partial refunds") and "Prorated" in h.content
    first = src.list_sections()[0]
    assert first.tags == ("billing",) and first.tokens > 0 and first.summary == "We refund within 14 days."
    assert first.title == "Refunds"
    by_id = {s.id: s for s in src.list_sections()}
    assert by_id["tool.py"].summary == "Module doc."  # a code section's summary is its docstring
    assert by_id["tool.py#helper"].summary == "Say where the path lives."
    assert by_id["tool.py#Thing"].summary == "class Thing:"  # no docstring: its first line


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
    assert "alias" in [s.id for s in src.list_sections()]
    os.remove(root / "alias.md")
    os.symlink(tmp_path / "evil" / "a.md", root / "alias.md")
    with pytest.raises(ph.PathTraversalError):
        await src.hydrate("alias", scope=SCOPE)


def test_directory_skips_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    write(tmp_path, "bad.md", b"# Bad\n\xff\xfe broken\n")
    write(tmp_path, "big.txt", "x" * 2000)
    write(tmp_path, "ok.md", "# Ok\n\nfine\n")
    src = ph.DirectorySource(tmp_path, max_file_bytes=1000)
    assert [s.id for s in src.list_sections()] == ["ok"]
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
        ('{"id": "../a", "title": "x", "text": "y"}', "is not allowed: ids are catalog keys"),
        ('{"id": "ok", "title": "x", "text": "y"}', "duplicate section id"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
        # a lone surrogate escape: valid JSON, not Unicode text (was a UnicodeEncodeError from JsonlSource)
        ('{"id": "a", "title": "x", "text": "bad \\ud800 here"}', "not Unicode text"),
        ('{"id": "a", "title": "x", "text": "y", "tags": ["\\uDFFF"]}', "not Unicode text"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path, "bad.jsonl", '{"id": "ok", "title": "fine", "text": "t"}\n' + line + "\n")
    with pytest.raises(ph.MalformedInputError) as info:
        ph.JsonlSource(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert reason in str(info.value)
    assert str(info.value).startswith(f"{path}:2: ")


def test_surrogate_pairs_and_escaped_backslashes_are_text(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=True) writes an emoji as a surrogate pair escape: that is Unicode text
    line = json.dumps({"id": "a", "title": "rocket \U0001f680", "text": "a \\ud800 literal, not an escape"})
    assert "\\ud83d\\ude80" in line
    (section,) = ph.JsonlSource(write(tmp_path, "ok.jsonl", line + "\n")).list_sections()
    assert section.title == "rocket \U0001f680"


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
    with pytest.raises(ph.ConfigError, match="is not a directory, a .jsonl sections file or a text file"):
        ph.sources_from_paths([write(tmp_path, "x.csv", "a,b")])


async def test_a_single_file_is_a_source_of_its_own(tmp_path: Path) -> None:
    readme = write(tmp_path, "README.md", "# Readme\n\nStart here.\n\n## Install\n\npip install prehydrate for this.\n")
    write(tmp_path, "other.md", "# Other\n\nNot asked for, so not served.\n")
    (src,) = ph.sources_from_paths([readme])
    assert [s.id for s in src.list_sections()] == ["README", "README#install"]
    assert (await src.hydrate("README#install", scope=SCOPE)).content.startswith("## Install")
    with pytest.raises(ph.UnknownSectionError):
        await src.hydrate("other", scope=SCOPE)


def test_bundled_sample_corpus_loads() -> None:
    src = ph.JsonlSource(ph.sample_sections_path())
    assert len(src.list_sections()) >= 40
    assert ph.read_traces(ph.sample_traces_path("test"))


# --------------------------------------------------------------------------------------------------
# Real folders: same-stem files, bad files, code split by definition


def test_same_stem_files_get_distinct_ids_and_never_abort_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "config.json", '{"retries": 3}\n')
    write(tmp_path, "config.yaml", "retries: 3\n")
    write(tmp_path, "x.c", "int main(void) { return 0; }\n")
    write(tmp_path, "x.sh", "#!/bin/sh\necho hello from the shell\n")
    write(tmp_path, "guide.md", "# Guide\n\nRead the guide before you start.\n")
    write(tmp_path, "guide.txt", "The plain-text guide, for terminals without Markdown.\n")
    write(tmp_path, "solo.md", "# Solo\n\nNo other file shares this stem.\n")
    src = ph.DirectorySource(tmp_path)
    ids = [s.id for s in src.list_sections()]
    assert ids == ["config.json", "config.yaml", "guide.md", "guide.txt", "solo", "x.c", "x.sh"]
    assert src.skipped == []
    engine = ph.Engine(sources=[src])  # the catalog accepts them: no duplicate id anywhere
    assert list(engine.catalog.ids) == ids


def test_file_ids_are_unique_by_construction() -> None:
    from prehydrate._splitting import file_ids

    files = ["a.md", "a.markdown", "a.json", "b.json.md", "b.json", "c.txt", "c.rst", "d.md", "e/f.md", "e.md"]
    ids = file_ids(files)
    assert len(set(ids.values())) == len(files)
    assert ids == {
        "a.md": "a.md", "a.markdown": "a.markdown", "a.json": "a.json",  # the two documents clash on 'a'
        "b.json.md": "b.json.md", "b.json": "b.json",  # 'b.json' is taken by the JSON file
        "c.txt": "c.txt", "c.rst": "c.rst", "d.md": "d", "e/f.md": "e/f", "e.md": "e",
    }  # fmt: skip


async def test_one_bad_file_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.md", "# Good\n\nStill served when its neighbours are broken.\n")
    write(tmp_path, "latin1.md", b"# Caf\xe9\n")
    os.symlink("loop.md", tmp_path / "loop.md")  # a symlink to itself
    os.symlink("b.md", tmp_path / "a.md")
    os.symlink("a.md", tmp_path / "b.md")  # a cycle of two
    src = ph.DirectorySource(tmp_path)
    with caplog.at_level("WARNING", logger="prehydrate.sources"):
        ids = [s.id for s in src.list_sections()]
    assert ids == ["good"]
    assert sorted(rel for rel, _ in src.skipped) == ["a.md", "b.md", "latin1.md", "loop.md"]
    for rel in ("a.md", "b.md", "latin1.md", "loop.md"):
        assert any(rel in r.getMessage() for r in caplog.records), rel
    assert (await src.hydrate("good", scope=SCOPE)).content.startswith("# Good")


def test_a_file_whose_ids_another_file_took_is_skipped_naming_both(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "# A\n\nFirst part of a.\n\n## b\n\nThe b heading inside a.md, long enough.\n")
    write(tmp_path, "a#b.md", "# Odd\n\nA file name with a hash sign in it.\n")
    src = ph.DirectorySource(tmp_path)
    assert [s.id for s in src.list_sections()] == ["a#b"]  # 'a#b.md' sorts first and keeps its id
    ((rel, reason),) = src.skipped
    assert rel == "a.md" and reason == "a.md: section id 'a#b' is already taken by a#b.md"


def test_python_split_by_definition_big_classes_by_method(tmp_path: Path) -> None:
    from prehydrate._splitting import MAX_CLASS_TOKENS

    methods = "".join(
        f"    def method_{i}(self, value):\n        \"\"\"Method {i} doubles.\"\"\"\n"
        + "".join(f"        value = value * 2 + {j}  # step {j} of the computation\n" for j in range(12))
        + "        return value\n\n"
        for i in range(12)
    )
    big = f'class Big:\n    """A big class."""\n\n    limit = 3\n\n{methods}'
    assert ph.estimate_tokens(big) > MAX_CLASS_TOKENS
    code = (
        '"""The package\'s entry point: what it exports."""\n\nfrom .tasks import *\n\n\n'
        "def tiny(): pass\n\n\n"
        f"{big}\n\n"
        "@decorated\nasync def handler(request, *, timeout=1.0):\n    return await request.answer(timeout=timeout)\n"
    )
    write(tmp_path, "pkg/__init__.py", code)
    sections = ph.DirectorySource(tmp_path).list_sections()
    ids = [s.id for s in sections]
    assert ids == ["pkg/__init__.py", "pkg/__init__.py#Big"] + [
        f"pkg/__init__.py#Big.method_{i}" for i in range(12)
    ] + ["pkg/__init__.py#handler"]
    by_id = {s.id: s for s in sections}
    head = by_id["pkg/__init__.py"]
    assert head.title == "pkg/__init__.py"  # not "  init  "
    assert head.summary == "The package's entry point: what it exports."
    assert by_id["pkg/__init__.py#Big"].summary == "A big class."
    assert by_id["pkg/__init__.py#Big.method_3"].title == "Big.method_3"
    assert by_id["pkg/__init__.py#Big.method_3"].summary == "Method 3 doubles."
    assert by_id["pkg/__init__.py#handler"].summary == "@decorated"  # decorators belong to their definition
    assert all(s.tokens >= 8 for s in sections)  # `def tiny(): pass` merged into the section before it
    assert "def tiny(): pass" in ph.DirectorySource(tmp_path).list_sections()[0].index_text


def test_markdown_opening_with_a_heading_has_a_file_level_id_and_bare_headings_merge(tmp_path: Path) -> None:
    write(
        tmp_path,
        "getting-started.md",
        "# Getting started\n\nInstall it, then run it.\n\n## Reference\n\n"
        "### Install\n\npip install prehydrate, then try the demo.\n",
    )
    ids = [s.id for s in ph.DirectorySource(tmp_path).list_sections()]
    assert ids == ["getting-started", "getting-started#install"]  # '## Reference' alone is a bare heading


def test_unparsable_python_is_still_split_at_definitions(tmp_path: Path) -> None:
    code = (
        "import os\n\ndef ok(path):\n    return os.path.exists(path) and path\n\n"
        "def bad(:\n    return path or 'a missing parameter'\n"
    )
    write(tmp_path, "broken.py", code)
    ids = [s.id for s in ph.DirectorySource(tmp_path).list_sections()]
    assert ids == ["broken.py", "broken.py#ok", "broken.py#bad"]
