"""Shared pieces of the reliability suite: tenant-aware sources and a secret kept outside every root."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import prehydrate as ph

SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"
"""Text of a file outside every source root: it must never appear in any answer."""

TENANTS = ("acme", "globex", "initech", "umbrella")


def tenant_content(tenant: str, section_id: str) -> str:
    """What the tenant-aware source returns: the tenant is part of the content, so leaks are visible."""
    return f"tenant={tenant} section={section_id}\n" + f"{tenant}:{section_id} " * 8


class ScopeChecked:
    """A MockSource handler that answers per tenant and asserts every scope it is given.

    Sessions are named ``<tenant>/<n>`` so the handler can check that a hydration (speculative or on
    demand) runs with the scope of the session that caused it, never another tenant's.
    """

    def __init__(self, *, fixed_version: bool = True, delay_s: float = 0.0, strict_session: bool = True) -> None:
        self.fixed_version = fixed_version
        self.delay_s = delay_s
        self.strict_session = strict_session
        self.seen: list[tuple[str, str | None, str]] = []
        self.violations: list[str] = []

    async def __call__(self, section_id: str, scope: ph.Scope) -> ph.Hydrated | str:
        self.seen.append((scope.tenant, scope.session, section_id))
        if scope.tenant not in TENANTS:
            self.violations.append(f"unknown tenant {scope.tenant!r}")
        if self.strict_session and (scope.session is None or not scope.session.startswith(scope.tenant + "/")):
            self.violations.append(f"session {scope.session!r} is not of tenant {scope.tenant!r}")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        content = tenant_content(scope.tenant, section_id)
        if self.fixed_version:
            return ph.Hydrated(section_id=section_id, content=content, version="v1")
        return content


def tenant_sections(n: int = 12) -> list[ph.Section]:
    return [ph.Section(id=f"doc/{i}", title=f"Document {i}", version="v1", order=i) for i in range(n)]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.md"
    path.write_text(f"# Secret\n\n{SECRET}\n", encoding="utf-8")
    return path


@pytest.fixture
def docs_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "docs"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "refunds.md").write_text(
        "# Refunds\n\nWe refund within 14 days.\n\n## Partial refunds\n\nProrated by day.\n", encoding="utf-8"
    )
    (root / "notes.txt").write_text("plain notes about invoices\n", encoding="utf-8")
    yield root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the ``heavy`` variants (full load run) out unless asked for with ``-m heavy``."""
    if "heavy" in (config.getoption("markexpr") or ""):
        return
    heavy = [item for item in items if item.get_closest_marker("heavy")]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        items[:] = [item for item in items if not item.get_closest_marker("heavy")]
