"""Traces: every session recorded as one JSON line, the format predictors learn from.

The format (see docs/formats.md) is stable; optional fields (``node``, ``group``, ``tenant``) may be added::

    {"session": "s-1",
     "task": {"type": "billing+search", "query": "first user message", "tags": ["billing"]},
     "turns": [{"query": "user message of this turn",
                "calls": [{"key": "section-id", "think_ms": 400}, ...]}, ...]}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import InputError, MalformedInputError
from ._jsonl import iter_jsonl, parse_jsonl_line
from ._text import encode_text

__all__ = [
    "Call",
    "SessionTrace",
    "TaskSpec",
    "TurnTrace",
    "parse_line",
    "read_traces",
    "read_traces_tolerant",
    "write_traces",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One ``request_context`` call: the section id and the model time before it."""

    key: str
    think_ms: float = 0.0
    node: str | None = None
    """The LangGraph node that made the call, when known (optional field)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this call."""
        out: dict[str, Any] = {"key": self.key, "think_ms": _num(self.think_ms)}
        if self.node is not None:
            out["node"] = self.node
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnTrace:
    """One turn: the user's message and the calls the model made."""

    query: str = ""
    calls: tuple[Call, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this turn."""
        return {"query": self.query, "calls": [c.to_json() for c in self.calls]}


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """What the session was about: task type, first user message and tags."""

    type: str = ""
    query: str = ""
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this task."""
        return {"type": self.type, "query": self.query, "tags": list(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionTrace:
    """One recorded session."""

    session: str
    task: TaskSpec = field(default_factory=TaskSpec)
    turns: tuple[TurnTrace, ...] = ()
    group: str = ""
    """Sessions of one task or scenario share a group (optional field); validation inside fitting
    never splits a group. Empty: the group is the task type plus task query."""
    tenant: str | None = None
    """The tenant whose session this was (optional field): each tenant learns from its own sessions."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this session."""
        out: dict[str, Any] = {"session": self.session, "task": self.task.to_json()}
        if self.group:
            out["group"] = self.group
        out["turns"] = [t.to_json() for t in self.turns]
        if self.tenant is not None:
            out["tenant"] = self.tenant
        return out

    def dumps(self) -> str:
        """One JSON line (no trailing newline), keys in a stable order."""
        return json.dumps(self.to_json(), ensure_ascii=False)

    @property
    def keys(self) -> list[str]:
        """Every requested section id of the session, in order."""
        return [c.key for t in self.turns for c in t.calls]


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 3)


def _finite(x: float) -> bool:
    """True for a number that fits a float and is neither NaN nor infinite (written back as valid JSON)."""
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def _parse(obj: Any, where: tuple[str, int]) -> SessionTrace:
    path, line = where

    def bad(reason: str) -> MalformedInputError:
        return MalformedInputError(path, line, reason)

    if not isinstance(obj, dict):
        raise bad("expected a JSON object")
    sid = obj.get("session")
    if not isinstance(sid, str) or not sid:
        raise bad("'session' must be a non-empty string")
    task = obj.get("task", {})
    if not isinstance(task, dict):
        raise bad("'task' must be an object")
    ttype, tquery, ttags = task.get("type", ""), task.get("query", ""), task.get("tags", [])
    if not isinstance(ttype, str) or not isinstance(tquery, str):
        raise bad("'task.type' and 'task.query' must be strings")
    if not isinstance(ttags, list) or not all(isinstance(t, str) for t in ttags):
        raise bad("'task.tags' must be a list of strings")
    group = obj.get("group", "")
    if not isinstance(group, str):
        raise bad("'group' must be a string")
    tenant = obj.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise bad("'tenant' must be a non-empty string")
    turns_raw = obj.get("turns")
    if not isinstance(turns_raw, list):
        raise bad("'turns' must be a list")
    turns: list[TurnTrace] = []
    for ti, turn in enumerate(turns_raw):
        if not isinstance(turn, dict):
            raise bad(f"turn {ti} must be an object")
        query, calls_raw = turn.get("query", ""), turn.get("calls", [])
        if not isinstance(query, str):
            raise bad(f"turn {ti}: 'query' must be a string")
        if not isinstance(calls_raw, list):
            raise bad(f"turn {ti}: 'calls' must be a list")
        calls: list[Call] = []
        for ci, call in enumerate(calls_raw):
            if not isinstance(call, dict):
                raise bad(f"turn {ti} call {ci} must be an object")
            key, think, node = call.get("key"), call.get("think_ms", 0), call.get("node")
            if not isinstance(key, str) or not key:
                raise bad(f"turn {ti} call {ci}: 'key' must be a non-empty string")
            if isinstance(think, bool) or not isinstance(think, int | float) or not _finite(think) or think < 0:
                raise bad(f"turn {ti} call {ci}: 'think_ms' must be a non-negative number")
            if node is not None and not isinstance(node, str):
                raise bad(f"turn {ti} call {ci}: 'node' must be a string")
            calls.append(Call(key=key, think_ms=float(think), node=node))
        turns.append(TurnTrace(query=query, calls=tuple(calls)))
    task_spec = TaskSpec(type=ttype, query=tquery, tags=tuple(ttags))
    return SessionTrace(session=sid, task=task_spec, turns=tuple(turns), group=group, tenant=tenant)


def parse_line(raw: bytes, path: str, lineno: int) -> SessionTrace:
    """One trace line (bytes, without its newline) as a session.

    Raises:
        MalformedInputError: the line is not JSON or breaks the format; names ``path:lineno``.
    """
    return _parse(parse_jsonl_line(raw, path, lineno), (path, lineno))


def _iter_file(path: Path) -> Iterator[SessionTrace]:
    for lineno, obj in iter_jsonl(path, "traces file"):
        yield _parse(obj, (str(path), lineno))


def read_traces(path: str | Path) -> list[SessionTrace]:
    """Read a traces file.

    Raises:
        MalformedInputError: a line does not parse or break the format; names file and line.
            Nothing is skipped silently.
    """
    return list(_iter_file(Path(path)))


def read_traces_tolerant(path: str | Path) -> tuple[list[SessionTrace], list[MalformedInputError]]:
    """Every valid session of a traces file, and one error (naming file:line) per bad line; read-only.

    What a checker needs from a file a server may have damaged (a crash mid-append leaves a torn
    last line, a stray write binary garbage): it reads on past bad lines instead of stopping at the
    first, and changes nothing (the server's TraceStore repairs its own files when it loads them).

    Raises:
        InputError: the file cannot be opened.
    """
    try:
        fh = Path(path).open("rb")
    except OSError as exc:
        raise InputError(f"cannot read traces file {path}: {exc.strerror or exc}") from exc
    good: list[SessionTrace] = []
    bad: list[MalformedInputError] = []
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                good.append(parse_line(raw, str(path), lineno))
            except MalformedInputError as exc:
                if not raw.endswith(b"\n"):  # the last line, unterminated: an interrupted write
                    exc = MalformedInputError(str(path), lineno, f"torn last line (an interrupted write): {exc.reason}")
                bad.append(exc)
    return good, bad


def write_traces(path: str | Path, traces: Iterable[SessionTrace]) -> None:
    """Write traces as JSONL (replacing the file atomically).

    Raises:
        InputError: a trace holds a string that is not Unicode text (it could not be read back);
            names the file and the session. The file is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as fh:
            for t in traces:
                fh.write(encode_text(t.dumps() + "\n", f"{path}: session {t.session!r}"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# The store lives in its own module; re-exported for modules that import it from here.
from ._trace_store import TraceStore as TraceStore  # noqa: E402
