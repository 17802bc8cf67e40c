"""The TraceStore: recorded sessions on disk, one file per tenant, that never block a start.

A trace file is written by a running server and read back at its next start, so it must survive
what servers meet: a crash or a full disk in the middle of an append, a stray binary line, two
processes appending at once, and years of traffic. Hence:

- **Appends cannot tear a previous line.** A session is one line written by one ``os.write`` on a
  descriptor opened with ``O_APPEND`` while holding an exclusive ``flock`` (POSIX), so concurrent
  writers, threads or processes, never interleave. A write that fails half-way is cut back off; a
  torn tail left by a crash is closed by the next writer, which starts on a new line.
- **Loading is tolerant.** A torn last line is truncated with a warning; any other bad line is
  copied to a side file (``<file>.quarantine``, one JSON object naming ``file:line``, the reason
  and the line) and blanked in place, so it is reported once. Neither is ever fatal.
- **Retention is bounded.** The live file rotates beyond ``max_file_bytes`` (``.1`` is the newest
  backup), ``backups`` rotated files are kept, and rotated files older than ``max_age_days`` are
  deleted. A fit reads only the ``fit_window`` most recent sessions, from the end of the files.
- **Tenants are stored apart.** The default tenant's sessions go to the store's path; another
  tenant's go to ``<stem>.tenants/<tenant>.jsonl`` beside it, so its queries never share a file
  with another tenant's and its predictor learns from its own sessions only.
- **Lines are UTF-8.** Text a client sent was made Unicode text where it entered the engine
  (:func:`~prehydrate._text.clean_text`); a session built by hand is cleaned the same way as it is
  written, so a lone surrogate never makes a line that other readers (``jq``, an editor, a strict
  UTF-8 decoder, :func:`~prehydrate.write_traces`) refuse.
- **fsync policy.** By default lines are handed to the OS and not fsynced: a crash of the process
  loses nothing written, a crash of the machine may lose the last seconds of sessions (and leave a
  torn tail, repaired as above). ``TraceRetention(fsync=True)`` fsyncs every append.
- **An I/O error never loses a session silently.** A failed append is logged and the session kept
  in memory, retried at the next append; :meth:`TraceStore.close` writes what is still kept to a
  file in the system temporary directory and names it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ._errors import ConfigError, MalformedInputError
from ._sections import DEFAULT_TENANT
from ._text import clean_text, from_utf8, log_text, utf8
from ._traces import SessionTrace, parse_line

try:  # POSIX advisory locks; without them (Windows) appends still go through one os.write each
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None  # type: ignore[assignment]

__all__ = ["TraceRetention", "TraceStore", "tenant_file_stem"]

logger = logging.getLogger("prehydrate.traces")

_CHUNK = 1 << 20
_QUARANTINED_LINE_CHARS = 1 << 20
_KEPT_SESSIONS = 10_000
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRetention:
    """How much a TraceStore keeps and how much a fit reads (defaults bound disk and fit time).

    Per tenant the store holds at most ``max_file_bytes * (backups + 1)`` bytes (256 MiB by
    default); a fit reads the ``fit_window`` most recent sessions of a tenant.
    """

    max_file_bytes: int = 64 << 20
    """The live file is rotated (to ``.1``) once an append takes it past this size."""
    backups: int = 3
    """Rotated files kept per tenant; the oldest beyond this is deleted."""
    max_age_days: float | None = 90.0
    """Rotated files last written longer ago than this are deleted (``None``: kept)."""
    fit_window: int = 20_000
    """Most recent sessions a fit learns from (older ones stay on disk until rotated away)."""
    fsync: bool = False
    """fsync after every append (survives a machine crash; costs a disk flush per session)."""

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0 or self.backups < 0 or self.fit_window <= 0:
            raise ConfigError("TraceRetention: max_file_bytes and fit_window must be positive, backups >= 0")
        if self.max_age_days is not None and self.max_age_days <= 0:
            raise ConfigError("TraceRetention: max_age_days must be positive or None")


def tenant_file_stem(tenant: str) -> str:
    """A file name stem for a tenant that cannot leave its directory (no dots, no separators)."""
    raw = utf8(tenant)
    enc = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(enc) > 120:
        enc = "h-" + hashlib.sha256(raw).hexdigest()
    return enc


def _tenant_file_name(tenant: str) -> str:
    return tenant_file_stem(tenant) + ".jsonl"


@dataclass(slots=True)
class _Bad:
    offset: int
    raw: bytes
    reason: str
    torn: bool = False
    line: int = 0


class TraceStore:
    """Recorded sessions, appended as JSON lines, one file per tenant (see the module docstring).

    Args:
        path: the default tenant's file; other tenants' files go to ``<stem>.tenants/`` beside it.
        retention: rotation, age, fit window and fsync policy (defaults: :class:`TraceRetention`).

    Example:
        >>> import tempfile, prehydrate as ph
        >>> store = ph.TraceStore(tempfile.mkdtemp() + "/traces.jsonl")
        >>> store.append(ph.SessionTrace(session="s-1", tenant="acme"))
        >>> [t.session for t in store.load(tenant="acme")], store.load(tenant="other")
        (['s-1'], [])
    """

    def __init__(self, path: str | Path, *, retention: TraceRetention | None = None) -> None:
        self.path = Path(path)
        self.retention = retention if retention is not None else TraceRetention()
        self._lock = threading.Lock()
        self._pending: deque[SessionTrace] = deque(maxlen=_KEPT_SESSIONS)
        self._listeners: list[Callable[[SessionTrace], None]] = []

    # -- layout ------------------------------------------------------------------------------------

    @property
    def tenants_dir(self) -> Path:
        """Where tenants other than the default one are recorded."""
        return self.path.with_name(self.path.stem + ".tenants")

    def path_for(self, tenant: str | None) -> Path:
        """The live file of ``tenant`` (``None`` and the default tenant use ``path``)."""
        if tenant is None or tenant == DEFAULT_TENANT:
            return self.path
        return self.tenants_dir / _tenant_file_name(tenant)

    def _files(self, live: Path) -> list[Path]:
        """The live file and its rotated backups, newest first."""
        return [live] + [live.with_name(f"{live.name}.{i}") for i in range(1, self.retention.backups + 1)]

    def tenants(self) -> list[str]:
        """Every tenant with recorded sessions (sorted; the default tenant when its file exists)."""
        found = {DEFAULT_TENANT} if any(p.exists() for p in self._files(self.path)) else set()
        if self.tenants_dir.is_dir():
            for p in self.tenants_dir.glob("*.jsonl*"):  # a live file, or only backups right after a rotation
                if p.name.endswith(".quarantine") or p.name.startswith("."):
                    continue
                tenant = self._tenant_of(p.with_name(p.name.split(".jsonl")[0] + ".jsonl"))
                if tenant is not None:
                    found.add(tenant)
        return sorted(found)

    def _tenant_of(self, live: Path) -> str | None:
        name = live.name[: -len(".jsonl")]
        if not name.startswith("h-"):
            with contextlib.suppress(UnicodeDecodeError, ValueError):
                return from_utf8(_unquote(name))
            return None
        for trace in self._recent(live, 1):  # a hashed name: the lines carry the tenant
            return trace.tenant
        return None

    def quarantine_path(self, live: Path | None = None) -> Path:
        """The side file that bad lines of ``live`` (default: ``path``) are moved to."""
        live = self.path if live is None else live
        return live.with_name(live.name + ".quarantine")

    # -- writing -----------------------------------------------------------------------------------

    def append(self, trace: SessionTrace) -> None:
        """Record one session in its tenant's file; an I/O error keeps it in memory (logged)."""
        with self._lock:
            for kept in list(self._pending):
                if not self._try_write(kept, quiet=True):
                    break
                self._pending.popleft()
            if self._pending or not self._try_write(trace, quiet=False):
                self._pending.append(trace)
        for listener in list(self._listeners):
            listener(trace)

    def subscribe(self, listener: Callable[[SessionTrace], None]) -> None:
        """Call ``listener`` with every session appended from now on (online learning listens here)."""
        self._listeners.append(listener)

    def extend(self, traces: Sequence[SessionTrace]) -> None:
        """Record several sessions."""
        for t in traces:
            self.append(t)

    @property
    def pending(self) -> int:
        """Sessions kept in memory because writing them failed (retried at the next append)."""
        return len(self._pending)

    def close(self) -> Path | None:
        """Write sessions still kept in memory: to their file, else to a temporary file (named)."""
        with self._lock:
            while self._pending and self._try_write(self._pending[0], quiet=True):
                self._pending.popleft()
            if not self._pending:
                return None
            fd, name = tempfile.mkstemp(prefix="prehydrate-traces-", suffix=".jsonl")
            with os.fdopen(fd, "wb") as fh:
                for t in self._pending:
                    fh.write(_line(t))
            kept = len(self._pending)
            logger.warning("%d session(s) could not be recorded in %s; written to %s", kept, self.path, name)
            self._pending.clear()
            return Path(name)

    def _try_write(self, trace: SessionTrace, *, quiet: bool) -> bool:
        live = self.path_for(trace.tenant)
        try:
            self._write_line(live, _line(trace))
        except OSError as exc:
            if not quiet:
                logger.warning(
                    "cannot record session %r in %s (%s); kept in memory and retried at the next append",
                    trace.session,
                    live,
                    exc.strerror or exc,
                )
            return False
        return True

    def _write_line(self, live: Path, data: bytes) -> None:
        live.parent.mkdir(parents=True, exist_ok=True)
        with _locked(live) as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a crash tore the last line: start on a new one
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.retention.fsync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # never leave half a line for the next reader
                raise
            if size + len(data) > self.retention.max_file_bytes:
                self._rotate(live)

    def _rotate(self, live: Path) -> None:
        """Shift ``live`` to ``.1`` (and ``.i`` to ``.i+1``); drop the oldest and expired backups."""
        files = self._files(live)
        if len(files) == 1:
            live.unlink()
            return
        for older, newer in zip(reversed(files[1:]), reversed(files[:-1]), strict=True):
            if newer.exists():
                os.replace(newer, older)
        self._expire(files[1:])

    def _expire(self, rotated: Sequence[Path]) -> None:
        if self.retention.max_age_days is None:
            return
        cutoff = time.time() - self.retention.max_age_days * 86400
        for p in rotated:
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < cutoff:
                    p.unlink()

    # -- reading -----------------------------------------------------------------------------------

    def load(self, tenant: str | None = None, *, limit: int | None = None) -> list[SessionTrace]:
        """Recorded sessions, oldest first; bad lines are quarantined, never fatal.

        Args:
            tenant: one tenant's sessions; ``None`` reads every tenant (each file in turn).
            limit: at most this many of the most recent sessions (per tenant when ``tenant`` is None).
        """
        if tenant is not None:
            return self._recent(self.path_for(tenant), limit, tenant=tenant)
        out: list[SessionTrace] = []
        for t in self.tenants():
            out.extend(self._recent(self.path_for(t), limit, tenant=t))
        return out

    def recent(self, tenant: str | None) -> list[SessionTrace]:
        """The sessions a fit of ``tenant`` reads: its ``fit_window`` most recent ones."""
        return self.load(tenant if tenant is not None else DEFAULT_TENANT, limit=self.retention.fit_window)

    def __iter__(self) -> Iterator[SessionTrace]:
        return iter(self.load())

    def _recent(self, live: Path, limit: int | None, *, tenant: str | None = None) -> list[SessionTrace]:
        chunks: list[list[SessionTrace]] = []
        left = limit
        if limit is not None and limit <= 0:
            return []
        files = self._files(live)
        self._expire(files[1:])
        for p in files:
            if not p.exists():
                continue
            found = self._scan(p, left)
            if tenant is not None:
                found = [t for t in found if (t.tenant or DEFAULT_TENANT) == tenant]
            chunks.append(found)
            if left is not None:
                left -= len(found)
                if left <= 0:
                    break
        return [t for chunk in reversed(chunks) for t in chunk]

    def _scan(self, path: Path, limit: int | None) -> list[SessionTrace]:
        """The last ``limit`` valid sessions of one file, read from its end; repairs bad lines."""
        try:
            fh = path.open("rb")
        except OSError as exc:
            logger.warning("cannot read traces file %s (%s); learning without it", path, exc.strerror or exc)
            return []
        good: list[SessionTrace] = []
        bad: list[_Bad] = []
        with fh:
            stat = os.fstat(fh.fileno())
            size = stat.st_size
            for offset, raw, terminated in _lines_backwards(fh, size):
                if limit is not None and len(good) >= limit:
                    break
                if not raw.strip():
                    continue
                try:
                    good.append(parse_line(raw, str(path), 0))
                except MalformedInputError as exc:
                    bad.append(_Bad(offset, raw, exc.reason, torn=not terminated))
            if bad:
                _number_lines(fh, bad)
        if bad:
            self._quarantine(path, bad, size, stat.st_ino)
        good.reverse()
        return good

    def _quarantine(self, path: Path, bad: list[_Bad], size: int, inode: int) -> None:
        side = self.quarantine_path(path)
        try:
            with side.open("ab") as out:
                for b in sorted(bad, key=lambda b: b.offset):
                    text = log_text(b.raw)[:_QUARANTINED_LINE_CHARS]
                    where = f"{path}:{b.line}"
                    out.write(utf8(json.dumps({"where": where, "reason": b.reason, "line": text}) + "\n"))
            with _locked(path, append=False) as fd:
                now = os.fstat(fd).st_size
                # Rotated since it was read: the offsets belong to another file now, repair nothing.
                repairs = bad if os.fstat(fd).st_ino == inode else []
                for b in repairs:
                    if b.torn and now == size:
                        os.ftruncate(fd, b.offset)
                    else:
                        os.pwrite(fd, b" " * len(b.raw), b.offset)
        except OSError as exc:
            logger.warning("cannot quarantine bad lines of %s (%s); they are skipped", path, exc.strerror or exc)
        for b in bad:
            if b.torn:
                logger.warning(
                    "%s:%d: a torn last line (an interrupted write) was cut off, kept in %s", path, b.line, side
                )
        rest = [b for b in bad if not b.torn]
        if rest:
            first = min(rest, key=lambda b: b.offset)
            logger.warning(
                "%s: %d bad line(s) skipped and moved to %s (first %s:%d: %s)",
                path,
                len(rest),
                side,
                path,
                first.line,
                first.reason,
            )


def _line(trace: SessionTrace) -> bytes:
    """A session's line: always UTF-8. A session's text was made valid as it entered the engine; a
    SessionTrace built by hand with a lone surrogate is written with U+FFFD in its place, never as
    bytes that are not UTF-8."""
    return utf8(clean_text(trace.dumps()) + "\n")


def _unquote(name: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(name):
        if name[i] == "%":
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(name[i].encode("ascii"))
            i += 1
    return bytes(out)


@contextlib.contextmanager
def _locked(path: Path, *, append: bool = True) -> Iterator[int]:
    """A descriptor of ``path`` opened for appending (or repairs), under an exclusive lock on that very file.

    Repairs open without ``O_APPEND``: on Linux ``pwrite`` on an appending descriptor ignores the offset.

    A rotation may replace the file between ``open`` and ``flock``: the lock is then taken again
    on the new file, so no writer appends to a file that was already rotated away.
    """
    flags = os.O_RDWR | (os.O_APPEND | os.O_CREAT if append else 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        fd = os.open(path, flags, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield fd
                return
        finally:
            os.close(fd)


def _lines_backwards(fh: BinaryIO, size: int) -> Iterator[tuple[int, bytes, bool]]:
    """``(offset, line, ends_with_newline)`` of every line of ``fh``, the last line first."""
    pos = size
    buf = b""
    end_of_file = True
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        cut = buf.find(b"\n") + 1 if pos > 0 else 0
        if pos > 0 and cut == 0:
            continue  # one line longer than the chunks read so far
        region, buf = buf[cut:], buf[:cut]
        parts = region.split(b"\n")
        offsets = []
        at = pos + cut
        for part in parts:
            offsets.append(at)
            at += len(part) + 1
        last = len(parts) - 1
        for i in range(last, -1, -1):
            if i == last:
                if parts[i] and end_of_file:
                    yield offsets[i], parts[i], False
                end_of_file = False
                continue
            yield offsets[i], parts[i], True


def _number_lines(fh: BinaryIO, bad: list[_Bad]) -> None:
    """Fill in the 1-based line number of each bad line (one pass over the file up to the last)."""
    targets = sorted(bad, key=lambda b: b.offset)
    fh.seek(0)
    pos = 0
    newlines = 0
    for b in targets:
        while pos < b.offset:
            chunk = fh.read(min(_CHUNK, b.offset - pos))
            if not chunk:
                break
            newlines += chunk.count(b"\n")
            pos += len(chunk)
        b.line = newlines + 1
