"""The one UTF-8 rule: sizes, hashes and the token estimate never raise; reading is strict and inside the root."""

from __future__ import annotations

from pathlib import Path

import pytest

import prehydrate as ph
from prehydrate._text import decode_utf8, read_text, text_counts, tokens_from_counts


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
    with pytest.raises(ph.InputError, match="cannot read glossary file"):
        read_text(tmp_path / "missing.json", "glossary file")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ph.InputError, match="latin1.txt: not UTF-8 text"):
        read_text(tmp_path / "latin1.txt", "notes")
    (tmp_path / "ok.txt").write_text("café ✓", encoding="utf-8")
    assert read_text(tmp_path / "ok.txt", "notes") == "café ✓"
