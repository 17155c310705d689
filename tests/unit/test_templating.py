"""Templates and conditions: rendered in the sandbox, strict about names, with our filters."""

from __future__ import annotations

import pytest

from agape_ops.errors import TemplateError
from agape_ops.runbooks.templating import (
    evaluate,
    is_template,
    references,
    render,
    syntax_error,
)


def test_render_fills_names_from_the_context() -> None:
    context = {"inputs": {"reference": "T123"}, "failed": 3}
    assert render("verify {{ inputs.reference }}: {{ failed }} failed", context) == (
        "verify T123: 3 failed"
    )


def test_render_returns_text_without_markup_untouched() -> None:
    assert render("no {braces} here", {}) == "no {braces} here"


def test_render_refuses_an_undefined_name_instead_of_printing_nothing() -> None:
    with pytest.raises(TemplateError, match="'inputs' is undefined"):
        render("{{ inputs.reference }}", {})


def test_render_names_a_missing_attribute() -> None:
    with pytest.raises(TemplateError, match="has no attribute 'reference'"):
        render("{{ inputs.reference }}", {"inputs": {}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ x.__init__.__globals__ }}",
        "{{ range.__call__ }}",
    ],
)
def test_the_sandbox_refuses_reaching_into_python(source: str) -> None:
    with pytest.raises(TemplateError, match="is not allowed: access to attribute"):
        render(source, {"x": object()})


def test_a_condition_cannot_escape_the_sandbox_either() -> None:
    with pytest.raises(TemplateError, match="is not allowed"):
        evaluate("''.__class__.__mro__", {})


def test_render_turns_arithmetic_errors_into_template_errors() -> None:
    with pytest.raises(TemplateError, match="division or modulo by zero"):
        render("{{ 1 // 0 }}", {})


def test_evaluate_returns_the_value_of_a_condition() -> None:
    context = {"failure_rate": 0.07, "total": 40, "rows": [{"id": 1}]}
    assert evaluate("failure_rate > 0.05 and total >= 20", context) is True
    assert evaluate("rows[0].id", context) == 1
    assert evaluate("failure_rate > 0.5", context) is False


def test_evaluate_refuses_an_undefined_name() -> None:
    with pytest.raises(TemplateError, match="condition `missing > 1`: 'missing' is undefined"):
        evaluate("missing > 1", {})


def test_evaluate_reports_a_condition_that_does_not_parse() -> None:
    with pytest.raises(TemplateError, match="does not parse"):
        evaluate("1 +", {})


def test_evaluate_reports_a_comparison_of_mismatched_types() -> None:
    with pytest.raises(TemplateError, match="not supported between"):
        evaluate("'a' > 1", {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 0.0712 | percent }}", "7.1%"),
        ("{{ 0.0712 | percent(2) }}", "7.12%"),
        ("{{ 'x' | percent }}", "n/a"),
        ("{{ 1250000 | naira }}", "NGN 12,500.00"),
        ("{{ none | naira }}", "n/a"),
    ],
)
def test_percent_and_naira_format_figures(source: str, expected: str) -> None:
    assert render(source, {}) == expected


def test_join_column_joins_one_column_and_counts_the_rest() -> None:
    rows = [{"id": f"w{i}"} for i in range(12)]
    assert render("{{ rows | join_column('id', 2) }}", {"rows": rows}) == "w0, w1 (+10 more)"
    assert render("{{ rows | join_column('id') }}", {"rows": rows[:3]}) == "w0, w1, w2"
    assert render("{{ rows | join_column('id') }}", {"rows": None}) == ""


def test_references_lists_attribute_chains_and_keeps_only_the_longest() -> None:
    found = references(
        "{{ inputs }} {{ inputs.user_id }} {{ steps.rate.first['id'] }}", expression=False
    )
    assert found == {("inputs", "user_id"), ("steps", "rate", "first", "id")}


def test_references_leaves_out_loop_and_set_variables() -> None:
    source = "{% set n = 1 %}{% for r in rows %}{{ r.id }}{{ n }}{% endfor %}"
    assert references(source, expression=False) == {("rows",)}


def test_references_stops_a_chain_at_a_computed_index() -> None:
    assert references("z[i].q > 0", expression=True) == {("z",), ("i",)}


def test_references_of_a_condition() -> None:
    assert references("failure_rate > 0.05 and alert.labels.env == 'prod'", expression=True) == {
        ("failure_rate",),
        ("alert", "labels", "env"),
    }


def test_syntax_error_says_what_is_wrong_or_nothing() -> None:
    assert syntax_error("a > 1", expression=True) is None
    assert syntax_error("{{ a }}", expression=False) is None
    assert syntax_error("a >> 1", expression=True) == "unexpected '>'"
    assert "endif" in (syntax_error("{% if a %}", expression=False) or "")


def test_is_template_spots_jinja_markup() -> None:
    assert is_template("{{ a }}")
    assert is_template("{% if a %}{% endif %}")
    assert is_template("{# note #}")
    assert not is_template("plain {text}")
