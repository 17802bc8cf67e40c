"""SqlSource against SQLite and a real PostgreSQL server started on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import prehydrate as ph
from tests._postgres import running_postgres

SCOPE = ph.Scope()

ROWS = [
    {"slug": "refunds", "title": "Refunds", "body": "We refund within 14 days.", "tags": "billing,policy", "rev": 1},
    {"slug": "outage", "title": "Outages", "body": "Check the status page first.", "tags": "tech", "rev": 1},
]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A database holding table ``kb`` with ROWS, on SQLite or on the real PostgreSQL server."""
    url = f"sqlite:///{tmp_path / 'kb.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS kb"))
        columns = "slug VARCHAR(64) PRIMARY KEY, title TEXT, body TEXT, tags TEXT, rev INTEGER"
        conn.execute(sa.text(f"CREATE TABLE kb ({columns})"))
        conn.execute(sa.text("INSERT INTO kb VALUES (:slug, :title, :body, :tags, :rev)"), ROWS)
    yield engine
    engine.dispose()


def execute(db: sa.Engine, sql: str, **params: object) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(sql), params)


def ids(changes: ph.SectionChanges) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    return tuple(s.id for s in changes.added), tuple(s.id for s in changes.changed), changes.removed


def kb_source(db: sa.Engine, **kw: object) -> ph.SqlSource:
    return ph.SqlSource(db, table="kb", id_column="slug", title_column="title", tags_column="tags", **kw)  # type: ignore[arg-type]


async def test_rows_are_sections_with_titles_tags_and_text(db: sa.Engine) -> None:
    src = kb_source(db, version_column="rev")
    sections = {s.id: s for s in src.list_sections()}
    assert list(sections) == ["outage", "refunds"]
    assert sections["refunds"].title == "Refunds"
    assert sections["refunds"].tags == ("billing", "policy")
    hydrated = await src.hydrate("refunds", scope=SCOPE)
    assert hydrated.content == "body: We refund within 14 days."
    assert hydrated.version == sections["refunds"].version


async def test_an_updated_row_gets_a_new_version_and_hydrates_its_new_content(db: sa.Engine) -> None:
    for version_column in ("rev", None):
        src = kb_source(db, version_column=version_column)
        before = {s.id: s.version for s in src.list_sections()}
        execute(db, "UPDATE kb SET body = :b, rev = rev + 1 WHERE slug = 'refunds'", b=f"New policy {version_column}.")
        hydrated = await src.hydrate("refunds", scope=SCOPE)
        assert hydrated.content.startswith(f"body: New policy {version_column}.")
        assert hydrated.version != before["refunds"]
        assert ids(src.poll()) == ((), ("refunds",), ())


async def test_poll_reports_added_changed_and_removed_rows(db: sa.Engine) -> None:
    src = kb_source(db, version_column="rev")
    src.list_sections()
    assert not src.poll()
    execute(db, "INSERT INTO kb VALUES ('new', 'New', 'fresh', '', 1)")
    execute(db, "DELETE FROM kb WHERE slug = 'outage'")
    execute(db, "UPDATE kb SET rev = 2 WHERE slug = 'refunds'")
    assert ids(src.poll()) == (("new",), ("refunds",), ("outage",))
    with pytest.raises(ph.UnknownSectionError):
        await src.hydrate("outage", scope=SCOPE)


async def test_a_query_and_groups_make_one_section_per_group(db: sa.Engine) -> None:
    execute(db, "INSERT INTO kb VALUES ('refunds-2', 'Refunds', 'Partial refunds are prorated.', 'billing', 1)")
    src = ph.SqlSource(db, query="SELECT slug, title AS topic, body FROM kb", id_column="slug", group_column="topic")
    ids = [s.id for s in src.list_sections()]
    assert ids == ["Outages", "Refunds"]
    hydrated = await src.hydrate("Refunds", scope=SCOPE)
    assert hydrated.content == "body: We refund within 14 days.\n\nbody: Partial refunds are prorated."


async def test_an_ids_value_is_a_bound_parameter_not_sql(db: sa.Engine) -> None:
    src = kb_source(db)
    with pytest.raises(ph.UnknownSectionError):
        await src.hydrate("x' OR '1'='1", scope=SCOPE)


async def test_the_engine_serves_the_new_row_after_a_change_is_observed(db: sa.Engine) -> None:
    src = kb_source(db, version_column="rev")
    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor()) as engine:
        async with engine.session("s1") as session, session.turn(query="refunds") as turn:
            first = await turn.request_context("refunds")
        execute(db, "UPDATE kb SET body = 'Changed.', rev = 2 WHERE slug = 'refunds'")
        assert ids(src.poll()) == ((), ("refunds",), ())
        engine.refresh()
        async with engine.session("s2") as session, session.turn(query="refunds") as turn:
            second = await turn.request_context("refunds")
    assert first.content == "body: We refund within 14 days."
    assert second.content == "body: Changed."


async def test_the_engine_follows_a_live_source_without_a_refresh(db: sa.Engine) -> None:
    src = kb_source(db, version_column="rev", poll_interval_s=0.05)
    seen: list[ph.SectionsChanged] = []
    changed = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, ph.SectionsChanged):
            seen.append(event)
            changed.set()

    async with ph.Engine(sources=[src], predictor=ph.SequentialPredictor()) as engine:
        engine.subscribe(on_event)
        async with engine.session("s1") as session, session.turn(query="refunds") as turn:
            assert (await turn.request_context("refunds")).content == "body: We refund within 14 days."
            assert (await turn.request_context("refunds")).outcome == "hit"
            execute(db, "UPDATE kb SET body = 'Changed.', rev = 2 WHERE slug = 'refunds'")
            execute(db, "INSERT INTO kb VALUES ('new', 'New', 'fresh', '', 1)")
            await asyncio.wait_for(changed.wait(), timeout=10)
            again = await turn.request_context("refunds")
            added = await turn.request_context("new")
    assert (seen[0].added, seen[0].changed, seen[0].removed) == (("new",), ("refunds",), ())
    assert (again.content, again.outcome) == ("body: Changed.", "miss")
    assert added.content == "body: fresh"


async def test_changes_yields_what_poll_finds(db: sa.Engine) -> None:
    src = kb_source(db, version_column="rev", poll_interval_s=0.05)
    src.list_sections()
    stream = src.changes()
    execute(db, "UPDATE kb SET rev = 5 WHERE slug = 'outage'")
    found = await anext(stream)
    await stream.aclose()
    assert ids(found) == ((), ("outage",), ())


def test_a_missing_table_is_one_sentence(tmp_path: Path) -> None:
    src = ph.SqlSource(f"sqlite:///{tmp_path / 'empty.db'}", table="nope", id_column="id")
    with pytest.raises(ph.SourceError) as info:
        src.list_sections()
    message = str(info.value)
    assert "'nope'" in message and "no such table" in message
    assert "\n" not in message and "sqlalche.me" not in message


def test_table_or_query_is_required() -> None:
    with pytest.raises(ph.ConfigError, match="exactly one of table= and query="):
        ph.SqlSource("sqlite://", id_column="id")
    with pytest.raises(ph.ConfigError, match="poll_interval_s"):
        ph.SqlSource("sqlite://", table="t", id_column="id", poll_interval_s=0)
