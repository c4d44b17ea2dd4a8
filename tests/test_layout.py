"""Which code may import which: the product (components, ops, policy) never depends on developer scripts."""

from __future__ import annotations

import ast

from project import ROOT


def imported_packages(package: str) -> set[str]:
    """The top-level names every module of ``package`` imports (absolute imports only)."""
    names: set[str] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_ops_imports_nothing_from_tools() -> None:
    assert "tools" not in imported_packages("ops")


def test_components_import_neither_ops_nor_tools() -> None:
    assert imported_packages("components") & {"ops", "tools"} == set()


def test_policy_imports_neither_ops_nor_tools() -> None:
    assert imported_packages("policy") & {"ops", "tools"} == set()
