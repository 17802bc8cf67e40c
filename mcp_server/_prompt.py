"""The ``compiled_context`` prompt within a budget: the most useful stubs first, and how to get the rest.

A catalog of a thousand sections makes a stub list of 30,000 tokens or more, which no host wants in
every turn. The prompt lists stubs while they fit in ``budget_tokens``, chosen in order of use to this
turn: the sections the predictor is prefetching (it learned them from recorded sessions), then those
whose text matches the task and query (BM25), then the rest in document order. The chosen stubs are
rendered in document order as before, and a note at the top says how many were left out and how to
reach them (``request_context(query=...)``, the ``prehydrate://sections`` resource). A catalog that fits
is listed whole, with no note, byte for byte as without a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import prehydrate as ph

__all__ = ["DEFAULT_PROMPT_BUDGET_TOKENS", "choose_stubs", "compile_prompt"]

DEFAULT_PROMPT_BUDGET_TOKENS = 4000
"""Tokens the stub list of ``compiled_context`` may take by default (about 16,000 characters)."""


def _stub_tokens(section: ph.Section) -> int:
    """About what one stub line costs (its id, title, size and summary, as ``compile_context`` writes it)."""
    return ph.estimate_tokens(f"- [{section.id}] {section.title} (~{section.tokens} tokens): {section.summary}")


def choose_stubs(sections: Sequence[ph.Section], ranked: Iterable[str], budget_tokens: int | None) -> list[ph.Section]:
    """The sections whose stubs fit ``budget_tokens``, taking ``ranked`` ids first, then document order.

    Returns them in document order. ``None`` means no budget (every section).
    """
    if budget_tokens is None or sum(_stub_tokens(s) for s in sections) <= budget_tokens:
        return list(sections)
    by_id = {s.id: s for s in sections}
    order = [*dict.fromkeys(i for i in ranked if i in by_id), *(s.id for s in sections)]
    chosen: set[str] = set()
    used = 0
    for sid in dict.fromkeys(order):
        cost = _stub_tokens(by_id[sid])
        if used + cost <= budget_tokens:
            chosen.add(sid)
            used += cost
    return [s for s in sections if s.id in chosen]


def _note(shown: int, total: int) -> str:
    return (
        f"The list below shows {shown} of the {total} sections available: the ones most likely needed for this "
        f"task. For any of the other {total - shown}, call `request_context` with `query` set to a few key words "
        "(the best-matching section is returned), or read the resource prehydrate://sections for the full catalog."
    )


def compile_prompt(engine: ph.Engine, turn: ph.Turn | None, *, task: str, query: str, budget_tokens: int | None) -> str:
    """The prompt text for one turn: stubs within ``budget_tokens`` (see the module docstring)."""
    sections = engine.catalog.sections
    predicted = [p.section_id for p in turn.prefetches] if turn is not None else []
    words = f"{task} {query}".strip()
    matched = [s.id for s, _ in engine.catalog.search(words, k=len(sections))] if words else []
    chosen = choose_stubs(sections, [*predicted, *matched], budget_tokens)
    prompt = None if len(chosen) == len(sections) else _note(len(chosen), len(sections))
    return ph.compile_context(prompt, sections=chosen, task=task, query=query).text
