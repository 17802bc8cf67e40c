"""A database as a source: one section per row (or per group of rows) of a table or a query.

Rows change while agents work, so every section carries a real version: the row's
``version_column`` (an ``updated_at`` or a revision counter) when the table has one, otherwise a
hash of the row's content. Hydration re-reads the row, so what is served is what the database
holds now; ``poll()`` (and ``changes()``, its periodic form) re-reads only ids and versions and
reports which sections were added, changed or removed since the last look.

SQLAlchemy does the talking (any database it supports: SQLite, PostgreSQL, MySQL, ...). It is an
optional dependency: ``pip install "prehydrate[sql]"``. Queries run in a worker thread, so a slow
database never blocks the event loop.

Example:
    >>> src = SqlSource("sqlite:///kb.db", table="articles", id_column="slug",
    ...                 title_column="title", version_column="updated_at")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, SourceError, UnknownSectionError
from ._live import SectionChanges, diff_sections
from ._sections import Hydrated, Scope, Section, content_version, estimate_tokens, one_line_summary
from ._sources import INDEX_TEXT_CHARS, check_section_id
from ._text import utf8

if TYPE_CHECKING:  # pragma: no cover - types only
    from sqlalchemy.engine import Engine as SqlEngine
    from sqlalchemy.sql import Select

__all__ = ["SqlSource"]


def _sqlalchemy() -> Any:
    """The sqlalchemy module, or a one-line error naming the extra to install."""
    try:
        return importlib.import_module("sqlalchemy")
    except ImportError:
        raise ConfigError('SqlSource needs SQLAlchemy: pip install "prehydrate[sql]"') from None


def _first_line(exc: BaseException) -> str:
    """A database error in one line: the driver's own message without SQLAlchemy's SQL echo and link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class SqlSource:
    """Rows of a table (or of a read-only query) as sections.

    A section's id is the ``id_column`` value (or the ``group_column`` value when rows are
    grouped), its title the ``title_column`` (default: the id), its text the ``text_columns`` as
    ``column: value`` lines (default: every other column), its tags the comma-separated
    ``tags_column``. The source is speculative (a SELECT is read-only and idempotent).
    """

    def __init__(
        self,
        url: str | SqlEngine,
        *,
        id_column: str,
        table: str | None = None,
        query: str | None = None,
        title_column: str | None = None,
        text_columns: Sequence[str] | None = None,
        tags_column: str | None = None,
        version_column: str | None = None,
        group_column: str | None = None,
        name: str = "sql",
        poll_interval_s: float = 2.0,
    ) -> None:
        """Describe where the rows are; nothing is read until ``list_sections``.

        Args:
            url: a SQLAlchemy URL (``sqlite:///kb.db``, ``postgresql+psycopg://...``) or an engine.
            id_column: the column whose value is a row's section id.
            table: a table name; exactly one of ``table`` and ``query`` is given.
            query: a SELECT (wrapped as a subquery, so it must be a plain SELECT).
            title_column: the section title (default: the id).
            text_columns: the columns that make the text (default: all but id and version).
            tags_column: comma-separated tags.
            version_column: a column that changes whenever the row does (``updated_at``); without it
                the version is a hash of the row's content, which costs a full read per poll.
            group_column: one section per distinct value of this column (rows joined in id order);
                the section id is the group value.
            name: the source name (stubs, events).
            poll_interval_s: how often ``changes()`` looks for changed rows.

        Raises:
            ConfigError: SQLAlchemy missing, both or neither of table/query, a bad interval.
        """
        sa = _sqlalchemy()
        if (table is None) == (query is None):
            raise ConfigError("SqlSource needs exactly one of table= and query=")
        if not poll_interval_s > 0:
            raise ConfigError(f"poll_interval_s must be positive, got {poll_interval_s!r}")
        self.name = name
        self.speculative = True
        self.poll_interval_s = float(poll_interval_s)
        self._columns = _Columns(id_column, title_column, text_columns, tags_column, version_column, group_column)
        self._engine: SqlEngine = sa.create_engine(url) if isinstance(url, str) else url
        self._owns_engine = isinstance(url, str)
        self._from = sa.table(table) if table is not None else sa.text(query).columns().subquery("q")
        self._table_name = table
        self._known: dict[str, Section] = {}

    # ---------------------------------------------------------------------------------------------
    # reading

    def _select(self, key: str | None) -> Select[Any]:
        """``SELECT * FROM table-or-(query)``, for one key if given, in key then id order.

        The key is compared as text (ids are strings, a column may be an integer) with a bound
        parameter, so no value is ever spliced into SQL.
        """
        sa = _sqlalchemy()
        stmt = sa.select(sa.text("*")).select_from(self._from)
        if key is not None:
            stmt = stmt.where(sa.cast(sa.column(self._columns.key), sa.String) == key)
        return stmt.order_by(sa.column(self._columns.key), sa.column(self._columns.id))  # type: ignore[no-any-return]

    def _rows(self, key: str | None = None) -> list[Mapping[str, Any]]:
        """Every row (or one key's rows) as mappings; database errors as one-line SourceErrors."""
        sa = _sqlalchemy()
        try:
            with self._engine.connect() as conn:
                return [dict(r) for r in conn.execute(self._select(key)).mappings()]
        except sa.exc.SQLAlchemyError as exc:
            what = f"table {self._table_name!r}" if self._table_name else "its query"
            message = f"SQL source {self.name!r} could not read {what}: {_first_line(exc)}"
            raise SourceError(message, source=self.name) from None

    def _grouped(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
        out: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            out.setdefault(str(row[self._columns.key]), []).append(row)
        return out

    def _build(self) -> list[Section]:
        sections: list[Section] = []
        for order, (sid, rows) in enumerate(self._grouped(self._rows()).items()):
            text = self._columns.text(rows)
            title = self._columns.title(rows, sid)
            sections.append(
                Section(
                    id=check_section_id(sid),
                    title=title,
                    tags=self._columns.tags(rows),
                    size_bytes=len(utf8(text)),
                    tokens=estimate_tokens(text),
                    version=self._columns.version(rows, text),
                    summary=one_line_summary(text),
                    index_text=(title + "\n" + text)[:INDEX_TEXT_CHARS],
                    order=order,
                    source=self.name,
                )
            )
        return sections

    def list_sections(self) -> Sequence[Section]:
        """Every row (or group) as a section stub, in id order; remembers them for ``poll``."""
        sections = self._build()
        self._known = {s.id: s for s in sections}
        return sections

    async def hydrate(self, section_id: str, *, scope: Scope) -> Hydrated:
        """Read the row(s) now, so the content and version are the database's current ones.

        Raises:
            UnknownSectionError: no row has that id (any more).
            SourceError: the database failed.
        """
        rows = await asyncio.to_thread(self._rows, section_id)
        if not rows:
            raise UnknownSectionError(section_id)
        text = self._columns.text(rows)
        return Hydrated(section_id=section_id, content=text, version=self._columns.version(rows, text))

    # ---------------------------------------------------------------------------------------------
    # change detection

    def poll(self) -> SectionChanges:
        """Read the rows again: the stubs added or changed (new version) and the ids removed since the last look."""
        after = self._build()
        before, self._known = self._known, {s.id: s for s in after}
        return diff_sections(before, after)

    async def changes(self) -> AsyncIterator[SectionChanges]:
        """Poll every ``poll_interval_s`` and yield each non-empty change set (runs until cancelled)."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            found = await asyncio.to_thread(self.poll)
            if found:
                yield found

    async def aclose(self) -> None:
        """Dispose of the connection pool if this source created it."""
        if self._owns_engine:
            await asyncio.to_thread(self._engine.dispose)


@dataclass(frozen=True, slots=True)
class _Columns:
    """Which column means what, and how rows become a section's title, text, tags and version."""

    id: str
    title_column: str | None
    text_columns: Sequence[str] | None
    tags_column: str | None
    version_column: str | None
    group_column: str | None

    @property
    def key(self) -> str:
        """The column whose value is the section id (the group column when grouping)."""
        return self.group_column or self.id

    def _text_cols(self, row: Mapping[str, Any]) -> list[str]:
        if self.text_columns is not None:
            return list(self.text_columns)
        skip = {self.id, self.version_column, self.group_column, self.tags_column, self.title_column}
        return [c for c in row if c not in skip]

    def text(self, rows: Sequence[Mapping[str, Any]]) -> str:
        blocks = []
        for row in rows:
            lines = [f"{c}: {row[c]}" for c in self._text_cols(row) if row.get(c) is not None]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def title(self, rows: Sequence[Mapping[str, Any]], sid: str) -> str:
        if self.title_column and rows[0].get(self.title_column) is not None:
            return str(rows[0][self.title_column])
        return sid

    def tags(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
        if not self.tags_column:
            return ()
        found = {t.strip() for r in rows for t in str(r.get(self.tags_column) or "").split(",")}
        return tuple(sorted(t for t in found if t))

    def version(self, rows: Sequence[Mapping[str, Any]], text: str) -> str:
        """The version column's values (hashed, so any type works), else the content's hash."""
        if self.version_column is None:
            return content_version(text)
        stamp = "\x1f".join(f"{r[self.id]}={r[self.version_column]}" for r in rows)
        return hashlib.sha256(utf8(stamp)).hexdigest()[:16]
