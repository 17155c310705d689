"""Templates and conditions stay within a budget of time and memory, at lint, start-up and run.

The red team's ``when: ('a' * 10 ** 10) | length > x`` cost 9.8 GB and 18 s in lint and at
start-up, and ``9 ** (9 ** 9)`` never finished: Jinja folded them while compiling. Now nothing is
folded at compile time, lint evaluates constant parts under the budget and reports what would
exceed it, and rendering refuses before building anything past it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agape_ops.errors import TemplateError
from agape_ops.runbooks.budget import MAX_ITEMS, TIME_BUDGET_S
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.templating import evaluate, render

HEADER = "id: greedy\ntitle: Greedy\nseverity: sev3\nsummary: Greedy.\nowner: platform\n"


def greedy(tmp_path: Path, key: str, text: str) -> Path:
    path = tmp_path / "greedy.yaml"
    path.write_text(
        HEADER + "detection:\n  - id: failures\n    title: Failures\n"
        "    postgres: {sql: 'SELECT count(*) AS x FROM webhook_events'}\n"
        f"    {key}: {text!r}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("when", "('a' * 10 ** 10) | length > x"),
        ("when", "9 ** (9 ** 9) > x"),
        ("finding", "{{ 9 ** (9 ** 9) }} rows"),
        ("finding", "{{ 'a' | center(10 ** 10) }}"),
        ("finding", "{{ '%0999999999d' % x }}"),
        ("finding", "{{ '{:>999999999}'.format(x) }}"),
        ("finding", "{{ 'x'.ljust(10 ** 9) }}"),
        ("finding", "{{ range(10 ** 8) | list | length }}"),
    ],
)
def test_lint_and_start_up_refuse_an_expression_past_the_budget_quickly(
    tmp_path: Path, key: str, text: str
) -> None:
    path = greedy(tmp_path, key, text)
    started = time.monotonic()
    problems = lint_paths([path])
    catalog = load_catalog([tmp_path])
    elapsed = time.monotonic() - started
    assert [p.message for p in problems if "would take too much" in p.message], problems
    assert "greedy" not in catalog.runbooks
    assert elapsed < 2 * TIME_BUDGET_S


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * n }}",
        "{{ n ** n }}",
        "{{ ['x' * 1000] * n }}",
        "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{{ '{:>{w}}'.format(1, w=n) }}",
    ],
)
def test_rendering_refuses_to_build_past_the_budget(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match="is not allowed"):
        render(source, {"n": 10**9})
    assert time.monotonic() - started < TIME_BUDGET_S + 0.5


def test_conditions_are_bounded_too_and_ordinary_ones_still_work() -> None:
    with pytest.raises(TemplateError, match="digits is past what a template may build"):
        evaluate("n ** n > 1", {"n": 10**6})
    assert evaluate("rate > 0.05 and (rows | length) * 2 == 4", {"rate": 0.1, "rows": [1, 2]})
    text = render(
        "{{ rate | percent }} of {{ total }}: {{ ids | join(', ') }} {{ '%5.1f' % rate }}",
        {"rate": 0.071, "total": 3, "ids": ["a", "b"]},
    )
    assert text == "7.1% of 3: a, b   0.1"
    assert len(render("{{ 'x' * n }}", {"n": MAX_ITEMS})) == MAX_ITEMS
