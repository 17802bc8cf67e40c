"""How a folder's files become sections: ids, titles, summaries and boundaries (``DirectorySource``).

The rules, so that an agent and a person can predict an id from a path (docs/sources.md shows them
with examples):

- **File ids are unique by construction.** A document's id (Markdown, ``.txt``, ``.rst``, ``.adoc``)
  is its path relative to the root without the suffix (``guides/billing.md`` -> ``guides/billing``);
  code and data files keep their name (``config.json``, ``config.yaml``, ``asyncio/tasks.py``), so
  files that share a stem never collide. Documents whose short id another file also claims
  (``x.md`` beside ``x.txt``, or ``x.json.md`` beside ``x.json``) keep their suffix too.
- **The start of a file has the file id.** The first section of a Markdown or plain file (the text
  before its first heading, or the first heading's section when the file opens with one) is
  ``guides/billing``; later headings are ``guides/billing#refunds``; a repeated heading gets ``-2``,
  ``-3``. A Python file's id is its head (module docstring, imports, constants).
- **Markdown** is split at ATX headings of levels 1-3 outside fenced code blocks. **Python** is split
  with ``ast`` at top-level ``def``/``class`` (decorators included); a class over
  :data:`MAX_CLASS_TOKENS` becomes its head (``tasks.py#Task``) plus one section per method
  (``tasks.py#Task.cancel``). Code ids keep the identifier as written. Other files are one section.
- **Tiny fragments merge into the section before them**: a heading with no body, a one-line ``def``
  under :data:`MIN_TOKENS` does not get a section of its own.
- **Titles and summaries**: a section's title is its heading or definition name; a file-level code
  section is titled by its file name (``asyncio/__init__.py`` keeps the folder). A Python section's
  summary is the first line of its docstring, else its first line of code.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ._markdown import split_sections
from ._sections import estimate_tokens

__all__ = [
    "CODE_SUFFIXES",
    "DEFAULT_SUFFIXES",
    "MARKDOWN_SUFFIXES",
    "MAX_CLASS_TOKENS",
    "MIN_TOKENS",
    "TEXT_SUFFIXES",
    "Chunk",
    "file_ids",
    "section_ids",
    "split_file",
]

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
TEXT_SUFFIXES = frozenset({".txt", ".rst", ".adoc"})
CODE_SUFFIXES = frozenset({
    ".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".rb", ".php", ".cs", ".swift", ".scala", ".sh", ".sql", ".toml", ".yaml", ".yml", ".json",
})  # fmt: skip
DEFAULT_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | CODE_SUFFIXES
"""What a ``DirectorySource`` lists unless told otherwise."""

MIN_TOKENS = 8
"""A fragment below this many tokens (a bare heading, ``def f(): pass``) merges into the one before."""

MAX_CLASS_TOKENS = 1500
"""A Python class above this many tokens is split into its head and one section per method."""

_PY_TOP = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One section of a file before it gets its id: ``anchor`` None means the file id itself."""

    anchor: str | None
    title: str
    text: str
    summary: str | None = None
    """One line for the stub; None lets the source take the text's first line."""


def _is_prose(rel: str) -> bool:
    return PurePosixPath(rel).suffix.lower() in MARKDOWN_SUFFIXES | TEXT_SUFFIXES


def _short_id(rel: str) -> str:
    if not _is_prose(rel):
        return rel
    path = PurePosixPath(rel)
    return str(path.with_suffix("")) if path.stem else rel


def file_ids(files: Iterable[str]) -> dict[str, str]:
    """The id of each file (root-relative, ``/``-separated paths), unique by construction.

    Documents drop their suffix unless that short id is claimed by another file (as its short id or
    its full path); every other file keeps its full name. Full paths are unique, so the result is.
    """
    files = list(files)
    shorts = {rel: _short_id(rel) for rel in files}
    claims = Counter(shorts.values())
    full = set(files)
    out: dict[str, str] = {}
    for rel, short in shorts.items():
        clash = claims[short] > 1 or (short != rel and short in full)
        out[rel] = rel if clash else short
    return out


def section_ids(file_id: str, chunks: Sequence[Chunk]) -> list[tuple[str, Chunk]]:
    """Pair each chunk with its section id: ``file_id`` or ``file_id#anchor``, repeats numbered."""
    out: list[tuple[str, Chunk]] = []
    used: Counter[str] = Counter()
    for chunk in chunks:
        sid = file_id if chunk.anchor is None else f"{file_id}#{chunk.anchor}"
        used[sid] += 1
        out.append((sid if used[sid] == 1 else f"{sid}-{used[sid]}", chunk))
    return out


def _slug(text: str) -> str:
    slug = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[\s_-]+", "-", slug) or "section"


def _file_title(rel: str, root_name: str) -> str:
    path = PurePosixPath(rel)
    if _is_prose(rel):
        return path.stem.replace("-", " ").replace("_", " ").strip() or path.name
    if path.stem in ("__init__", "__main__"):  # the package's name says more than the file's
        package = path.parent.name or root_name
        return f"{package}/{path.name}" if package else path.name
    return path.name


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def _merge_tiny(chunks: list[Chunk]) -> list[Chunk]:
    """Fold fragments under :data:`MIN_TOKENS` into the chunk before them (never the first chunk)."""
    out: list[Chunk] = []
    for chunk in chunks:
        if out and estimate_tokens(chunk.text) < MIN_TOKENS:
            prev = out[-1]
            out[-1] = Chunk(prev.anchor, prev.title, prev.text + "\n" + chunk.text, prev.summary)
        else:
            out.append(chunk)
    return out


def _split_markdown(text: str, file_title: str) -> list[Chunk]:
    """Split at ATX headings (levels 1-3) outside fenced code blocks (``core/_markdown.py``'s rules)."""
    lines = text.splitlines(keepends=True)
    chunks: list[Chunk] = []
    for part in split_sections(text.splitlines(), max_level=3):
        body = "".join(lines[part.start : part.end])
        if not body.strip():
            continue
        title = (part.heading or "").strip()
        anchor = None if not chunks else _slug(title)
        chunks.append(Chunk(anchor, title or file_title, body.strip("\n") + "\n"))
    return chunks


def _lines(lines: Sequence[str], start: int, end: int) -> str:
    """Lines ``start``..``end`` (0-based, end exclusive), trimmed of blank edges, newline-terminated."""
    return "".join(lines[start:end]).strip("\n") + "\n"


def _start(node: ast.stmt) -> int:
    """0-based first line of a definition, decorators included."""
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)]) - 1


def _summary(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, text: str) -> str | None:
    """The first line of the node's docstring, else the first line of its code."""
    doc = ast.get_docstring(node)
    if doc and doc.strip():
        return doc.strip().splitlines()[0].strip()
    return _first_line(text)


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _split_class(node: ast.ClassDef, lines: Sequence[str], end: int) -> list[Chunk]:
    """A big class: its head (up to the first method) plus one chunk per method (``Class.method``)."""
    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not methods:
        text = _lines(lines, _start(node), end)
        return [Chunk(node.name, node.name, text, _summary(node, text))]
    bounds = [_start(m) for m in methods] + [end]
    head = _lines(lines, _start(node), bounds[0])
    chunks = [Chunk(node.name, node.name, head, _summary(node, head))]
    for method, stop in zip(methods, bounds[1:], strict=True):
        text = _lines(lines, _start(method), stop)
        name = f"{node.name}.{method.name}"
        chunks.append(Chunk(name, name, text, _summary(method, text)))
    return chunks


def _split_python(text: str, file_title: str) -> list[Chunk]:
    """Split at top-level definitions with ``ast``; big classes by method. Unparsable code: by regex."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _split_python_lines(text, file_title)
    lines = text.splitlines(keepends=True)
    defs = [n for n in tree.body if isinstance(n, _DEFS)]
    bounds = [_start(n) for n in defs] + [len(lines)]
    chunks: list[Chunk] = []
    head = "".join(lines[: bounds[0]])
    if head.strip():
        chunks.append(Chunk(None, file_title, head.strip("\n") + "\n", _summary(tree, head)))
    for node, end in zip(defs, bounds[1:], strict=True):
        body = _lines(lines, _start(node), end)
        if isinstance(node, ast.ClassDef) and estimate_tokens(body) > MAX_CLASS_TOKENS:
            chunks.extend(_split_class(node, lines, end))
        else:
            chunks.append(Chunk(node.name, node.name, body, _summary(node, body)))
    return chunks


def _split_python_lines(text: str, file_title: str) -> list[Chunk]:
    """Fallback for files ``ast`` cannot parse: split at lines that start a top-level definition."""
    parts: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        m = _PY_TOP.match(line)
        if m:
            parts.append((m.group(1), [line]))
        else:
            parts[-1][1].append(line)
    chunks: list[Chunk] = []
    for name, part in parts:
        body = "".join(part)
        if body.strip():
            chunks.append(Chunk(name, name or file_title, body.strip("\n") + "\n", _first_line(body)))
    return chunks


def split_file(rel: str, text: str, *, root_name: str = "") -> list[Chunk]:
    """The chunks of one file (``rel``: its root-relative path), in document order.

    ``root_name`` (the folder served) names the package of a top-level ``__init__.py``.

    A Markdown or plain file's first chunk is the file-level one (``anchor`` None); a Python file's
    is its head (docstring, imports) when it has one.
    """
    suffix = PurePosixPath(rel).suffix.lower()
    title = _file_title(rel, root_name)
    if suffix in MARKDOWN_SUFFIXES:
        chunks = _split_markdown(text, title)
    elif suffix == ".py":
        chunks = _split_python(text, title)
    else:
        chunks = [Chunk(None, title, text)] if text.strip() else []
    return _merge_tiny(chunks)
