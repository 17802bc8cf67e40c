"""Fitted models on disk, so a restarted server predicts well at once instead of after a refit.

A model file is gzip-compressed JSON, never a pickle: loading it runs no code, and a file from
another version or another predictor is recognised and refused instead of half-loaded::

    {"format": "prehydrate-model", "version": 1, "predictor": "EnsemblePredictor",
     "sessions": 20000, "saved_at": 1764930000.0, "state": {...}}

``state`` is whatever the predictor's ``state_dict()`` returned (plain lists, dicts, strings and
numbers; floats round-trip exactly through JSON). A predictor that can be persisted implements
:class:`Persistable`. The file is written to a temporary name and renamed over the old one, so a
crash while saving leaves the previous model intact.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._errors import ModelFileError
from ._text import encode_text

__all__ = ["MODEL_FORMAT_VERSION", "Persistable", "load_model", "save_model"]

MODEL_FORMAT_VERSION = 1
"""Bumped whenever a stored state could be read differently; older files are refused and refitted."""

_FORMAT = "prehydrate-model"


@runtime_checkable
class Persistable(Protocol):
    """A predictor whose fitted state can be saved and restored."""

    def state_dict(self) -> dict[str, Any]:
        """The fitted state as JSON-able data (lists, dicts, strings, numbers, booleans)."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; raises ValueError, KeyError or TypeError if it does not fit."""
        ...


def save_model(predictor: Persistable, path: str | Path, *, sessions: int = 0) -> None:
    """Write the predictor's fitted state to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    doc = {
        "format": _FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "predictor": type(predictor).__name__,
        "sessions": sessions,
        "saved_at": time.time(),
        "state": predictor.state_dict(),
    }
    data = gzip.compress(
        encode_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), f"model file {path}"), 6
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_model(predictor: Persistable, path: str | Path) -> int:
    """Restore ``predictor`` from ``path``; returns how many sessions the model was fitted on.

    Raises:
        ModelFileError: the file is damaged, of another format version or of another predictor;
            one sentence naming the file. ``predictor`` is left as it was.
        FileNotFoundError: there is no such file (nothing persisted yet).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path} ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error, ValueError, RecursionError) as exc:
        raise ModelFileError(f"model file {path} is damaged ({type(exc).__name__})") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ModelFileError(f"{path} is not a prehydrate model file")
    if doc.get("version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"model file {path} has format version {doc.get('version')!r}, this prehydrate reads {MODEL_FORMAT_VERSION}"
        )
    if doc.get("predictor") != type(predictor).__name__:
        raise ModelFileError(f"model file {path} holds a {doc.get('predictor')!r}, not a {type(predictor).__name__!r}")
    state = doc.get("state")
    if not isinstance(state, dict):
        raise ModelFileError(f"model file {path} has no state")
    try:
        predictor.load_state(state)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"model file {path} does not fit this predictor ({type(exc).__name__}: {exc})") from exc
    sessions = doc.get("sessions", 0)
    return sessions if isinstance(sessions, int) else 0
