"""The one UTF-8 rule: sizes, hashes and the token estimate never raise; reading is strict and inside the root."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate._text import (
    check_text,
    clean_text,
    decode_utf8,
    encode_text,
    from_utf8,
    log_text,
    read_text,
    text_counts,
    tokens_from_counts,
    utf8,
    write_text,
)


def test_the_token_estimate_of_text_with_a_lone_surrogate_does_not_raise() -> None:
    # A callable source may return any str; estimating it raised UnicodeEncodeError before.
    assert ph.estimate_tokens("bad \ud800") == 3  # 2 words / 0.75
    assert ph.estimate_tokens("") == 0


def test_the_estimate_is_its_counts_through_one_formula() -> None:
    text = "def f(x):\n    return x  # naïve 東京"
    assert text_counts(text) == (len(text.encode("utf-8")), len(text.split()))
    assert ph.estimate_tokens(text) == tokens_from_counts(*text_counts(text))
    assert tokens_from_counts(0, 0) == 0 and tokens_from_counts(1, 0) == 1


def test_bytes_that_are_not_utf8_name_where_and_the_byte() -> None:
    with pytest.raises(ph.InputError, match=r"^guide\.md: not UTF-8 text \(invalid start byte at byte 2\)$"):
        decode_utf8(b"ok\xffno", "guide.md")


def test_reading_a_missing_or_non_utf8_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ph.InputError, match=r"^glossary file .*missing\.json does not exist$"):
        read_text(tmp_path / "missing.json", "glossary file")
    with pytest.raises(ph.InputError, match="^cannot read notes "):
        read_text(tmp_path, "notes")  # a folder
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ph.InputError, match="latin1.txt: not UTF-8 text"):
        read_text(tmp_path / "latin1.txt", "notes")
    (tmp_path / "ok.txt").write_text("café ✓", encoding="utf-8")
    assert read_text(tmp_path / "ok.txt", "notes") == "café ✓"


def test_a_lone_surrogate_is_refused_by_name_on_the_way_out_and_round_trips_in_stores(tmp_path: Path) -> None:
    with pytest.raises(ph.InputError, match=r"^query: not Unicode text \(lone surrogate '\\ud800' at character 3\)$"):
        check_text("abc\ud800", "query")
    assert encode_text("café", "x") == "café".encode()
    out = tmp_path / "out.txt"
    with pytest.raises(ph.InputError, match=r"^output file .*out\.txt: not Unicode text"):
        write_text(out, "ok \udfff", "output file")
    assert not out.exists()
    write_text(out, "line\r\n✓", "output file")
    assert out.read_bytes() == "line\r\n✓".encode()  # byte for byte: no newline translation
    assert from_utf8(utf8("bad \ud800 ✓")) == "bad \ud800 ✓"  # the package's own stores round-trip
    assert log_text(b"ok \xff") == "ok \\xff"
    with pytest.raises(ph.InputError, match="^cannot write output file "):
        write_text(tmp_path / "missing" / "out.txt", "x", "output file")


def test_writing_traces_with_a_lone_surrogate_names_the_file_and_session(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    ph.write_traces(path, [ph.SessionTrace(session="s0")])
    before = path.read_bytes()
    bad = ph.SessionTrace(session="s1", task=ph.TaskSpec(query="refund \ud800"))
    with pytest.raises(ph.InputError, match=r"traces\.jsonl: session 's1': not Unicode text"):
        ph.write_traces(path, [ph.SessionTrace(session="s0"), bad])  # was a raw UnicodeEncodeError
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_text_arguments_of_the_compiler_with_a_lone_surrogate_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ph.InputError, match=r"^prompt: not Unicode text"):
        ph.compile_context("# A\n\nbad \ud800")
    with pytest.raises(ph.InputError, match=r"^contents\['a'\]: not Unicode text"):
        ph.compile_context("x", sections=[ph.Section(id="a", title="A")], contents={"a": "\udc80"})
    glossary = tmp_path / "glossary.json"
    glossary.write_text('{"SLA": "reply \\ud800 fast"}', encoding="utf-8")  # valid JSON, not Unicode text
    with pytest.raises(ph.GlossaryError, match=r"glossary file .*glossary\.json: the definition of 'SLA': not Unicode"):
        ph.load_glossary(glossary)
    with pytest.raises(ph.InputError, match=r"^RedisTier secret: not Unicode text"):
        ph.RedisTier("redis://127.0.0.1:1", secret="\ud800" * 16)


def test_clean_text_replaces_each_lone_surrogate_and_leaves_unicode_text_alone() -> None:
    ok = "naïve 東京 😀"
    assert clean_text(ok) is ok
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"  # one U+FFFD each, not one per byte
    assert clean_text("\ud83d\ude00") == "\ufffd\ufffd"  # a pair split into two code points is not text either


async def test_a_clients_text_is_made_unicode_text_where_it_enters_and_ids_are_refused(tmp_path: Path) -> None:
    """Turn and task queries, tags, task types and nodes are kept with U+FFFD for each lone surrogate,
    so the trace line is UTF-8 and the events hold text; identifiers are refused, not merged."""
    path = tmp_path / "traces.jsonl"
    src = ph.MockSource(lambda sid, scope: f"text of {sid}", ["refunds", "plans"])
    events: list[object] = []
    engine = ph.Engine(sources=[src], traces=ph.TraceStore(path))
    engine.subscribe(events.append)
    async with engine:
        for bad in ({"tenant": "acme\ud800"}, {"partition": "p\udc80"}):
            with pytest.raises(ph.InputError, match="not Unicode text"):
                engine.session("s", **bad)  # type: ignore[arg-type]
        with pytest.raises(ph.InputError, match="not Unicode text"):
            engine.session("s\ud800")
        async with engine.session("s1", task_type="bill\ud800", tags=["t\udc80"]) as session:
            async with session.turn(query="refund \ud800 policy", tags=["u\ud801"], node="n\ud802") as turn:
                assert (await turn.request_context(query="refunds \udfff", node="m\ud803")).section_id == "refunds"
                with pytest.raises(ph.InputError, match=r"^a section id: not Unicode text"):
                    await turn.request_context("refunds\ud800")
    line = path.read_bytes()
    line.decode("utf-8")  # strict: every byte is UTF-8 (it held ED A0 80 for the surrogate before)
    (trace,) = ph.TraceStore(path).load()
    assert (trace.task.type, trace.task.query, trace.task.tags) == ("bill\ufffd", "refund \ufffd policy", ("t\ufffd",))
    assert [c.node for t in trace.turns for c in t.calls] == ["m\ufffd"]
    texts = [v for e in events for v in _strings(dataclasses.asdict(e))]  # type: ignore[call-overload]
    assert "refund \ufffd policy" in texts and all(clean_text(v) == v for v in texts)  # spans get text only


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for v in value for s in _strings(v)] if isinstance(value, list | tuple) else []


def test_a_hand_built_session_with_a_lone_surrogate_is_written_as_utf8(tmp_path: Path) -> None:
    store = ph.TraceStore(tmp_path / "traces.jsonl")
    store.append(ph.SessionTrace(session="s1", task=ph.TaskSpec(query="refund \ud800")))
    assert store.pending == 0
    (tmp_path / "traces.jsonl").read_bytes().decode("utf-8")
    assert [t.task.query for t in store.load()] == ["refund \ufffd"]
