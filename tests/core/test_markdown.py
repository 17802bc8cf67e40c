"""One reading of Markdown for the compiler and ``DirectorySource``: fences and headings agree."""

from __future__ import annotations

from pathlib import Path

import prehydrate as ph
from prehydrate._markdown import fenced_lines, heading, split_sections

# Every line here is one the two splitters once read differently: a heading indented by up to three
# spaces, a backtick fence inside a tilde fence (with a "heading" in it), closing hashes, a level-4
# heading, "#" without a space, a heading indented as code, and Windows line ends.
TRICKY = (
    "Intro text before any heading, long enough to stand alone.\r\n"
    "\r\n"
    "  # Indented heading\r\n"
    "Body one has enough words in it to stand as a section.\r\n"
    "\r\n"
    "~~~markdown\r\n"
    "```\r\n"
    "# inside the tilde fence\r\n"
    "```\r\n"
    "~~~\r\n"
    "\r\n"
    "## Closing hashes ##\r\n"
    "Body two has enough words in it to stand as a section.\r\n"
    "\r\n"
    "#### Level four\r\n"
    "Body four has enough words in it to stand as a section.\r\n"
    "#no-space is not a heading\r\n"
    "    # four spaces is code, not a heading\r\n"
    "\r\n"
    "### Last\r\n"
    "Body three has enough words in it to stand as a section.\r\n"
)


def test_fences_and_headings_follow_commonmark() -> None:
    lines = TRICKY.replace("\r\n", "\n").split("\n")
    fenced = fenced_lines(lines)
    assert [n for n, inside in enumerate(fenced) if inside] == [5, 6, 7, 8, 9]  # ~~~ ... ~~~ only
    assert heading("  # Indented heading") == (1, "Indented heading")
    assert heading("## Closing hashes ##") == (2, "Closing hashes")
    assert heading("#no-space") is None and heading("    # code") is None
    parts = split_sections(lines, max_level=3)
    assert [(p.heading, p.level, p.start) for p in parts] == [
        (None, 0, 0),
        ("Indented heading", 1, 2),
        ("Closing hashes", 2, 11),
        ("Last", 3, 19),
    ]
    assert parts[-1].end == len(lines) and all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))


def test_the_compiler_and_directory_source_cut_a_tricky_document_alike(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_bytes(TRICKY.encode("utf-8"))
    sections = ph.DirectorySource(tmp_path).list_sections()
    assert [(s.id, s.title) for s in sections] == [
        ("doc", "doc"),
        ("doc#indented-heading", "Indented heading"),
        ("doc#closing-hashes", "Closing hashes"),  # the level-4 heading stays inside this one
        ("doc#last", "Last"),
    ]
    chunks = ph.compile_context(TRICKY).manifest["chunks"]
    assert isinstance(chunks, list)
    assert [(c["heading"], c["level"]) for c in chunks] == [
        ("", 0),
        ("Indented heading", 1),
        ("Closing hashes", 2),
        ("Level four", 4),  # the compiler cuts at all six levels, DirectorySource at three
        ("Last", 3),
    ]
    text = ph.compile_context(TRICKY).text
    assert "```\n# inside the tilde fence\n```" in text and text.endswith("section.\n")
