"""Lint messages a person can act on: plain words for YAML mistakes, the SQL line at fault,
and the key that was probably meant. Each edits a copy of a shipped runbook as a person would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agape_ops.errors import Problem
from agape_ops.runbooks.lint import lint_paths

RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "inventory-oversell.yaml"


def edited(tmp_path: Path, old: str, new: str) -> tuple[list[Problem], list[str]]:
    """Lint a copy of the oversell runbook with ``old`` replaced by ``new`` (once)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / RUNBOOK.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return lint_paths([path]), path.read_text(encoding="utf-8").splitlines()


def line_of(lines: list[str], fragment: str) -> int:
    return next(n for n, line in enumerate(lines, start=1) if fragment in line)


def test_a_bad_indent_is_said_in_words_at_the_line_to_fix(tmp_path: Path) -> None:
    problems, lines = edited(
        tmp_path, "    title: SKUs with stock below zero", "   title: SKUs with stock below zero"
    )

    [problem] = problems
    assert problem.line == line_of(lines, "   title: SKUs with stock below zero")
    assert "indented differently from the lines above it" in problem.message
    assert "<block end>" not in problem.message


def test_a_colon_inside_a_plain_value_says_to_quote_it(tmp_path: Path) -> None:
    problems, lines = edited(
        tmp_path, "title: SKUs with stock below zero", "title: SKUs: stock below zero"
    )

    [problem] = problems
    assert problem.line == line_of(lines, "title: SKUs: stock below zero")
    assert "put the value in quotes" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "column_of", "said"),
    [
        ("WHERE pv.stock < 0", "WHERE pv.stokc < 0", "pv.stokc", "has no column stokc"),
        ("WHERE pv.stock < 0", "WHER pv.stock < 0", "WHER", "does not parse"),
        ("FROM product_variants pv", "FROM product_variant pv", "product_variant", "table"),
    ],
)
def test_an_sql_mistake_is_located_at_its_own_line_and_column_inside_the_block(
    tmp_path: Path, old: str, new: str, column_of: str, said: str
) -> None:
    problems, lines = edited(tmp_path, old, new)

    [problem] = problems
    line = line_of(lines, new)
    assert (problem.line, problem.column) == (line, lines[line - 1].index(column_of) + 1)
    assert said in problem.message


def test_a_misspelt_key_suggests_the_nearest_known_one(tmp_path: Path) -> None:
    problems, lines = edited(
        tmp_path, "    title: SKUs with stock below zero", "    titel: SKUs with stock below zero"
    )

    [misspelt] = [p for p in problems if p.message.startswith("unknown key")]
    assert misspelt.message == "unknown key 'titel': did you mean 'title'?"
    line = line_of(lines, "titel:")
    assert (misspelt.line, misspelt.column) == (line, lines[line - 1].index("titel") + 1)
