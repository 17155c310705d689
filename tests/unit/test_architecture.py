"""The layout keeps the architecture honest: who may import whom, who reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "agape_ops"
MODULES = sorted(PACKAGE.rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_only_settings_reads_the_environment(path: Path) -> None:
    if path.name == "settings.py":
        return
    text = path.read_text()
    assert "os.environ" not in text
    assert "getenv(" not in text


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_slack_libraries_are_imported_only_by_the_slack_surface(path: Path) -> None:
    if "surfaces/slack" in relative(path):
        return
    slack = {m for m in imports_of(path) if m.split(".")[0] in {"slack_bolt", "slack_sdk"}}
    assert not slack


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_nothing_reads_the_shared_folder(path: Path) -> None:
    assert "../shared" not in path.read_text()
