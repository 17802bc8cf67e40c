"""The ahead-of-time context compiler: a master prompt in, a byte-stable, cache-friendly prefix out.

Long system prompts lose their definitions with distance: a term defined in a glossary at the top is
used two thousand tokens later, where the model no longer connects the two. Rewriting the prompt at
run time would fix that but breaks prompt/KV caching, because every rewrite changes the prefix. The
compiler does the rewrite once, before the system goes live:

1. The prompt is cut into chunks at its Markdown headings, and large chunks again at paragraph
   boundaries (``max_chunk_tokens``).
2. Every glossary term gets a deterministic identifier (``D1``, ``D2``, ... in order of first
   appearance) that is checked not to occur anywhere in the input. At a term's first occurrence its
   full definition is injected inline as ``<def id="D1" term="...">...</def>``; every later occurrence
   carries the identifier: ``refund window<D1/>`` (``alias_style="natural"``) or just ``<D1/>``
   (``alias_style="abstract"``). Headings, code, links and markup are never rewritten.
3. Sections are inlined in document order while the token budget allows; the rest become stubs
   (id, title, approximate tokens, one-line summary) under one instruction to call
   ``request_context``. The stubs are the catalog the predictors rank.
4. The output carries no time, path or hash-seed dependent byte: the same inputs give the same bytes
   in any process. Run-time state (prefetching, cache contents) is not an input, so it can never
   change the prefix.

Without a glossary, definitions written in the prompt as ``**Term**: definition`` (or
``**Term:** definition``) lines or as a Markdown definition list (``Term`` then ``: definition``) are
detected, removed from where they stand and injected at the term's first use instead.

Example:
    >>> import prehydrate as ph
    >>> cc = ph.compile_context(
    ...     "# Rules\\nCheck the SLA first.\\n\\n# Escalation\\nBreaching the SLA means escalate.",
    ...     glossary={"SLA": "Service level agreement: reply within 4 hours."},
    ... )
    >>> print(cc.text)
    # Rules
    Check the SLA <def id="D1" term="SLA">Service level agreement: reply within 4 hours.</def> first.
    <BLANKLINE>
    # Escalation
    Breaching the SLA<D1/> means escalate.
    <BLANKLINE>
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Literal, cast

from ._errors import ConfigError, InputError, MalformedInputError
from ._markdown import fenced_lines, is_heading, split_sections
from ._sections import Section, estimate_tokens, one_line_summary
from ._text import check_text, read_text, text_counts, tokens_from_counts, utf8

__all__ = [
    "CompiledContext",
    "GlossaryError",
    "compile_context",
    "load_glossary",
]

AliasStyle = Literal["natural", "abstract"]

MANIFEST_FORMAT = "prehydrate.compiled/1"
"""Version tag of the manifest layout; bumped only for incompatible changes."""

STUBS_HEADING = "## Sections available on request"
STUBS_INSTRUCTION = (
    'These sections are not in this prompt; call `request_context(section="<id>")` to read one when the task needs it.'
)
INLINED_HEADING = "## Context sections"
TASK_HEADING = "## Current task"

_MAX_TERM_CHARS = 200

_BOLD_DEF = re.compile(
    r"^[ \t]*(?:[-*+][ \t]+)?\*\*(?P<term>[^*\n]+?)(?::\*\*|\*\*[ \t]*:)[ \t]*(?P<definition>\S.*?)[ \t]*$"
)
_DEFLIST_ITEM = re.compile(r"^:[ \t]+(?P<definition>\S.*?)[ \t]*$")
_CONTINUATION = re.compile(r"^(?: {2,}|\t)(?![ \t]*(?:[-*+]|\d+[.)])[ \t])[ \t]*(?P<text>\S.*?)[ \t]*$")
# Spans that are never rewritten: inline code, link targets, bare URLs and XML/HTML tags.
_INLINE_MASKS = re.compile(
    r"`[^`\n]+`"
    r"|\]\([^)\n]*\)"
    r"|https?://[^\s)>\]]+"
    r"|</?[A-Za-z][^<>\n]*>"
)
_EMPHASIS_CLOSER = re.compile(r"[*_]{1,3}")
_WS = re.compile(r"\s+")


class GlossaryError(InputError):
    """A glossary is unusable: wrong shape, an empty or duplicate term, or a term the prompt never uses.

    ``terms`` names the offending terms so a caller can point at them.
    """

    def __init__(self, message: str, *, terms: Sequence[str] = ()) -> None:
        self.terms = tuple(terms)
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledContext:
    """The result of :func:`compile_context`: the prefix, its hash and what went into it."""

    text: str
    """The compiled prefix, byte-stable for the same inputs; put it first in the system prompt."""
    sha256: str
    """SHA-256 (hex) of ``text`` encoded as UTF-8."""
    manifest: dict[str, object] = field(repr=False)
    """JSON-able record of chunks, terms, identifiers, inlined sections and stubs."""
    stubs: tuple[Section, ...] = ()
    """Sections present only as stubs, in document order: the catalog predictors rank."""
    inlined: tuple[str, ...] = ()
    """Ids of the sections whose full content is in ``text``, in document order."""
    tokens: int = 0
    """Approximate tokens of ``text``."""

    def manifest_json(self) -> str:
        """The manifest as deterministic JSON text (2-space indent, trailing newline)."""
        return json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------
# Glossary loading and definition detection


def load_glossary(path: str | PathLike[str]) -> dict[str, str]:
    """Read a glossary file: one JSON object mapping each term to its definition.

    Errors name the file so a user running ``prehydrate compile`` knows which input to fix.

    Args:
        path: The JSON file.

    Returns:
        The terms and definitions, in file order.

    Raises:
        GlossaryError: The file is missing or unreadable, or is not an object of non-empty strings.
        MalformedInputError: The file is not valid JSON; ``.line`` is the line of the first error.
    """
    name = str(path)
    try:
        raw = read_text(path, "glossary file")
    except InputError as exc:
        raise GlossaryError(str(exc)) from exc
    try:
        data: object = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedInputError(name, exc.lineno, f"invalid JSON in glossary: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise GlossaryError(
            f"glossary file {name} must hold a JSON object mapping term to definition, not a JSON {_json_type(data)}"
        )
    glossary: dict[str, str] = {}
    for term, definition in data.items():
        if not isinstance(definition, str):
            raise GlossaryError(
                f"glossary file {name}: the definition of {term!r} must be a string, "
                f"not a JSON {_json_type(definition)}",
                terms=[term],
            )
        glossary[term] = definition
    _validated_glossary(glossary, origin=f"glossary file {name}")
    return glossary


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string" if isinstance(value, str) else type(value).__name__


def _validated_glossary(glossary: Mapping[str, str], *, origin: str) -> list[tuple[str, str]]:
    """Normalise whitespace and refuse empty, oversized, duplicate or tag-breaking entries."""
    entries: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for raw_term, raw_definition in glossary.items():
        if not isinstance(raw_term, str) or not isinstance(raw_definition, str):
            raise GlossaryError(f"{origin}: terms and definitions must be strings, got {raw_term!r}")
        try:
            term = _WS.sub(" ", check_text(raw_term, f"{origin}: a term")).strip()
            definition = _WS.sub(" ", check_text(raw_definition, f"{origin}: the definition of {term!r}")).strip()
        except InputError as exc:  # a lone surrogate: the compiled text could not be written as UTF-8
            raise GlossaryError(str(exc), terms=[raw_term]) from exc
        if not term:
            raise GlossaryError(f"{origin}: a term is empty", terms=[raw_term])
        if len(term) > _MAX_TERM_CHARS:
            raise GlossaryError(f"{origin}: the term {term[:40]!r}... is over {_MAX_TERM_CHARS} characters")
        if not definition:
            raise GlossaryError(f"{origin}: the definition of {term!r} is empty", terms=[term])
        if "<def" in definition or "</def" in definition:
            raise GlossaryError(
                f"{origin}: the definition of {term!r} contains a <def> tag, which would break the "
                "compiled definition tags",
                terms=[term],
            )
        key = term.casefold()
        if key in seen:
            raise GlossaryError(
                f"{origin}: the terms {seen[key]!r} and {term!r} differ only in case or spacing",
                terms=[seen[key], term],
            )
        seen[key] = term
        entries.append((term, definition))
    return entries


@dataclass(frozen=True, slots=True)
class _Detected:
    term: str
    definition: str
    lines: tuple[int, ...]
    """0-based prompt lines the definition occupies (removed when the term is used elsewhere)."""


def _detect_definitions(lines: Sequence[str], fenced: Sequence[bool]) -> list[_Detected]:
    """Find ``**Term**: definition`` lines and Markdown definition lists outside code blocks."""
    found: list[_Detected] = []
    i = 0
    while i < len(lines):
        if fenced[i] or is_heading(lines[i]):
            i += 1
            continue
        bold = _BOLD_DEF.match(lines[i])
        if bold:
            parts = [bold.group("definition")]
            used = [i]
            j = i + 1
            while j < len(lines) and not fenced[j] and (cont := _CONTINUATION.match(lines[j])):
                parts.append(cont.group("text"))
                used.append(j)
                j += 1
            found.append(_Detected(bold.group("term").strip(), " ".join(parts), tuple(used)))
            i = j
            continue
        line = lines[i].strip()
        if (
            line
            and i + 1 < len(lines)
            and not fenced[i + 1]
            and _DEFLIST_ITEM.match(lines[i + 1])
            and not line.startswith((":", "-", "*", "+", ">", "|"))
        ):
            parts = []
            used = [i]
            j = i + 1
            while j < len(lines) and not fenced[j]:
                item = _DEFLIST_ITEM.match(lines[j])
                cont = _CONTINUATION.match(lines[j]) if len(used) > 1 else None
                if item:
                    parts.append(item.group("definition"))
                elif cont:
                    parts.append(cont.group("text"))
                else:
                    break
                used.append(j)
                j += 1
            found.append(_Detected(line.strip("*_ "), " ".join(parts), tuple(used)))
            i = j
            continue
        i += 1
    return found


# --------------------------------------------------------------------------------------------------
# Chunking


@dataclass(frozen=True, slots=True)
class _Chunk:
    kind: Literal["prompt", "section"]
    heading: str
    level: int
    part: int
    text: str
    section_id: str | None = None


def _chunk_prompt(lines: Sequence[str], fenced: Sequence[bool], removed: set[int], max_tokens: int) -> list[_Chunk]:
    """Cut the prompt at headings, then cut long chunks at blank lines outside code blocks.

    ``removed`` lines (definitions moved to their first use) are left out before the cut, so they
    never start a chunk; a heading whose whole body was such definitions has nothing left to say
    and is dropped with them.
    """
    kept = [n for n in range(len(lines)) if n not in removed]
    parts = split_sections([lines[n] for n in kept])
    bounds = [0, *(kept[p.start] for p in parts[1:]), len(lines)]
    chunks: list[_Chunk] = []
    for part, first, stop in zip(parts, bounds[:-1], bounds[1:], strict=True):
        body = [(lines[kept[i]], fenced[kept[i]]) for i in range(part.start, part.end)]
        paragraphs = _paragraphs(body)
        lost = any(first <= n < stop for n in removed)
        if not paragraphs or (lost and _is_bare_heading("\n".join(paragraphs))):
            continue
        chunks.extend(_cut(part.heading or "", part.level, paragraphs, max_tokens))
    return chunks


def _cut(heading: str, level: int, paragraphs: Sequence[str], max_tokens: int) -> list[_Chunk]:
    """One heading's paragraphs as chunks of at most ``max_tokens`` (a longer paragraph stays whole)."""
    parts: list[list[str]] = [[]]
    for paragraph in paragraphs:
        current = "\n\n".join(parts[-1] + [paragraph])
        if parts[-1] and estimate_tokens(current) > max_tokens:
            parts.append([paragraph])
        else:
            parts[-1].append(paragraph)
    return [_Chunk("prompt", heading, level, number, "\n\n".join(part)) for number, part in enumerate(parts, start=1)]


def _paragraphs(body: Sequence[tuple[str, bool]]) -> list[str]:
    """Blank-line separated paragraphs; code blocks stay whole and keep their inner blank lines."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line, in_fence in body:
        if not in_fence and not line.strip():
            if current:
                paragraphs.append("\n".join(current).rstrip())
                current = []
            continue
        current.append(line.rstrip())
    if current:
        paragraphs.append("\n".join(current).rstrip())
    return paragraphs


# --------------------------------------------------------------------------------------------------
# Term matching


@dataclass(frozen=True, slots=True)
class _Term:
    term: str
    definition: str
    origin: Literal["glossary", "prompt"]


class _Matcher:
    """One regex for all terms: longest term first, acronyms case-sensitive, plurals allowed.

    Word boundaries are letters and digits only, so ``__SLA__`` (Markdown emphasis) still matches.
    """

    def __init__(self, terms: Sequence[_Term]) -> None:
        self.terms = list(terms)
        # Longest first so "refund window" wins over "refund"; the term text breaks ties so the
        # pattern does not depend on the order the glossary came in.
        ranked = sorted(range(len(terms)), key=lambda i: (-len(terms[i].term), terms[i].term))
        alternatives = []
        for i in ranked:
            words = [re.escape(w) for w in terms[i].term.split(" ")]
            # Words of a term may wrap onto the next line, but never across a blank line: a term
            # split over two paragraphs is not a use of it (and size-cut chunks end at blank lines).
            body = r"(?:[^\S\n]+|[^\S\n]*\n[^\S\n]*)".join(words)
            acronym = terms[i].term.upper() == terms[i].term and any(c.isalpha() for c in terms[i].term)
            alternatives.append(f"(?P<t{i}>{body if acronym else f'(?i:{body})'})")
        self.pattern: re.Pattern[str] | None = (
            re.compile(r"(?<![^\W_])(?:" + "|".join(alternatives) + r")(?i:e?s)?(?![^\W_])") if terms else None
        )

    def finditer(self, text: str) -> Iterator[tuple[int, int, int]]:
        """Yield ``(term index, start, end)`` for every occurrence outside masked spans."""
        if self.pattern is None:
            return
        masks = _masked_spans(text)
        k = 0
        for match in self.pattern.finditer(text):
            start, end = match.span()
            while k < len(masks) and masks[k][1] <= start:
                k += 1
            if k < len(masks) and masks[k][0] < end:
                continue
            name = match.lastgroup
            assert name is not None
            yield int(name[1:]), start, end


def _masked_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, merged spans never rewritten: headings, fenced code, inline code, links, tags."""
    spans: list[tuple[int, int]] = []
    lines = text.split("\n")
    fenced = fenced_lines(lines)
    offset = 0
    for line, in_fence in zip(lines, fenced, strict=True):
        if in_fence or is_heading(line):
            spans.append((offset, offset + len(line)))
        offset += len(line) + 1
    spans.extend(m.span() for m in _INLINE_MASKS.finditer(text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _choose_prefix(count: int, corpus: str) -> tuple[str, list[str]]:
    """The first identifier prefix whose identifiers ``P1..Pcount`` occur nowhere in the input.

    Candidates come in a fixed order (``D``, ``DQ``, ``DQQ``, ...) so the choice is deterministic;
    the loop ends because the input is finite.
    """
    rejected: list[str] = []
    prefix = "D"
    while True:
        if all(f"{prefix}{n}" not in corpus for n in range(1, count + 1)):
            return prefix, rejected
        rejected.append(prefix)
        prefix = "D" + "Q" * len(rejected)


# --------------------------------------------------------------------------------------------------
# Rendering


@dataclass(slots=True)
class _TermState:
    ident: str
    first_chunk: int | None = None
    occurrences: int = 0


def _rewrite(
    text: str,
    matcher: _Matcher,
    states: Mapping[int, _TermState],
    alias_style: AliasStyle,
    defined: dict[int, int],
    chunk_index: int,
) -> tuple[str, list[str], dict[str, int]]:
    """Inject definitions at first occurrences and identifier tags at later ones.

    ``defined`` maps term index to the chunk holding its definition and is updated in place, so
    rendering chunks in document order places each definition exactly once.
    """
    out: list[str] = []
    pos = 0
    defines: list[str] = []
    aliases: dict[str, int] = {}
    for index, start, end in matcher.finditer(text):
        state = states.get(index)
        if state is None:
            continue
        term = matcher.terms[index]
        out.append(text[pos:start])
        word = text[start:end]
        if index not in defined:
            defined[index] = chunk_index
            defines.append(state.ident)
            # Keep Markdown emphasis whole: "**SLA**" becomes "**SLA** <def ...>", not "**SLA <def>**".
            closer = _EMPHASIS_CLOSER.match(text, end)
            if closer and text[:start].endswith(closer.group()):
                word += closer.group()
                end = closer.end()
            attr = html.escape(term.term, quote=True)
            out.append(f'{word} <def id="{state.ident}" term="{attr}">{term.definition}</def>')
        else:
            aliases[state.ident] = aliases.get(state.ident, 0) + 1
            out.append(f"{word}<{state.ident}/>" if alias_style == "natural" else f"<{state.ident}/>")
        pos = end
    out.append(text[pos:])
    return "".join(out), defines, aliases


def _one_line(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _stub_line(section: Section, content: str | None) -> str:
    tokens = section.tokens or (estimate_tokens(content) if content is not None else 0)
    summary = _one_line(section.summary or (one_line_summary(content) if content is not None else ""))
    size = f" (~{tokens} tokens)" if tokens else ""
    title = _one_line(section.title) or section.id
    return f"- [{section.id}] {title}{size}" + (f": {summary}" if summary else "")


def _stubs_block(lines: Sequence[str]) -> str:
    return "\n".join([STUBS_HEADING, "", STUBS_INSTRUCTION, "", *lines])


def _section_block(section: Section, rewritten: str) -> str:
    attr_id = html.escape(section.id, quote=True)
    attr_title = html.escape(_one_line(section.title), quote=True)
    return f'<section id="{attr_id}" title="{attr_title}">\n{rewritten.strip()}\n</section>'


def _task_block(task: str | None, query: str | None) -> str:
    lines = [TASK_HEADING, ""]
    if task is not None:
        lines.append(f"Task: {_one_line(task)}")
    if query is not None:
        lines.append(f"Query: {_one_line(query)}")
    return "\n".join(lines)


def _sha256(text: str) -> str:
    return hashlib.sha256(utf8(text)).hexdigest()


# --------------------------------------------------------------------------------------------------
# The compiler


def compile_context(
    prompt: str | None = None,
    *,
    glossary: Mapping[str, str] | None = None,
    sections: Sequence[Section] = (),
    contents: Mapping[str, str] | None = None,
    budget_tokens: int | None = None,
    alias_style: AliasStyle = "natural",
    task: str | None = None,
    query: str | None = None,
    max_chunk_tokens: int = 400,
    strict: bool = True,
) -> CompiledContext:
    """Compile a master prompt, a glossary and a catalog of sections into a byte-stable prefix.

    The output depends only on the arguments (never on time, paths, dict order or the hash seed),
    so an inference engine can keep it in its prompt/KV cache for the lifetime of a deployment.

    Args:
        prompt: The human-readable master prompt (Markdown). ``None`` compiles only the catalog:
            the inlined sections and the stubs block.
        glossary: Term -> definition. Without it, ``**Term**: definition`` lines and Markdown
            definition lists in the prompt are used (and moved to each term's first use).
        sections: The catalog, in any order; it is sorted by ``Section.order`` then ``id``.
        contents: Section id -> full content. Sections with content are inlined in document order
            while the budget allows; the first that does not fit and every later one become stubs.
            Without contents every section is a stub.
        budget_tokens: Upper bound on the approximate tokens of the static prefix (everything but
            the task block, which must not change what is inlined); ``None`` means no bound.
        alias_style: ``"natural"`` keeps the word and adds the tag (``SLA<D1/>``); ``"abstract"``
            replaces later occurrences by the tag alone (``<D1/>``).
        task: The task (type or description), rendered in a short block at the very end so the
            bytes before it stay identical, and cacheable, across tasks.
        query: The user's query, rendered in the same closing block.
        max_chunk_tokens: Chunks longer than this are cut again at paragraph boundaries.
        strict: Refuse glossary terms that never occur in the prompt. With ``False`` they are
            listed in the manifest under ``unused_terms`` instead.

    Returns:
        The compiled prefix with its SHA-256, manifest, stubs and inlined section ids.

    Raises:
        GlossaryError: Bad glossary entries, a term defined twice in the prompt, or (strict) terms
            the prompt never uses.
        ConfigError: Invalid arguments, or a budget smaller than the prompt and the stubs alone.
        InputError: Duplicate section ids or contents for sections not in ``sections``.

    Example:
        >>> cc = compile_context("Refunds follow the window.", glossary={"window": "30 days."})
        >>> cc.text
        'Refunds follow the window <def id="D1" term="window">30 days.</def>.\\n'
    """
    options = _Options(alias_style, budget_tokens, max_chunk_tokens, strict)
    _check_texts(prompt, contents, task, query)
    return _compile(prompt, glossary, sections, dict(contents or {}), options, task, query)


def _check_texts(prompt: str | None, contents: Mapping[str, str] | None, task: str | None, query: str | None) -> None:
    """Refuse a lone surrogate in any text argument: the prefix must be UTF-8 bytes a model can read."""
    for where, text in (("prompt", prompt), ("task", task), ("query", query)):
        if isinstance(text, str):
            check_text(text, where)
    for section_id, content in (contents or {}).items():
        if isinstance(content, str):
            check_text(content, f"contents[{section_id!r}]")


@dataclass(frozen=True, slots=True)
class _Options:
    """The options of :func:`compile_context`, checked; the manifest records them as given."""

    alias_style: AliasStyle
    budget_tokens: int | None
    max_chunk_tokens: int
    strict: bool

    def __post_init__(self) -> None:
        if self.alias_style not in ("natural", "abstract"):
            raise ConfigError(f"alias_style must be 'natural' or 'abstract', not {self.alias_style!r}")
        if self.max_chunk_tokens < 1:
            raise ConfigError(f"max_chunk_tokens must be at least 1, not {self.max_chunk_tokens}")
        if self.budget_tokens is not None and self.budget_tokens < 0:
            raise ConfigError(f"budget_tokens must not be negative, not {self.budget_tokens}")

    def record(self) -> dict[str, object]:
        return {
            "alias_style": self.alias_style,
            "budget_tokens": self.budget_tokens,
            "max_chunk_tokens": self.max_chunk_tokens,
            "strict": self.strict,
        }


def _compile(
    prompt: str | None,
    glossary: Mapping[str, str] | None,
    sections: Sequence[Section],
    contents: dict[str, str],
    options: _Options,
    task: str | None,
    query: str | None,
) -> CompiledContext:
    """The phases: catalog, prompt and terms, identifiers, prompt render, inlining, assembly, manifest."""
    budget_tokens = options.budget_tokens
    ordered = _ordered_catalog(sections, contents)
    text = (prompt or "").replace("\r\n", "\n").replace("\r", "\n")
    terms, chunks = _prompt_terms(text, glossary, options.max_chunk_tokens, options.strict)
    build = _Build(ordered=ordered, contents=contents, terms=terms, chunks=chunks, alias_style=options.alias_style)
    ident = _identifiers(build, text)
    build.render_prompt()
    blocks, section_records, final_defined = (
        build.inline_all() if budget_tokens is None else build.inline_within(budget_tokens)
    )
    k, static, stub_lines = build.assemble_within(blocks, budget_tokens)
    if k < len(blocks):
        del blocks[k:], section_records[k:]
        final_defined = {i: c for i, c in final_defined.items() if c < len(chunks) + k}
    closing = _task_block(task, query) if task is not None or query is not None else None
    full = static if closing is None else static + ("\n" if static else "") + closing + "\n"
    inlined = tuple(s.id for s in build.content_sections[:k])
    stubs = tuple(s for s in ordered if s.id not in set(inlined))
    records = build.chunk_records + section_records
    manifest: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        **_size_stats(full, static),
        "tokens_before": {
            "prompt": estimate_tokens(text),
            "definitions": sum(estimate_tokens(t.definition) for t in terms) if glossary is not None else 0,
            "sections": sum(estimate_tokens(contents[s.id]) for s in build.content_sections),
        },
        "options": options.record(),
        "identifiers": ident.record,
        "chunks": records,
        "terms": _term_records(build, ident.first_seen, final_defined, records),
        "unused_terms": sorted(
            (t.term for i, t in enumerate(terms) if i not in build.states), key=lambda t: (t.casefold(), t)
        ),
        "inlined": [
            {"id": s.id, "title": s.title, "tokens": estimate_tokens(contents[s.id])}
            for s in build.content_sections[:k]
        ],
        "stubs": [{"id": s.id, "title": s.title, "line": line} for s, line in zip(stubs, stub_lines, strict=True)],
        "task": {"task": task, "query": query} if closing is not None else None,
    }
    return CompiledContext(
        text=full, sha256=_sha256(full), manifest=manifest, stubs=stubs, inlined=inlined, tokens=estimate_tokens(full)
    )


def _ordered_catalog(sections: Sequence[Section], contents: Mapping[str, str]) -> list[Section]:
    """The catalog in document order; duplicate ids and contents of unknown sections are input errors."""
    ordered = sorted(sections, key=lambda s: (s.order, s.id))
    ids = [s.id for s in ordered]
    seen_ids: set[str] = set()
    repeated: set[str] = set()
    for section_id in ids:
        (repeated if section_id in seen_ids else seen_ids).add(section_id)
    duplicates = sorted(repeated)
    if duplicates:
        raise InputError(f"duplicate section ids: {', '.join(duplicates)}")
    strays = sorted(set(contents) - set(ids))
    if strays:
        raise InputError(f"contents given for sections not in the catalog: {', '.join(strays)}")
    return ordered


def _prompt_terms(
    text: str, glossary: Mapping[str, str] | None, max_chunk_tokens: int, strict: bool
) -> tuple[list[_Term], list[_Chunk]]:
    """The glossary terms and the prompt's chunks; (strict) a term the prompt never uses is an error."""
    lines = text.split("\n") if text else []
    fenced = fenced_lines(lines)
    removed: set[int] = set()
    terms: list[_Term]
    if glossary is not None:
        entries = _validated_glossary(glossary, origin="glossary")
        terms = [_Term(t, d, "glossary") for t, d in entries]
    else:
        terms, removed = _terms_from_prompt(lines, fenced)
    chunks = _chunk_prompt(lines, fenced, removed, max_chunk_tokens)
    matcher = _Matcher(terms)
    in_prompt = {index for chunk in chunks for index, _, _ in matcher.finditer(chunk.text)}
    missing = sorted((t.term for i, t in enumerate(terms) if i not in in_prompt), key=lambda t: (t.casefold(), t))
    if missing and strict:
        listed = ", ".join(repr(t) for t in missing)
        raise GlossaryError(
            f"unknown glossary term{'s' if len(missing) > 1 else ''} {listed}: never used in the prompt "
            "text (headings, code and links are not searched); remove "
            f"{'them' if len(missing) > 1 else 'it'} or pass strict=False (CLI: --no-strict)",
            terms=missing,
        )
    return terms, chunks


@dataclass(frozen=True, slots=True)
class _Identifiers:
    first_seen: list[int]
    """Term indexes in order of first occurrence (prompt, then sections with content)."""
    record: dict[str, object]
    """The manifest's ``identifiers`` entry."""


def _identifiers(build: _Build, text: str) -> _Identifiers:
    """Number the terms by first occurrence over the prompt, then over every section with content.

    So identifiers do not move when the budget changes which sections are inlined; the prefix is one
    that occurs nowhere in the inputs.
    """
    first_seen: list[int] = []
    for chunk in build.chunks + build.section_chunks:
        for index, _, _ in build.matcher.finditer(chunk.text):
            if index not in first_seen:
                first_seen.append(index)
    corpus = "\n".join(
        [text]
        + [f"{t.term}\n{t.definition}" for t in build.terms]
        + [f"{s.id}\n{s.title}\n{s.summary}\n{' '.join(s.tags)}" for s in build.ordered]
        + [build.contents[i] for i in sorted(build.contents)]
    )
    prefix, rejected = _choose_prefix(len(first_seen), corpus)
    build.states = {index: _TermState(f"{prefix}{n}") for n, index in enumerate(first_seen, start=1)}
    record: dict[str, object] = {
        "prefix": prefix,
        "pattern": f"{prefix}<n>",
        "rejected_prefixes": rejected,
        "checked_against_chars": len(corpus),
    }
    return _Identifiers(first_seen, record)


_Inlined = tuple[list[str], list[dict[str, object]], dict[int, int]]
"""Inlined blocks, their chunk records, and where each term was defined (term index -> chunk number)."""


@dataclass(slots=True)
class _Build:
    """The state the phases of :func:`compile_context` share: the catalog, terms, chunks and renders."""

    ordered: list[Section]
    contents: dict[str, str]
    terms: list[_Term]
    chunks: list[_Chunk]
    alias_style: AliasStyle
    states: dict[int, _TermState] = field(default_factory=dict)
    defined: dict[int, int] = field(default_factory=dict)
    prompt_parts: list[str] = field(default_factory=list)
    chunk_records: list[dict[str, object]] = field(default_factory=list)
    matcher: _Matcher = field(init=False)
    content_sections: list[Section] = field(init=False)
    section_chunks: list[_Chunk] = field(init=False)
    stub_lines_of: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.matcher = _Matcher(self.terms)
        self.content_sections = [s for s in self.ordered if s.id in self.contents]
        self.section_chunks = [
            _Chunk("section", s.title, 0, 1, self.contents[s.id].replace("\r\n", "\n"), s.id)
            for s in self.content_sections
        ]
        self.stub_lines_of = {s.id: _stub_line(s, self.contents.get(s.id)) for s in self.ordered}

    def render_prompt(self) -> None:
        """Render the prompt once: its definitions and aliases do not depend on the budget."""
        for n, chunk in enumerate(self.chunks):
            rewritten, defines, aliases = _rewrite(
                chunk.text, self.matcher, self.states, self.alias_style, self.defined, n
            )
            self.prompt_parts.append(rewritten)
            self.chunk_records.append(_chunk_record(n, chunk, rewritten, defines, aliases))

    def inline(self, j: int, state: dict[int, int]) -> tuple[str, dict[str, object]]:
        """The block of the ``j``-th section with content, rewritten after what ``state`` already defines."""
        chunk, n = self.section_chunks[j], len(self.chunks) + j
        rewritten, defines, aliases = _rewrite(chunk.text, self.matcher, self.states, self.alias_style, state, n)
        block = _section_block(self.content_sections[j], rewritten)
        return block, _chunk_record(n, chunk, block, defines, aliases)

    def inline_all(self) -> _Inlined:
        """Every section with content, rewritten one after another (no budget)."""
        blocks: list[str] = []
        records: list[dict[str, object]] = []
        defined = dict(self.defined)
        for j in range(len(self.content_sections)):
            block, record = self.inline(j, defined)
            blocks.append(block)
            records.append(record)
        return blocks, records, defined

    def inline_within(self, budget_tokens: int) -> _Inlined:
        """Sections inlined in order while the static part fits; stops at the first that does not.

        The budget bounds the static part: a task block must never change which sections are inlined.
        Bytes and words add up over the parts, so each step costs one section, not a whole render. A
        block (and the definitions it carries) never changes once placed.
        """
        prompt_counts = text_counts("\n\n".join(self.prompt_parts)) if self.prompt_parts else None
        # Running totals (bytes, words, count) of the inlined blocks and of the stub lines still shown.
        inl, stub = [0, 0, 0], [0, 0, 0]
        for line in self.stub_lines_of.values():
            nbytes, nwords = text_counts(line)
            stub = [stub[0] + nbytes, stub[1] + nwords, stub[2] + 1]
        floor = _static_tokens(prompt_counts, inl, stub)
        if floor > budget_tokens:
            raise ConfigError(
                f"the token budget of {budget_tokens} is below the {floor} tokens the prompt and the "
                "section stubs need on their own"
            )
        blocks: list[str] = []
        records: list[dict[str, object]] = []
        defined = dict(self.defined)
        for j, section in enumerate(self.content_sections):
            trial = dict(defined)
            block, record = self.inline(j, trial)
            block_bytes, block_words = text_counts(block)
            line_bytes, line_words = text_counts(self.stub_lines_of[section.id])
            trial_inl = [inl[0] + block_bytes, inl[1] + block_words, inl[2] + 1]
            trial_stub = [stub[0] - line_bytes, stub[1] - line_words, stub[2] - 1]
            if _static_tokens(prompt_counts, trial_inl, trial_stub) > budget_tokens:
                break
            blocks.append(block)
            records.append(record)
            defined, inl, stub = trial, trial_inl, trial_stub
        return blocks, records, defined

    def assemble(self, blocks: Sequence[str], k: int) -> tuple[str, list[str]]:
        """The static part with the first ``k`` blocks inlined, and the stub lines it shows."""
        inlined_ids = {s.id for s in self.content_sections[:k]}
        lines = [self.stub_lines_of[s.id] for s in self.ordered if s.id not in inlined_ids]
        parts = list(self.prompt_parts)
        if k:
            parts.append("\n\n".join([INLINED_HEADING, *blocks[:k]]))
        if lines:
            parts.append(_stubs_block(lines))
        return ("\n\n".join(parts) + "\n" if parts else ""), lines

    def assemble_within(self, blocks: Sequence[str], budget_tokens: int | None) -> tuple[int, str, list[str]]:
        """How many blocks stay, the static part and its stub lines, checked on the rendered text.

        The counts feed estimate_tokens' own formula (tokens_from_counts); the joins are mirrored by
        hand, so should the renderer's joins ever change, this backs off to be safe.
        """
        k = len(blocks)
        static, stub_lines = self.assemble(blocks, k)
        while budget_tokens is not None and k and estimate_tokens(static) > budget_tokens:
            k -= 1
            static, stub_lines = self.assemble(blocks, k)
        return k, static, stub_lines


def _size_stats(full: str, static: str) -> dict[str, object]:
    return {
        "sha256": _sha256(full),
        "static_sha256": _sha256(static),
        "static_bytes": len(utf8(static)),
        "static_tokens": estimate_tokens(static),
        "bytes": len(utf8(full)),
        "tokens": estimate_tokens(full),
    }


def _term_records(
    build: _Build, first_seen: Sequence[int], defined: Mapping[int, int], records: Sequence[dict[str, object]]
) -> list[dict[str, object]]:
    """The manifest's ``terms``: each numbered term, where it was defined and how often it was aliased."""
    alias_counts = [cast(dict[str, int], r["aliases"]) for r in records]
    chunk_ids = [str(r["id"]) for r in records]
    out: list[dict[str, object]] = []
    for index in first_seen:
        term, ident = build.terms[index], build.states[index].ident
        where = defined.get(index)
        out.append(
            {
                "id": ident,
                "term": term.term,
                "definition": term.definition,
                "origin": term.origin,
                "defined_in": chunk_ids[where] if where is not None else None,
                "aliases": sum(aliases.get(ident, 0) for aliases in alias_counts),
            }
        )
    return out


def _terms_from_prompt(lines: Sequence[str], fenced: Sequence[bool]) -> tuple[list[_Term], set[int]]:
    """Definitions written in the prompt; the ones used elsewhere are taken out of their lines."""
    detected = _detect_definitions(lines, fenced)
    seen: dict[str, _Detected] = {}
    for d in detected:
        key = _WS.sub(" ", d.term).strip().casefold()
        if key in seen:
            raise GlossaryError(
                f"the prompt defines {d.term!r} twice (lines {seen[key].lines[0] + 1} and {d.lines[0] + 1})",
                terms=[d.term],
            )
        seen[key] = d
    entries = _validated_glossary({d.term: d.definition for d in detected}, origin="prompt")
    candidates = [_Term(t, definition, "prompt") for t, definition in entries]
    # Only move a definition whose term is used outside the definitions: a definition of a term used
    # nowhere else stays where the author put it.
    all_def_lines = {n for d in detected for n in d.lines}
    rest = "\n".join(line for n, line in enumerate(lines) if n not in all_def_lines)
    matcher = _Matcher(candidates)
    used = {index for index, _, _ in matcher.finditer(rest)}
    terms = [t for i, t in enumerate(candidates) if i in used]
    removed = {n for i, d in enumerate(detected) if i in used for n in d.lines}
    return terms, removed


def _static_tokens(prompt: tuple[int, int] | None, blocks: Sequence[int], stubs: Sequence[int]) -> int:
    """``estimate_tokens`` of the static part from the counts of its pieces, without rendering it.

    ``blocks`` and ``stubs`` are running totals ``(bytes, words, count)`` of the inlined blocks and
    the stub lines. Mirrors the renderer's joins: parts joined by a blank line, the blocks under
    their heading, the stub lines under the stubs heading and instruction, one final newline.
    """
    parts: list[tuple[int, int]] = [prompt] if prompt is not None else []
    if blocks[2]:
        heading_bytes, heading_words = text_counts(INLINED_HEADING)
        parts.append((heading_bytes + blocks[0] + 2 * blocks[2], heading_words + blocks[1]))
    if stubs[2]:
        head_bytes, head_words = text_counts(f"{STUBS_HEADING}\n\n{STUBS_INSTRUCTION}\n\n")
        parts.append((head_bytes + stubs[0] + stubs[2] - 1, head_words + stubs[1]))
    if not parts:
        return 0
    nbytes = sum(b for b, _ in parts) + 2 * (len(parts) - 1) + 1
    nwords = sum(w for _, w in parts)
    return tokens_from_counts(nbytes, nwords)


def _is_bare_heading(text: str) -> bool:
    return all(not line.strip() or is_heading(line) for line in text.split("\n"))


def _chunk_record(
    n: int, chunk: _Chunk, rendered: str, defines: list[str], aliases: dict[str, int]
) -> dict[str, object]:
    return {
        "id": f"C{n + 1}",
        "kind": chunk.kind,
        "heading": chunk.heading,
        "level": chunk.level,
        "part": chunk.part,
        "section": chunk.section_id,
        "tokens": estimate_tokens(rendered),
        "defines": defines,
        "aliases": dict(sorted(aliases.items(), key=lambda kv: (len(kv[0]), kv[0]))),
    }
