"""The package's layers, as the tree shows them: imports only point down, and nothing goes round in a circle.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a lazy import
of a higher layer is still a dependency on it. The layers are drawn in ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "costrouter"

FOUNDATION = (
    "costrouter._version",
    "costrouter.errors",
    "costrouter.money",
    "costrouter.context",
    "costrouter.ops",
    "costrouter.forks",
)
"""Modules at the top of the package that every layer may use; they import nothing of costrouter's."""

FACE = ("costrouter", "costrouter.__main__", "costrouter.exporters", "costrouter.settings")
"""The public face: the package itself, ``python -m costrouter`` and two documented import paths."""

LAYERS: tuple[tuple[str, ...], ...] = (
    FOUNDATION,
    ("costrouter.config",),
    ("costrouter.pricing",),
    ("costrouter.otel",),
    ("costrouter.budget",),
    ("costrouter.routing", "costrouter.report", "costrouter.prices_push", "costrouter.testing"),
    ("costrouter.cli", "costrouter.proxy"),
    FACE,
)
"""Lowest first. A module may import its own package and any lower layer; never a sibling package
of its own layer, never a higher one."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _unit_of(module: str) -> tuple[int, str]:
    """``(layer index, the package or top module that owns module)``."""
    for index, units in enumerate(LAYERS):
        for unit in units:
            if unit in FACE or unit in FOUNDATION:
                if module == unit:
                    return index, unit
            elif module == unit or module.startswith(unit + "."):
                return index, unit
    raise AssertionError(f"{module} belongs to no layer: add it to a layer package, or to LAYERS")


def _imported(module: str) -> set[str]:
    """The costrouter modules ``module`` imports (a name imported from a package counts as the package)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in targets:
            target = name
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("costrouter") and target != module:
                found.add(target)
    return found


GRAPH = {module: _imported(module) for module in MODULES}


def test_every_module_belongs_to_a_layer() -> None:
    for module in MODULES:
        _unit_of(module)


def test_the_top_of_the_package_holds_only_the_foundation_and_the_face() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    allowed = {name.removeprefix("costrouter.") for name in (*FOUNDATION, *FACE)} - {"costrouter"}
    assert top <= allowed, f"new top-level modules {sorted(top - allowed)}: put them in a layer package"


def test_foundation_modules_import_nothing_of_costrouter() -> None:
    for module in FOUNDATION:
        assert GRAPH[module] == set(), module


def test_imports_point_only_down() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        level, unit = _unit_of(module)
        for target in targets:
            target_level, target_unit = _unit_of(target)
            if target_unit == unit:
                continue
            if target_level > level or (target_level == level and unit not in FOUNDATION):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_circles() -> None:
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in path, "import circle: " + " -> ".join([*path[path.index(module) :], module])
        path.append(module)
        for target in sorted(GRAPH[module]):
            # A package's __init__ that re-exports its own modules is not a circle with them.
            if not module.startswith(target + ".") and not target.startswith(module + "."):
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_every_layer_package_says_what_it_holds_and_what_it_may_import() -> None:
    for units in LAYERS:
        for unit in units:
            if unit in FACE or unit in FOUNDATION:
                continue
            doc = ast.get_docstring(ast.parse((PACKAGE.parent / unit.replace(".", "/") / "__init__.py").read_text()))
            assert doc, unit
            assert "Layer" in doc, f"{unit}'s docstring does not say which layer it is and what it may import"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("costrouter.exporters", "configure_telemetry"),
        ("costrouter.exporters", "read_span_records"),
        ("costrouter.settings", "Settings"),
        ("costrouter.prices_push", "push_prices"),
        ("costrouter.cli", "main"),
        ("costrouter.cli", "app"),
        ("costrouter.budget", "BudgetPolicy"),
        ("costrouter.budget", "RedisBudgetStore"),
        ("costrouter.budget", "load_policy"),
        ("costrouter.testing", "ProviderDouble"),
        ("costrouter.testing", "TelemetryCapture"),
        ("costrouter.testing", "OtlpReceiver"),
        ("costrouter.testing.redis_server", "RedisServer"),
        ("costrouter.testing.redis_cluster", "RedisClusterNodes"),
    ],
)
def test_documented_import_paths_still_import(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_documented_homes_are_the_same_objects() -> None:
    exporters = importlib.import_module("costrouter.exporters")
    settings = importlib.import_module("costrouter.settings")
    homes = importlib.import_module("costrouter.otel.exporters")
    assert exporters.configure_telemetry is homes.configure_telemetry
    assert exporters.read_span_records is homes.read_span_records
    assert settings.Settings is importlib.import_module("costrouter.config.settings").Settings


def _documented_imports() -> list[tuple[str, str]]:
    root = PACKAGE.parent
    pattern = re.compile(r"^\s*from (costrouter(?:\.\w+)*) import ([\w, ]+)$", re.MULTILINE)
    found = set()
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for module, names in pattern.findall(page.read_text(encoding="utf-8")):
            found.update((module, name.strip().split(" as ")[0]) for name in names.split(",") if name.strip())
    return sorted(found)


@pytest.mark.parametrize(("module", "name"), _documented_imports())
def test_every_import_line_of_the_docs_imports(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None
