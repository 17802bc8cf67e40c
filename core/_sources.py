"""Sources: where sections come from, behind one small async protocol.

A source is shaped like an httpx transport: the engine calls one coroutine, ``hydrate``, and never
cares whether it reads a file, queries a vector store or calls an API. A source also says whether it
is safe to speculate on (``speculative``: read-only and idempotent); the engine never prefetches from
one that is not, it only hydrates from it on demand.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import inspect
import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._errors import (
    ConfigError,
    InputError,
    MalformedInputError,
    PathTraversalError,
    SourceError,
    UnknownSectionError,
)
from ._jsonl import iter_jsonl
from ._live import SectionChanges
from ._sections import Hydrated, Scope, Section, content_version, estimate_tokens, one_line_summary
from ._splitting import DEFAULT_SUFFIXES, Chunk, file_ids, section_ids, split_file
from ._text import check_text, decode_utf8, utf8
from ._watch import watch_paths

__all__ = [
    "CallableSource",
    "DirectorySource",
    "JsonlSource",
    "MockSource",
    "Source",
    "check_section_id",
    "read_sections_jsonl",
    "sources_from_paths",
]

logger = logging.getLogger("prehydrate.sources")

INDEX_TEXT_CHARS = 2000
"""How much of a section's text the lexical index sees; enough to rank, bounded for big corpora."""

MAX_ID_LENGTH = 512


@runtime_checkable
class Source(Protocol):
    """Where sections come from.

    Implement ``list_sections`` and ``hydrate``; ``aclose`` releases connections. ``speculative``
    must be true only for sources whose hydration is read-only and idempotent.
    """

    name: str
    speculative: bool

    def list_sections(self) -> Sequence[Section]:
        """The sections this source can hydrate, in document order."""
        ...

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        """Produce the content of one section for ``scope``."""
        ...

    async def aclose(self) -> None:
        """Release whatever the source holds open."""
        ...


def check_section_id(section_id: object) -> str:
    """Validate a section id's shape before any lookup: a short string, no NUL, no traversal.

    Ids are looked up in maps, never joined to paths, but refusing ``..`` and absolute forms early
    gives a clear error instead of a confusing "unknown section".
    """
    if not isinstance(section_id, str) or not section_id:
        raise InputError(f"a section id must be a non-empty string, got {section_id!r}")
    if len(section_id) > MAX_ID_LENGTH:
        raise InputError(f"a section id may have at most {MAX_ID_LENGTH} characters, got {len(section_id)}")
    if "\x00" in section_id:
        raise InputError("a section id may not contain NUL bytes")
    check_text(section_id, "a section id")
    parts = re.split(r"[/\\]", section_id.split("#", 1)[0])
    if section_id.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", section_id):
        raise PathTraversalError(section_id, None)
    return section_id


def _section(
    *, section_id: str, title: str, text: str, tags: Sequence[str], source: str, order: int, summary: str | None = None
) -> Section:
    return Section(
        id=section_id,
        title=title,
        tags=tuple(tags),
        size_bytes=len(utf8(text)),
        tokens=estimate_tokens(text),
        version=content_version(text),
        summary=one_line_summary(text) if summary is None else one_line_summary(summary),
        index_text=(title + "\n" + text)[:INDEX_TEXT_CHARS],
        order=order,
        source=source,
    )


# --------------------------------------------------------------------------------------------------
# JSONL


def read_sections_jsonl(path: str | Path) -> list[tuple[Section, str]]:
    """Read a sections file (``{"id", "title", "text", "tags"}`` per line) with its contents.

    Raises:
        MalformedInputError: a line is not JSON, not an object, misses a field, has a wrong type or
            repeats an id. The error names the file and the 1-based line.
    """
    path = Path(path)
    out: list[tuple[Section, str]] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path, "sections file"):
        if not isinstance(obj, dict):
            raise MalformedInputError(str(path), lineno, "expected a JSON object")
        sid, title, text, tags = obj.get("id"), obj.get("title", ""), obj.get("text"), obj.get("tags", [])
        if not isinstance(sid, str) or not sid:
            raise MalformedInputError(str(path), lineno, "'id' must be a non-empty string")
        try:
            check_section_id(sid)
        except InputError as exc:
            raise MalformedInputError(str(path), lineno, str(exc)) from exc
        if not isinstance(title, str):
            raise MalformedInputError(str(path), lineno, "'title' must be a string")
        if not isinstance(text, str):
            raise MalformedInputError(str(path), lineno, "'text' must be a string")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise MalformedInputError(str(path), lineno, "'tags' must be a list of strings")
        if sid in seen:
            raise MalformedInputError(str(path), lineno, f"duplicate section id {sid!r}")
        seen.add(sid)
        section = _section(section_id=sid, title=title or sid, text=text, tags=tags, source=str(path), order=len(out))
        out.append((section, text))
    return out


class JsonlSource:
    """Sections from a JSONL file in the sections format (read once, served from memory)."""

    def __init__(self, path: str | Path, *, name: str | None = None, speculative: bool = True) -> None:
        self.path = Path(path)
        self.name = name or f"jsonl:{self.path.name}"
        self.speculative = speculative
        self._content: dict[str, str] = {}
        self._sections: list[Section] = []
        for section, text in read_sections_jsonl(self.path):
            self._sections.append(section)
            self._content[section.id] = text

    def list_sections(self) -> Sequence[Section]:
        return list(self._sections)

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        try:
            text = self._content[section_id]
        except KeyError:
            raise UnknownSectionError(section_id) from None
        return Hydrated(section_id=section_id, content=text, version=content_version(text))

    async def aclose(self) -> None:
        return None


# --------------------------------------------------------------------------------------------------
# Directory

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_WALK_BY_FD = os.open in os.supports_dir_fd and bool(_O_NOFOLLOW)
"""Open files component by component from the root's descriptor (POSIX); see ``DirectorySource._open``."""


def _read_at_most(fd: int, limit: int) -> bytes:
    """Read from ``fd`` until EOF or ``limit`` bytes, whichever comes first."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class DirectorySource:
    """Markdown, text and code files under a root directory, split into sections at headings.

    Ids are stable and unique by construction: a Markdown file's path relative to the root without
    its suffix (``guides/billing``), any other file's path with it (``config.json``), plus ``#slug``
    of a later heading or ``#Name`` of a Python definition (``guides/billing#refunds``,
    ``tasks.py#Task.cancel``); the rules are in ``prehydrate._splitting`` and docs/sources.md.
    The source never reads outside its root: ``..``,
    absolute paths and symlinks that resolve outside it are refused with
    :class:`~prehydrate.PathTraversalError`, and are skipped (with a warning) while listing.
    Files that are not UTF-8 or larger than ``max_file_bytes`` are skipped with a warning, and so
    are FIFOs, devices and anything else that is not a regular file. Reads run on this source's own
    ``max_threads`` worker threads, so a file system that hangs (a dead network mount) holds at
    most those, never the threads other sources and the engine need.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        name: str | None = None,
        speculative: bool = True,
        suffixes: Iterable[str] | None = None,
        max_file_bytes: int = 4 << 20,
        watch: bool = True,
        only: Iterable[str] | None = None,
        max_threads: int = 4,
    ) -> None:
        root_path = Path(root)
        if not root_path.is_dir():
            raise ConfigError(f"DirectorySource root {str(root_path)!r} is not a directory")
        self.root = root_path.resolve()
        self.name = name or f"dir:{self.root.name}"
        self.speculative = speculative
        self.suffixes = frozenset(s.lower() for s in suffixes) if suffixes else DEFAULT_SUFFIXES
        self.max_file_bytes = max_file_bytes
        self.watch = watch
        """Follow file changes while an engine runs (``changes()``); off, changes wait for a refresh."""
        if max_threads < 1:
            raise ConfigError("DirectorySource max_threads must be at least 1")
        self.max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None
        self.skipped: list[tuple[str, str]] = []
        """Files left out while listing, with the reason (escaping symlink, not UTF-8, too large)."""
        self._where: dict[str, tuple[str, str | None]] = {}
        self._file_ids: dict[str, str] = {}
        self.only = tuple(sorted(only)) if only is not None else None
        """Root-relative files to serve instead of walking the root (``prehydrate serve README.md``)."""
        self._sections: list[Section] | None = None
        self._per_file: dict[str, list[Section]] | None = None
        """Each listed file's sections, in file order: what a change of a few files re-reads around."""

    def resolve(self, relative: str) -> Path:
        """Resolve a path relative to the root, refusing anything that would leave it."""
        if "\x00" in relative:
            raise InputError("paths may not contain NUL bytes")
        candidate = Path(relative)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise PathTraversalError(relative, str(self.root))
        resolved = (self.root / candidate).resolve()
        if not resolved.is_relative_to(self.root):
            raise PathTraversalError(relative, str(self.root))
        return resolved

    def _files(self) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith(".") or Path(fn).suffix.lower() not in self.suffixes:
                    continue
                rel = os.path.relpath(os.path.join(dirpath, fn), self.root).replace(os.sep, "/")
                found.append(rel)
        return sorted(found)

    def _open(self, rel: str) -> int:
        """Open a file under the root as one object: the path checked is the path opened.

        Checking a path and then opening it again lets a swap in between (a directory replaced by a
        symlink to outside) serve outside content. Here the canonical in-root path is opened one
        component at a time from a descriptor of the root, never following a symlink, so each step
        is the real child of the directory before it. ``O_NONBLOCK`` keeps a FIFO from blocking.
        """
        path = self.resolve(rel)
        parts = path.relative_to(self.root).parts
        if not _WALK_BY_FD:  # no dir_fd (Windows): open, then require the in-root path to be that file
            fd = os.open(path, _FILE_FLAGS)
            opened, now = os.fstat(fd), os.stat(self.resolve(rel))
            if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                os.close(fd)
                raise PathTraversalError(rel, str(self.root))
            return fd
        dfd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts[:-1]:
                nfd = os.open(part, _DIR_FLAGS | _O_NOFOLLOW, dir_fd=dfd)
                os.close(dfd)
                dfd = nfd
            return os.open(parts[-1], _FILE_FLAGS | _O_NOFOLLOW, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a component became a symlink since resolve()
                raise PathTraversalError(rel, str(self.root)) from None
            raise
        finally:
            os.close(dfd)

    def _read(self, rel: str) -> str:
        """Read a regular file under the root, its size checked on the open descriptor."""
        fd = self._open(rel)
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise InputError(f"{rel}: not a regular file")
            if opened.st_size > self.max_file_bytes:
                raise InputError(f"{rel}: {opened.st_size} bytes is over the limit of {self.max_file_bytes}")
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
            data = _read_at_most(fd, self.max_file_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_file_bytes:
            raise InputError(f"{rel}: over the limit of {self.max_file_bytes} bytes (it grew while read)")
        return decode_utf8(data, rel)

    def _chunks(self, rel: str, text: str) -> list[tuple[str, Chunk]]:
        file_id = self._file_ids.get(rel) or file_ids([rel])[rel]
        return section_ids(file_id, split_file(rel, text, root_name=self.root.name))

    def _skip(self, skipped: list[tuple[str, str]], rel: str, reason: str) -> None:
        skipped.append((rel, reason))
        logger.warning("DirectorySource %s: skipped %s", self.root, reason)

    def list_sections(self) -> Sequence[Section]:
        """Scan the root again on every call, so ``Engine.refresh()`` sees added, removed and edited files.

        A file that cannot be read (unreadable, not UTF-8, too large, a symlink loop or one that leaves
        the root) is skipped with a warning naming it and listed in :attr:`skipped`; it never takes the
        rest of the folder down. Ids follow the rules of ``prehydrate._splitting`` (unique by construction).
        """
        where: dict[str, tuple[str, str | None]] = {}
        skipped: list[tuple[str, str]] = []
        files = list(self.only) if self.only is not None else self._files()
        self._file_ids = file_ids(files)
        per_file: dict[str, list[Section]] = {}
        for rel in files:
            found = self._list_file(rel, where, skipped)
            if found is not None:
                per_file[rel] = found
        self._where, self.skipped, self._per_file = where, skipped, per_file
        self._sections = _numbered(per_file)
        return list(self._sections)

    def _list_file(
        self, rel: str, where: dict[str, tuple[str, str | None]], skipped: list[tuple[str, str]]
    ) -> list[Section] | None:
        """One file's sections (recorded in ``where``), or None when it is skipped (recorded in ``skipped``)."""
        try:
            chunks = self._chunks(rel, self._read(rel))
        except (InputError, OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            reason = getattr(exc, "strerror", None) or exc  # strerror: no absolute server path
            self._skip(skipped, rel, str(exc) if isinstance(exc, InputError) else f"{rel}: {reason}")
            return None
        taken = next((sid for sid, _ in chunks if sid in where), None)
        if taken is not None:  # only odd names reach here (a '#' in a file name): keep the first file
            self._skip(skipped, rel, f"{rel}: section id {taken!r} is already taken by {where[taken][0]}")
            return None
        out: list[Section] = []
        for sid, chunk in chunks:
            where[sid] = (rel, chunk.anchor)
            out.append(
                _section(
                    section_id=sid,
                    title=chunk.title,
                    text=chunk.text,
                    tags=(rel.split("/", 1)[0],) if "/" in rel else (),
                    source=self.name,
                    order=len(out),
                    summary=chunk.summary,
                )
            )
        return out

    def changes(self) -> AsyncIterator[SectionChanges]:
        """Watch the root (unless ``watch=False``): each batch of file changes as a change set.

        The engine follows this (see :class:`~prehydrate.LiveSource`), so an edited, added, removed
        or renamed file is served at its new content without a refresh.
        """
        if not self.watch:
            return _no_changes()
        watched = [self.root / rel for rel in self.only] if self.only is not None else [self.root]
        return watch_paths(watched, self.relist, self._sections)

    def relist(self, paths: Set[Path]) -> Sequence[Section]:
        """The listing after the files at ``paths`` changed: only those are read again.

        Falls back to a full :meth:`list_sections` when it cannot tell cheaply (no listing yet, an
        ``only`` list, an empty batch, a folder that appeared, or a change of some other file's id).
        """
        if self._sections is None or self.only is not None or not paths or self._per_file is None:
            return self.list_sections()
        files = set(self._per_file)
        touched: set[str] = set()
        for path in paths:
            rel = _relative(self.root, path)
            if rel is None or any(part.startswith(".") for part in rel.split("/")):
                continue
            if path.is_dir():
                return self.list_sections()  # a folder moved in: walk it like a fresh listing would
            gone = [f for f in files if f == rel or f.startswith(rel + "/")]
            files.difference_update(gone)
            touched.update(gone)
            if Path(rel).suffix.lower() in self.suffixes and (path.is_file() or path.is_symlink()):
                files.add(rel)
                touched.add(rel)
        return self._relist_files(sorted(files), touched)

    def _relist_files(self, files: list[str], touched: set[str]) -> Sequence[Section]:
        assert self._per_file is not None
        if set(files) != set(self._per_file) or touched - set(self._per_file):
            ids = file_ids(files)  # the set of files changed: ids may too (only a clash changes them)
            if any(ids[f] != self._file_ids.get(f) for f in files if f not in touched):
                return self.list_sections()  # another file's id changed (a name clash came or went)
            self._file_ids = ids
        ids = self._file_ids
        per_file = {f: v for f, v in self._per_file.items() if f in ids and f not in touched}
        skipped = [(rel, why) for rel, why in self.skipped if rel not in touched]
        where = {sid: w for sid, w in self._where.items() if w[0] in per_file}
        for rel in sorted(touched & set(files)):
            found = self._list_file(rel, where, skipped)
            if found is not None:
                per_file[rel] = found
        self._per_file = {f: per_file[f] for f in files if f in per_file}
        self._sections = _numbered(self._per_file)
        self._where, self.skipped = where, skipped
        return list(self._sections)

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        check_section_id(section_id)
        if self._sections is None:
            self.list_sections()
        where = self._where.get(section_id)
        if where is None:
            raise UnknownSectionError(section_id)
        rel, _ = where
        try:
            if self._pool is None:  # made on first use, and again after aclose()
                self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="prehydrate-read")
            text = await asyncio.get_running_loop().run_in_executor(self._pool, self._read, rel)
        except OSError as exc:
            # strerror, not str(exc): the latter carries the server's absolute path to the client
            reason = exc.strerror or type(exc).__name__
            raise SourceError(f"cannot read {rel}: {reason}", section_id=section_id, source=self.name) from exc
        for sid, chunk in self._chunks(rel, text):
            if sid == section_id:
                return Hydrated(
                    section_id=sid, content=chunk.text, version=content_version(chunk.text), title=chunk.title
                )
        raise SourceError(
            f"section {section_id!r} is no longer in {rel} (the file changed)",
            section_id=section_id,
            source=self.name,
        )

    async def aclose(self) -> None:
        """Release the read threads; a read stuck in the file system is abandoned, not waited for."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _numbered(per_file: dict[str, list[Section]]) -> list[Section]:
    """Every file's sections in file order, numbered in document order across the folder (in place:
    a later re-listing renumbers only what moved)."""
    out: list[Section] = []
    for rel, found in per_file.items():
        if any(s.order != len(out) + i for i, s in enumerate(found)):
            found = per_file[rel] = [replace(s, order=len(out) + i) for i, s in enumerate(found)]
        out.extend(found)
    return out


def _relative(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it is not under it."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        try:
            rel = path.resolve().relative_to(root)
        except (ValueError, OSError):
            return None
    text = rel.as_posix()
    return None if text in ("", ".") else text


async def _no_changes() -> AsyncIterator[SectionChanges]:
    """A change stream that ends at once (a source that is not watched)."""
    return
    yield SectionChanges()  # pragma: no cover - makes this an async generator


# --------------------------------------------------------------------------------------------------
# Callables and mocks

HydrateFn = Callable[[str, Scope], "str | Hydrated | Awaitable[str | Hydrated]"]


def _as_sections(sections: Iterable[Section | str], source: str) -> list[Section]:
    out: list[Section] = []
    for i, s in enumerate(sections):
        if isinstance(s, str):
            out.append(Section(id=check_section_id(s), title=s, order=i, source=source))
        else:
            out.append(s)
    return out


async def _call(fn: HydrateFn, section_id: str, scope: Scope) -> Hydrated:
    return await _hydrated(fn(section_id, scope), section_id)


async def _hydrated(result: str | Hydrated | Awaitable[str | Hydrated], section_id: str) -> Hydrated:
    """What a hydrate function returned (awaited when it is awaitable), as a :class:`Hydrated`."""
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Hydrated):
        return result
    if not isinstance(result, str):
        raise SourceError(
            f"hydrate function returned {type(result).__name__}, expected str or Hydrated",
            section_id=section_id,
        )
    return Hydrated(section_id=section_id, content=result, version=content_version(result))


def _is_async(fn: object) -> bool:
    """Whether calling ``fn`` only makes a coroutine (an ``async def``, or an object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class CallableSource:
    """A Python callable (sync or async) as a source: ``fn(section_id, scope) -> str | Hydrated``.

    ``speculative`` defaults to False because an arbitrary callable may have side effects; pass
    True when it is read-only and idempotent so the engine may prefetch from it.

    A synchronous ``fn`` never runs on the event loop: it runs on this source's own ``max_threads``
    worker threads (with the caller's context variables), so one that blocks (a slow API client,
    a lock, a hung socket) holds at most those threads while every other source, and this one's
    other sections as long as a thread is free, keeps being served. An ``async def`` runs on the loop.
    """

    def __init__(
        self,
        fn: HydrateFn,
        sections: Iterable[Section | str],
        *,
        name: str = "callable",
        speculative: bool = False,
        max_threads: int = 4,
    ) -> None:
        if max_threads < 1:
            raise ConfigError("CallableSource max_threads must be at least 1")
        self.fn = fn
        self.name = name
        self.speculative = speculative
        self.max_threads = max_threads
        self._sections = _as_sections(sections, name)
        self._ids = {s.id for s in self._sections}
        self._pool: ThreadPoolExecutor | None = None

    def list_sections(self) -> Sequence[Section]:
        return list(self._sections)

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        if section_id not in self._ids:
            raise UnknownSectionError(section_id)
        if _is_async(self.fn):
            return await _call(self.fn, section_id, scope)
        if self._pool is None:  # made on first use, and again after aclose()
            self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="prehydrate-callable")
        run = functools.partial(contextvars.copy_context().run, self.fn, section_id, scope)
        return await _hydrated(await asyncio.get_running_loop().run_in_executor(self._pool, run), section_id)

    async def aclose(self) -> None:
        """Release the worker threads; a call stuck in ``fn`` is abandoned, not waited for."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class MockSource:
    """A source for tests, examples and replay: a handler plus simulated latency and call counts.

    Like httpx's ``MockTransport``: ``MockSource(handler, sections)`` where ``handler(section_id,
    scope)`` returns the content (sync or async). ``latency_s`` sleeps on the event loop before each
    hydration, so virtual-time loops (looptime) make it free to simulate. ``calls`` records every
    hydration in order; ``active`` and ``max_active`` count concurrent ones.
    """

    def __init__(
        self,
        handler: HydrateFn,
        sections: Iterable[Section | str],
        *,
        name: str = "mock",
        speculative: bool = True,
        latency_s: float | Callable[[str], float] = 0.0,
    ) -> None:
        self.handler = handler
        self.name = name
        self.speculative = speculative
        self.latency_s = latency_s
        self._sections = _as_sections(sections, name)
        self._ids = {s.id for s in self._sections}
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0

    def list_sections(self) -> Sequence[Section]:
        return list(self._sections)

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        if section_id not in self._ids:
            raise UnknownSectionError(section_id)
        self.calls.append(section_id)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            delay = self.latency_s(section_id) if callable(self.latency_s) else self.latency_s
            if delay > 0:
                await asyncio.sleep(delay)
            return await _call(self.handler, section_id, scope)
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        return None


def sources_from_paths(paths: Iterable[str | Path]) -> list[Source]:
    """Sources for command-line paths: a directory becomes a DirectorySource, ``.jsonl`` a JsonlSource,
    and any other file a DirectorySource over its folder that serves that file only."""
    out: list[Source] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.append(DirectorySource(path))
        elif path.suffix == ".jsonl" and path.is_file():
            out.append(JsonlSource(path))
        elif path.is_file() and path.suffix.lower() in DEFAULT_SUFFIXES:
            out.append(DirectorySource(path.parent, name=f"file:{path.name}", only=[path.name]))
        elif not path.exists():
            raise ConfigError(f"no such file or directory: {str(path)!r}")
        else:
            kinds = ", ".join(sorted(DEFAULT_SUFFIXES))
            raise ConfigError(f"{str(path)!r} is not a directory, a .jsonl sections file or a text file ({kinds})")
    return out
