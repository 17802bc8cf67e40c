"""Paths of the bundled sample corpus and traces (installed as package data)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["sample_sections_path", "sample_traces_path"]


def _data(name: str) -> Path:
    return Path(str(resources.files("prehydrate.data").joinpath(name)))


def sample_sections_path() -> Path:
    """The bundled sample corpus (sections JSONL), used by ``prehydrate demo`` and ``serve``."""
    return _data("sample_sections.jsonl")


def sample_traces_path(split: str = "train") -> Path:
    """The bundled sample traces; ``split`` is ``train`` or ``test``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return _data(f"sample_traces_{split}.jsonl")
