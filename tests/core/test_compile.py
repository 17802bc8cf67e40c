"""The ahead-of-time compiler: definitions at first use, identifiers, budgets and byte stability.

The checks here re-derive what the compiler should have done from the *input* with an independent,
deliberately simple matcher, rather than trusting the manifest the compiler wrote about itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import prehydrate as ph
from prehydrate._compile import INLINED_HEADING, STUBS_HEADING, STUBS_INSTRUCTION
from prehydrate._errors import ConfigError, InputError, MalformedInputError
from prehydrate._sections import Section, estimate_tokens, one_line_summary
from prehydrate.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "compile"
PROMPT = (EXAMPLES / "prompt.md").read_text(encoding="utf-8")
GLOSSARY: dict[str, str] = json.loads((EXAMPLES / "glossary.json").read_text(encoding="utf-8"))

_DEF_TAG = re.compile(r' <def id="(?P<id>[A-Z]+\d+)" term="[^"]*">.*?</def>')


def _term_pattern(term: str) -> re.Pattern[str]:
    """Word-bounded, plural-tolerant; case-sensitive for acronyms (``SLA``), as documented."""
    body = r"(?:[^\S\n]+|[^\S\n]*\n[^\S\n]*)".join(re.escape(w) for w in term.split())
    flags = 0 if term.isupper() else re.IGNORECASE
    return re.compile(rf"(?<!\w){body}(?:e?s)?(?!\w)", flags)


def _prose(text: str) -> str:
    """Blank out headings and inline code, which the compiler never rewrites, keeping offsets."""
    text = re.sub(r"(?m)^#{1,6} .*$", lambda m: " " * len(m.group()), text)
    return re.sub(r"`[^`\n]+`", lambda m: " " * len(m.group()), text)


def _sections() -> tuple[list[Section], dict[str, str]]:
    sections: list[Section] = []
    contents: dict[str, str] = {}
    for n, line in enumerate((EXAMPLES / "sections.jsonl").read_text(encoding="utf-8").splitlines()):
        obj = json.loads(line)
        sections.append(
            Section(
                id=obj["id"],
                title=obj["title"],
                tags=tuple(obj["tags"]),
                tokens=estimate_tokens(obj["text"]),
                summary=one_line_summary(obj["text"]),
                order=n,
            )
        )
        contents[obj["id"]] = obj["text"]
    return sections, contents


def _ids(cc: ph.CompiledContext) -> dict[str, str]:
    terms = cc.manifest["terms"]
    assert isinstance(terms, list)
    return {t["term"]: t["id"] for t in terms}


def _first_use_order() -> list[str]:
    prose = _prose(PROMPT)
    return sorted(GLOSSARY, key=lambda t: _term_pattern(t).search(prose).start())  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------
# Definitions and identifiers


def test_each_definition_appears_exactly_once_in_the_chunk_of_first_occurrence() -> None:
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY)
    terms = cc.manifest["terms"]
    assert isinstance(terms, list)
    assert sorted(t["term"] for t in terms) == sorted(GLOSSARY)
    # Chunks of the input, cut at headings, to find each term's first chunk independently.
    input_chunks = re.split(r"(?m)^(?=#{1,6} )", PROMPT)
    input_chunks = [c for c in input_chunks if c.strip()]
    chunk_records = cc.manifest["chunks"]
    assert isinstance(chunk_records, list)
    assert [c["heading"] for c in chunk_records] == [c.splitlines()[0].lstrip("# ") for c in input_chunks]
    for record in terms:
        ident, term = record["id"], record["term"]
        assert cc.text.count(f'<def id="{ident}" ') == 1, term
        assert cc.text.count(f'term="{term}">{GLOSSARY[term]}</def>') == 1, term
        first = next(n for n, c in enumerate(input_chunks) if _term_pattern(term).search(_prose(c)))
        assert record["defined_in"] == chunk_records[first]["id"], term
        assert chunk_records[first]["defines"].count(ident) == 1
        # The rendered chunk that holds the definition is the one whose heading starts it.
        rendered = re.split(r"(?m)^(?=#{1,6} )", cc.text)
        rendered = [c for c in rendered if c.strip()]
        assert f'<def id="{ident}" ' in rendered[first]


@pytest.mark.parametrize("alias_style", ["natural", "abstract"])
def test_every_later_occurrence_carries_its_identifier(alias_style: str) -> None:
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY, alias_style=alias_style)  # type: ignore[arg-type]
    ids = {t["term"]: t["id"] for t in cc.manifest["terms"]}  # type: ignore[attr-defined]
    # Replace each definition by a marker so its body (which may mention other terms) is not counted.
    compact = _DEF_TAG.sub(lambda m: f"<def:{m.group('id')}>", cc.text)
    prose = _prose(compact)
    for term, ident in ids.items():
        expected_later = len(_term_pattern(term).findall(_prose(PROMPT))) - 1
        assert expected_later > 0, f"example should reuse {term!r}"
        matches = list(_term_pattern(term).finditer(prose))
        followers = [compact[m.end() : m.end() + len(ident) + 6] for m in matches]
        if alias_style == "natural":
            assert len(matches) == expected_later + 1
            assert followers[0] == f"<def:{ident}>"[: len(followers[0])]
            assert all(f.startswith(f"<{ident}/>") for f in followers[1:]), (term, followers)
        else:
            # The word survives only where it is defined; later it is the tag alone.
            assert len(matches) == 1
            assert compact[matches[0].end() :].startswith(f"<def:{ident}>")
        assert compact.count(f"<{ident}/>") == expected_later


def test_identifiers_are_assigned_by_first_appearance_not_glossary_order() -> None:
    forward = ph.compile_context(PROMPT, glossary=GLOSSARY)
    backward = ph.compile_context(PROMPT, glossary=dict(reversed(list(GLOSSARY.items()))))
    assert forward.text == backward.text
    assert forward.manifest_json() == backward.manifest_json()
    terms = forward.manifest["terms"]
    assert isinstance(terms, list)
    assert [t["id"] for t in terms] == [f"D{n}" for n in range(1, len(GLOSSARY) + 1)]
    positions = [_term_pattern(t["term"]).search(_prose(PROMPT)).start() for t in terms]  # type: ignore[union-attr]
    assert positions == sorted(positions)


def test_identifiers_never_collide_with_input_text() -> None:
    prompt = (
        "Keep the audit log. Ticket D1 and D2 are open; ignore <D1/>.\n\n"
        "Check the audit log again, then DQ1 and the audit log.\n"
    )
    glossary = {"audit log": "The append-only record of admin actions (see DQQ9 in the handbook)."}
    cc = ph.compile_context(prompt, glossary=glossary)
    identifiers = cc.manifest["identifiers"]
    assert isinstance(identifiers, dict)
    assert identifiers["rejected_prefixes"] == ["D", "DQ"]
    ident = cc.manifest["terms"][0]["id"]  # type: ignore[index]
    assert ident == "DQQ1"
    source_text = prompt + json.dumps(glossary)
    assert ident not in source_text
    # The input's own look-alikes pass through untouched; only the compiler's tags use the identifier.
    assert cc.text.count("<D1/>") == prompt.count("<D1/>") == 1
    assert cc.text.count(f"<{ident}/>") == 2
    assert cc.text.count(f'<def id="{ident}" ') == 1


def test_code_headings_and_links_are_never_rewritten() -> None:
    prompt = (
        "# The SLA\n\nAlways meet the SLA.\n\nRun `check SLA` or see [docs](https://x.example/SLA).\n\n"
        "```\nSLA = 4\n```\n\nThe SLA again.\n"
    )
    cc = ph.compile_context(prompt, glossary={"SLA": "Four hours."})
    assert cc.text.startswith("# The SLA\n")
    assert "`check SLA`" in cc.text and "(https://x.example/SLA)" in cc.text
    assert "```\nSLA = 4\n```" in cc.text
    assert 'meet the SLA <def id="D1" term="SLA">Four hours.</def>.' in cc.text
    assert "The SLA<D1/> again." in cc.text


_WORDS = ["the", "agent", "must", "check", "refund", "window", "SLA", "SLAs", "Tier", "2", "D1", "DQ1", "credit", "and"]
_PROPERTY_GLOSSARY = {"refund window": "14 days.", "SLA": "Four hours.", "Tier 2": "Specialists.", "credit": "Money."}


@settings(max_examples=100, deadline=None)
@example(blocks=[(True, ["the"]), (False, ["the", "Tier"]), (False, ["2"])], alias_style="natural", max_chunk_tokens=5)
@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(st.sampled_from(_WORDS), min_size=1, max_size=30)),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["natural", "abstract"]),
    st.integers(min_value=5, max_value=200),
)
def test_definitions_and_identifiers_hold_for_any_prompt(
    blocks: list[tuple[bool, list[str]]], alias_style: str, max_chunk_tokens: int
) -> None:
    """Whatever the layout: one definition per used term, one tag per later use, no identifier clash."""
    prompt = "\n\n".join(("## " if heading else "") + " ".join(words) for heading, words in blocks) + "\n"
    prose = _prose(prompt)
    used = {t: len(_term_pattern(t).findall(prose)) for t in _PROPERTY_GLOSSARY}
    glossary = {t: d for t, d in _PROPERTY_GLOSSARY.items() if used[t]}
    cc = ph.compile_context(
        prompt,
        glossary=glossary,
        alias_style=alias_style,  # type: ignore[arg-type]
        max_chunk_tokens=max_chunk_tokens,
    )
    reordered = ph.compile_context(
        prompt,
        glossary=dict(reversed(glossary.items())),
        alias_style=alias_style,  # type: ignore[arg-type]
        max_chunk_tokens=max_chunk_tokens,
    )
    assert reordered.text == cc.text
    for term, ident in _ids(cc).items():
        assert ident not in prompt and ident not in json.dumps(glossary)
        assert cc.text.count(f'<def id="{ident}" ') == 1
        assert cc.text.count(f"<{ident}/>") == used[term] - 1
    # Chunks cut by size or heading never lose or duplicate text: stripping the tags gives the input back.
    stripped = re.sub(r"<[A-Z]+\d+/>", "", _DEF_TAG.sub("", cc.text))
    if alias_style == "natural":
        assert " ".join(stripped.split()) == " ".join(prompt.split())


def test_emphasis_stays_whole_around_the_first_occurrence() -> None:
    cc = ph.compile_context("Mind the **SLA** now. Then __SLA__ and *SLAs*.", glossary={"SLA": "4h"})
    assert cc.text == 'Mind the **SLA** <def id="D1" term="SLA">4h</def> now. Then __SLA<D1/>__ and *SLAs<D1/>*.\n'


def test_acronyms_match_case_sensitively_and_longest_term_wins() -> None:
    glossary = {"AM": "Account manager.", "refund": "Money back.", "refund window": "14 days."}
    cc = ph.compile_context("I am the AM. The refund window limits a refund; the AM decides.", glossary=glossary)
    assert "I am the AM <def" in cc.text
    assert 'refund window <def id="D2" term="refund window">' in cc.text
    assert "a refund <def" in cc.text
    assert "the AM<D1/> decides" in cc.text


# ------------------------------------------------------------------------------------------------
# Definitions written in the prompt


def test_definitions_are_detected_in_the_prompt_and_moved_to_first_use() -> None:
    prompt = (
        "# Agent\n\nHelp the verified owner only.\n\n"
        "## Glossary\n\n"
        "**Verified owner**: The person who passed the code check.\n"
        "- **Chargeback:** A bank dispute.\n\n"
        "Cold storage\n: Snapshots older than 30 days.\n: Restores take 48 hours.\n\n"
        "**Unused**: Stays where it is, since nothing else mentions it.\n\n"
        "## Billing\n\nA chargeback blocks refunds for the verified owner. Cold storage is slow.\n"
    )
    cc = ph.compile_context(prompt)
    terms = {t["term"]: t for t in cc.manifest["terms"]}  # type: ignore[attr-defined]
    assert sorted(terms) == ["Chargeback", "Cold storage", "Verified owner"]
    assert all(t["origin"] == "prompt" for t in terms.values())
    assert terms["Cold storage"]["definition"] == "Snapshots older than 30 days. Restores take 48 hours."
    # The definition lines are gone from the glossary; the unused one stays.
    assert "**Verified owner**" not in cc.text and "**Chargeback:**" not in cc.text
    assert "**Unused**: Stays where it is" in cc.text
    assert 'verified owner <def id="D1" term="Verified owner">The person who passed the code check.</def>' in (cc.text)
    assert "the verified owner<D1/>." in cc.text
    assert cc.text.count("<def ") == 3


def test_a_glossary_heading_left_empty_is_dropped() -> None:
    prompt = "# Agent\n\n## Role\n\nMind the SLA.\n\n## Glossary\n\n**SLA**: Four hours.\n\n## Next\n\nThe SLA holds.\n"
    cc = ph.compile_context(prompt)
    assert "## Glossary" not in cc.text
    # "# Agent" has no body of its own either, but it lost nothing: it stays.
    assert [c["heading"] for c in cc.manifest["chunks"]] == ["Agent", "Role", "Next"]  # type: ignore[attr-defined]


def test_a_term_defined_twice_in_the_prompt_is_an_error() -> None:
    prompt = "**SLA**: Four hours.\n\nUse the SLA.\n\n**sla**: Eight hours.\n"
    with pytest.raises(ph.GlossaryError, match=r"defines 'sla' twice \(lines 1 and 5\)"):
        ph.compile_context(prompt)


# ------------------------------------------------------------------------------------------------
# Glossary errors


def test_unknown_glossary_terms_are_listed_in_a_clear_error() -> None:
    glossary = dict(GLOSSARY, **{"net promoter score": "x", "Dunning": "y"})
    with pytest.raises(ph.GlossaryError) as info:
        ph.compile_context(PROMPT, glossary=glossary)
    message = str(info.value)
    assert message.startswith("unknown glossary terms 'Dunning', 'net promoter score': never used")
    assert info.value.terms == ("Dunning", "net promoter score")
    assert isinstance(info.value, InputError)


def test_unknown_terms_are_reported_not_raised_when_not_strict() -> None:
    cc = ph.compile_context(PROMPT, glossary=dict(GLOSSARY, Dunning="y"), strict=False)
    assert cc.manifest["unused_terms"] == ["Dunning"]
    assert "Dunning" not in cc.text


def test_load_glossary_reads_the_example() -> None:
    assert ph.load_glossary(EXAMPLES / "glossary.json") == GLOSSARY


def test_malformed_glossary_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "glossary.json"
    path.write_text('{\n  "SLA": "Four hours.",\n  "refund window" "14 days"\n}\n', encoding="utf-8")
    with pytest.raises(MalformedInputError) as info:
        ph.load_glossary(path)
    assert info.value.line == 3
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:3: invalid JSON in glossary")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('["SLA", "Four hours."]', r"must hold a JSON object mapping term to definition, not a JSON array"),
        ('{"SLA": 4}', r"the definition of 'SLA' must be a string, not a JSON number"),
        ('{"SLA": "   "}', r"the definition of 'SLA' is empty"),
        ('{"  ": "x"}', r"a term is empty"),
        ('{"SLA": "a", "sla": "b"}', r"the terms 'SLA' and 'sla' differ only in case"),
        ('{"SLA": "see </def> here"}', r"contains a <def> tag"),
    ],
)
def test_invalid_glossary_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ph.GlossaryError, match=message) as info:
        ph.load_glossary(path)
    assert str(path) in str(info.value)


def test_missing_glossary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ph.GlossaryError, match=r"glossary file .*nope\.json does not exist"):
        ph.load_glossary(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------------
# Chunks, stubs and budgets


def test_long_chunks_are_cut_at_paragraphs() -> None:
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY, max_chunk_tokens=120)
    chunks = cc.manifest["chunks"]
    assert isinstance(chunks, list)
    billing = [c for c in chunks if c["heading"] == "Billing and refunds"]
    assert [c["part"] for c in billing] == list(range(1, len(billing) + 1))
    assert len(billing) > 1
    # Cutting more finely moves no definition out of the text and keeps each exactly once.
    assert sorted(re.findall(r'<def id="(D\d+)"', cc.text)) == sorted(f"D{n}" for n in range(1, 9))


def test_without_contents_every_section_is_a_stub_in_document_order() -> None:
    sections, _ = _sections()
    shuffled = sections[3:] + sections[:3]
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=shuffled)
    assert [s.id for s in cc.stubs] == [s.id for s in sections]
    assert cc.inlined == ()
    block = cc.text[cc.text.index(STUBS_HEADING) :]
    lines = block.splitlines()
    assert lines[:3] == [STUBS_HEADING, "", STUBS_INSTRUCTION]
    refunds = next(s for s in sections if s.id == "billing/refunds")
    assert f"- [billing/refunds] Refunds (~{refunds.tokens} tokens): " in block
    assert [re.match(r"- \[([^\]]+)\]", x).group(1) for x in lines[4:]] == [s.id for s in sections]  # type: ignore[union-attr]


def test_a_prompt_of_none_gives_only_the_stubs_block() -> None:
    sections, _ = _sections()
    cc = ph.compile_context(None, sections=sections)
    assert cc.text.startswith(STUBS_HEADING + "\n\n" + STUBS_INSTRUCTION + "\n\n- [plans/overview] ")
    assert cc.text.count("\n- [") == len(sections)
    assert cc.manifest["chunks"] == []


@pytest.mark.parametrize("headroom", [0, 40, 150, 300, 10_000])
def test_budgets_are_respected_and_sections_inline_in_document_order(headroom: int) -> None:
    sections, contents = _sections()
    # The floor is the prompt plus every stub; the headroom above it is what sections can use.
    budget = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections).tokens + headroom
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=budget)
    assert cc.tokens == estimate_tokens(cc.text) <= budget
    ids = [s.id for s in sections]
    k = len(cc.inlined)
    assert list(cc.inlined) == ids[:k]
    assert [s.id for s in cc.stubs] == ids[k:]
    for sid in cc.inlined:
        assert f'<section id="{sid}" ' in cc.text
    if k < len(ids):
        # The next section would not have fitted: the budget, not the compiler, stopped inlining.
        assert cc.manifest["stubs"][0]["id"] == ids[k]  # type: ignore[index]
        one_more = ph.compile_context(
            PROMPT, glossary=GLOSSARY, sections=sections, contents=dict(list(contents.items())[: k + 1])
        )
        assert one_more.tokens > budget
    if headroom == 10_000:
        assert k == len(ids) and INLINED_HEADING in cc.text and STUBS_HEADING not in cc.text


def test_budgets_are_exact_at_every_boundary() -> None:
    sections, contents = _sections()
    ids = [s.id for s in sections]
    # Tokens of the prefix with exactly the first k sections inlined, rendered without a budget.
    sizes = [
        ph.compile_context(
            PROMPT, glossary=GLOSSARY, sections=sections, contents={i: contents[i] for i in ids[:k]}
        ).tokens
        for k in range(len(ids) + 1)
    ]
    assert sizes == sorted(sizes)
    for budget in sorted({b for size in sizes for b in (size - 1, size, size + 1) if b >= sizes[0]}):
        cc = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=budget)
        k = len(cc.inlined)
        assert cc.tokens == sizes[k] <= budget
        assert k == len(ids) or sizes[k + 1] > budget


def test_budget_tokens_spread_over_inlined_sections_keeps_identifiers_stable() -> None:
    sections, contents = _sections()
    small = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=2450)
    large = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents)
    assert small.inlined != large.inlined
    assert small.manifest["identifiers"] == large.manifest["identifiers"]
    assert _ids(small) == _ids(large) == {t: f"D{n}" for n, t in enumerate(_first_use_order(), start=1)}
    # Inlined sections are rewritten too: later occurrences in them carry identifiers.
    assert '<section id="billing/refunds" title="Refunds">' in large.text
    refunds = large.text[large.text.index('<section id="billing/refunds"') :]
    assert "refund window<D4/>" in refunds.split("</section>")[0]


def test_a_budget_below_the_prompt_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="budget of 100"):
        ph.compile_context(PROMPT, glossary=GLOSSARY, budget_tokens=100)


def test_task_and_query_change_only_the_closing_block() -> None:
    sections, contents = _sections()
    plain = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=2450)
    tasked = ph.compile_context(
        PROMPT,
        glossary=GLOSSARY,
        sections=sections,
        contents=contents,
        budget_tokens=2450,
        task="billing",
        query="Can I get my money back? Ticket D1",
    )
    assert tasked.text.startswith(plain.text)
    assert (
        tasked.text[len(plain.text) :]
        == "\n## Current task\n\nTask: billing\nQuery: Can I get my money back? Ticket D1\n"
    )
    assert tasked.manifest["static_sha256"] == plain.manifest["static_sha256"] == plain.sha256
    assert tasked.inlined == plain.inlined
    # The budget bounds the static part; the task block comes on top of it.
    assert plain.tokens == tasked.manifest["static_tokens"]
    assert plain.tokens <= 2450
    assert tasked.tokens > plain.tokens
    assert tasked.manifest["terms"] == plain.manifest["terms"]


def test_sha256_and_manifest_describe_the_text() -> None:
    import hashlib

    cc = ph.compile_context(PROMPT, glossary=GLOSSARY)
    assert cc.sha256 == hashlib.sha256(cc.text.encode()).hexdigest() == cc.manifest["sha256"]
    assert json.loads(cc.manifest_json()) == cc.manifest
    assert cc.manifest["tokens"] == cc.tokens == estimate_tokens(cc.text)
    dumped = cc.manifest_json()
    assert str(EXAMPLES) not in dumped and "/tmp" not in dumped


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="alias_style"):
        ph.compile_context("x", alias_style="fancy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_chunk_tokens"):
        ph.compile_context("x", max_chunk_tokens=0)
    with pytest.raises(InputError, match="not in the catalog"):
        ph.compile_context("x", contents={"ghost": "boo"})


# ------------------------------------------------------------------------------------------------
# Byte stability across processes


_CHILD = """
import json, sys
import prehydrate as ph
from prehydrate._sections import Section, estimate_tokens, one_line_summary
prompt = open(sys.argv[1], encoding="utf-8").read()
glossary = json.load(open(sys.argv[2], encoding="utf-8"))
if sys.argv[3] == "reverse":
    glossary = dict(reversed(list(glossary.items())))
sections, contents = [], {}
for n, line in enumerate(open(sys.argv[4], encoding="utf-8")):
    obj = json.loads(line)
    sections.append(Section(id=obj["id"], title=obj["title"], tags=tuple(obj["tags"]),
                            tokens=estimate_tokens(obj["text"]), order=n))
    contents[obj["id"]] = obj["text"]
sections = sorted(sections, key=lambda s: hash(s.id))  # hash order differs with the seed
cc = ph.compile_context(prompt, glossary=glossary, sections=sections, contents=contents, budget_tokens=2450)
sys.stdout.buffer.write(cc.text.encode("utf-8") + b"\\x00" + cc.manifest_json().encode("utf-8"))
"""


def test_output_is_byte_identical_across_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for seed, order in (("1", "forward"), ("4242", "reverse")):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(EXAMPLES / "prompt.md"),
                str(EXAMPLES / "glossary.json"),
                order,
                str(EXAMPLES / "sections.jsonl"),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    text, manifest = outputs[0].split(b"\x00")
    assert json.loads(manifest)["sha256"] == __import__("hashlib").sha256(text).hexdigest()
    sections, contents = _sections()
    here = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=2450)
    assert here.text.encode("utf-8") == text


# ------------------------------------------------------------------------------------------------
# The command line


def test_cli_writes_the_prefix_and_a_manifest_hashing_its_bytes(tmp_path: Path) -> None:
    out, manifest = tmp_path / "prefix.txt", tmp_path / "prefix.json"
    args = ["compile", str(EXAMPLES / "prompt.md"), "--glossary", str(EXAMPLES / "glossary.json")]
    args += ["--sections", str(EXAMPLES / "sections.jsonl"), "--budget-tokens", "2450"]
    result = CliRunner().invoke(app, [*args, "-o", str(out), "--manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "compiled prefix" in result.output
    data = out.read_bytes()
    record = json.loads(manifest.read_text(encoding="utf-8"))
    assert record["sha256"] == __import__("hashlib").sha256(data).hexdigest()
    assert record["tokens"] <= 2450
    sections, contents = _sections()
    api = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=2450)
    assert data == api.text.encode("utf-8")
    assert manifest.read_text(encoding="utf-8") == api.manifest_json()


def test_cli_prints_the_prefix_without_an_output_file() -> None:
    result = CliRunner().invoke(app, ["compile", str(EXAMPLES / "prompt.md"), "--alias-style", "abstract"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Acme Cloud support agent\n")


@pytest.mark.parametrize(
    ("glossary", "message"),
    [
        ('{"SLA": "x", "Dunning": "y"}', "unknown glossary term 'Dunning'"),
        ('{"SLA": "x",\n "Dunning" "y"}', ":2: invalid JSON in glossary"),
    ],
)
def test_cli_reports_glossary_errors_clearly(tmp_path: Path, glossary: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(glossary, encoding="utf-8")
    result = CliRunner().invoke(app, ["compile", str(EXAMPLES / "prompt.md"), "--glossary", str(path)])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_the_checked_in_example_output_is_current() -> None:
    """examples/compile/prefix.txt and manifest.json are what docs/compile.md shows; bytes must not drift.

    A change here means every deployed prefix changes too (and every prompt cache misses once). If it is
    intended, regenerate them with the command in docs/compile.md.
    """
    sections, contents = _sections()
    cc = ph.compile_context(PROMPT, glossary=GLOSSARY, sections=sections, contents=contents, budget_tokens=2800)
    assert (EXAMPLES / "prefix.txt").read_bytes() == cc.text.encode("utf-8")
    assert (EXAMPLES / "manifest.json").read_text(encoding="utf-8") == cc.manifest_json()
