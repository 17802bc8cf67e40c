"""Packaging guards: the public surface is curated and the core imports no framework."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import prehydrate

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("mcp", "langgraph", "langchain_core", "langchain", "opentelemetry", "redis")


def test_all_is_sorted_and_complete() -> None:
    assert prehydrate.__all__ == sorted(prehydrate.__all__)
    public = {
        n for n in dir(prehydrate) if not n.startswith("_") and not isinstance(getattr(prehydrate, n), ModuleType)
    } - {"annotations"}
    assert public - {"__version__"} <= set(prehydrate.__all__)
    for name in prehydrate.__all__:
        assert hasattr(prehydrate, name), name


def test_core_source_has_no_module_level_framework_import() -> None:
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: lazy imports inside functions are allowed
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in FRAMEWORKS:
                    offenders.append(f"{path.relative_to(ROOT)}: {n}")
    assert offenders == []


def test_importing_the_core_loads_no_framework() -> None:
    code = (
        "import sys, prehydrate, prehydrate.cli; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}); print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    mapping = config["tool"]["setuptools"]["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"


def test_no_bare_core_package_is_importable_after_install() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('core'), u.find_spec('tracing'))"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert out.stdout.strip() == "None None"
