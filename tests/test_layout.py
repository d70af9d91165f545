"""The tests and the benchmarks share tests/support/ and nothing else of each other: no test
imports bench/, bench/ imports only tests.support of tests/, and tests/support/ no test module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .support.servers import REPO


def imports(path: Path, package: str) -> set[str]:
    """The modules ``path`` imports, relative imports resolved as from ``package``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.update([module] if node.module else [f"{module}.{alias.name}" for alias in node.names])
    return names


def sources(directory: str) -> list[Path]:
    return sorted(path for path in (REPO / directory).rglob("*.py") if "node_modules" not in path.parts)


@pytest.mark.parametrize("path", sources("tests"), ids=lambda path: str(path.relative_to(REPO)))
def test_tests_import_no_benchmark(path: Path) -> None:
    package = ".".join(path.parent.relative_to(REPO).parts)
    found = imports(path, package)
    assert not {name for name in found if name == "bench" or name.startswith("bench.")}
    if package == "tests.support":
        assert not {name for name in found if name.startswith("tests.") and not name.startswith(package)}


@pytest.mark.parametrize("path", sources("bench"), ids=lambda path: str(path.relative_to(REPO)))
def test_benchmarks_import_only_the_support_of_tests(path: Path) -> None:
    found = imports(path, "bench")
    assert {name for name in found if name.split(".")[0] == "tests"} <= {
        name for name in found if name.startswith("tests.support.")
    }
