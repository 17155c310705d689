"""The console's rendering: numbered walkthroughs, result tables, plans and timeline lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console, RenderableType

from agape_ops.engine.records import Event, Run, RunState, StepRecord, StepState
from agape_ops.engine.results import StepResult, table
from agape_ops.engine.steps import Plan
from agape_ops.engine.views import RunView, run_view
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.team import Team
from agape_ops.surfaces.console import render

T0 = datetime(2024, 8, 1, 10, 0, 0, tzinfo=UTC)


def text_of(*renderables: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False, highlight=False).print(*renderables)
    return out.getvalue()


def runbook() -> Runbook:
    return Runbook.model_validate(
        {
            "id": "inventory-oversell",
            "title": "Inventory Oversell",
            "severity": "sev2",
            "summary": "Stock below zero.",
            "owner": "devops",
            "triggers": [{"alertname": "NegativeStock"}, {"text": "oversold"}],
            "detection": [
                {
                    "id": "negative_stock",
                    "title": "SKUs below zero",
                    "postgres": {"sql": "SELECT 1"},
                }
            ],
            "actions": [
                {
                    "id": "tell",
                    "title": "Contact customers",
                    "manual": {"items": ["Email", "Refund"]},
                },
                {
                    "id": "correct_stock",
                    "title": "Correct stock levels",
                    "risk": "dangerous",
                    "button": "Correct stock",
                    "postgres": {"sql": "UPDATE product_variants SET stock = 0 WHERE stock < 0"},
                },
            ],
        }
    )


def view_of(records: dict[str, StepRecord], of: Runbook | None = None) -> RunView:
    run = Run(
        "INC-1", 1, "inventory-oversell", "Inventory Oversell", "sev2", RunState.OPEN, "U1", T0
    )
    return run_view(run, of or runbook(), records, [], Team(), now=T0)


def test_walkthrough_shows_sections_numbers_states_and_findings() -> None:
    records = {
        "negative_stock": StepRecord(
            "INC-1", "negative_stock", state=StepState.FAILED, finding="2 SKUs below zero: A (-2)"
        ),
        "tell": StepRecord("INC-1", "tell", items_done=[0]),
    }
    shown = text_of(render.walkthrough(view_of(records)))
    assert "Detection" in shown
    assert "Immediate actions" in shown
    assert "│ 1 │ SKUs below zero" in shown
    lines = {line.split("│")[1].strip(): line for line in shown.splitlines() if "│" in line}
    assert "problem" in lines["1"]
    assert "2 SKUs below zero: A (-2)" in lines["1"]
    assert "1/2 done" in lines["2"]
    assert "postgres dangerous" in lines["3"]
    assert lines["3"].split("│")[5].strip() == ""  # an action not yet run has no finding


def test_terminal_escapes_in_data_are_never_sent_to_the_terminal() -> None:
    records = {
        "negative_stock": StepRecord(
            "INC-1", "negative_stock", state=StepState.ERROR, finding="boom \x1b[2J\x1b]0;pwned\x07"
        )
    }
    event = Event(
        "INC-1", T0, "bot", "step.error", "title \x1b]0;owned\x07 \x9b31m", outcome="error"
    )
    shown = text_of(render.walkthrough(view_of(records)), render.event_line(event))
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\x9b" not in shown
    assert "boom [2J]0;pwned" in shown


def test_a_truncated_result_says_how_many_rows_it_shows_of_how_many() -> None:
    rows = [{"sku": f"SKU-{n}", "stock": -n} for n in range(30)]
    result = table("30 SKUs", ["sku", "stock"], rows, total=143)
    shown = text_of(render.result_view(result, title="SKUs below zero"))
    assert "SKU-19" in shown
    assert "SKU-20" not in shown
    assert "showing 20 of 143 rows" in shown


def test_rows_that_can_be_acted_on_are_numbered_r1_r2() -> None:
    result = table("2 webhooks", ["id"], [{"id": "w-1"}, {"id": "w-2"}])
    shown = text_of(render.result_view(result, numbered=True))
    assert "r1 │ w-1" in shown
    assert "r2 │ w-2" in shown


def test_values_render_as_figures_and_nothing_is_read_as_markup() -> None:
    result = StepResult(summary="s", values={"title": "[FIRING:1] [bold]x[/bold]", "ok": True})
    shown = text_of(render.result_view(result))
    assert "[FIRING:1] [bold]x[/bold]" in shown
    assert "yes" in shown


def test_floats_in_tables_read_as_figures_never_in_exponent_notation() -> None:
    result = table(
        "1 row",
        ["amount", "failure_rate", "tiny", "latency"],
        [{"amount": 25000.0, "failure_rate": 0.14285714, "tiny": 0.00001234, "latency": 3.5}],
    )
    shown = text_of(render.result_view(result))
    assert "25000 " in shown
    assert "0.1429" in shown
    assert "0.00001234" in shown
    assert "3.50" in shown
    assert "e+" not in shown
    assert "e-" not in shown


def test_a_plan_shows_what_it_would_do_what_it_touches_and_the_question() -> None:
    step = runbook().step("correct_stock")
    assert step is not None
    preview = table("would change 2 rows", ["sku", "stock"], [{"sku": "A", "stock": -2}])
    plan = Plan(step, "UPDATE product_variants\nSET stock = 0", "Set stock to 0?", preview)
    shown = text_of(render.plan_view(plan))
    assert "“Correct stock levels” will:" in shown
    assert "  UPDATE product_variants\n  SET stock = 0" in shown
    assert "It would touch: would change 2 rows" in shown
    assert "Set stock to 0?" in shown


def test_a_plan_that_cannot_run_says_why() -> None:
    step = runbook().step("correct_stock")
    assert step is not None
    shown = text_of(render.plan_view(Plan(step, "", "Correct it?", error="no postgres adapter")))
    assert "Cannot run it: no postgres adapter" in shown
    assert "Correct it?" not in shown  # nothing to confirm when it cannot run


def test_event_lines_show_time_actor_summary_and_duration() -> None:
    event = Event(
        "INC-1", T0, "alice", "step.finished", "Stock set to 0 on 2", outcome="done", duration_ms=42
    )
    assert text_of(render.event_line(event)).strip() == (
        "10:00:00 ✓ alice: Stock set to 0 on 2  (42 ms)"
    )


def test_checklists_number_items_and_show_commands_to_copy() -> None:
    step = Step.model_validate(
        {
            "id": "logs",
            "title": "Check logs",
            "manual": {
                "items": [
                    "Look at errors",
                    {"text": "Grep webhooks", "command": "docker-compose logs app"},
                ]
            },
        }
    )
    book = runbook().model_copy(update={"diagnosis": [step]})
    view = view_of({"logs": StepRecord("INC-1", "logs", items_done=[1])}, book)
    shown = text_of(render.checklist(view.step("logs")))
    assert "1. [ ] Look at errors" in shown
    assert "2. [x] Grep webhooks" in shown
    assert "$ docker-compose logs app" in shown


def test_runs_table_marks_rehearsals() -> None:
    run = Run(
        "INC-4",
        4,
        "inventory-oversell",
        "Inventory Oversell",
        "sev2",
        RunState.CLOSED,
        "alice",
        T0,
        rehearsal=True,
    )
    shown = text_of(render.runs_table([run]))
    assert "INC-4" in shown
    assert "closed" in shown
    assert "rehearsal" in shown
    assert "2024-08-01 10:00" in shown


def test_runbooks_table_names_alert_rules_and_counts_text_patterns() -> None:
    shown = text_of(render.runbooks_table([runbook()]))
    assert "NegativeStock, 1 text pattern" in shown


def test_the_headline_names_the_likely_cause_and_marks_warnings_below_it() -> None:
    shipped = load_catalog([Path(__file__).resolve().parents[2] / "runbooks"])
    records = {
        "resend_status": StepRecord(
            "INC-1", "resend_status", StepState.ERROR, finding="Resend: cannot reach it"
        ),
        "redis_ping": StepRecord(
            "INC-1", "redis_ping", StepState.ERROR, finding="Redis: unreachable"
        ),
        "error_rate": StepRecord("INC-1", "error_rate", StepState.FAILED, finding="5xx: 7.50%"),
    }
    view = view_of(records, shipped.runbooks["high-error-rate"])
    headline = render.headline(view)
    assert headline is not None

    assert text_of(headline).splitlines() == [
        "What is wrong now",
        "  ! 5xx: 7.50%",
        "  → Likely cause: Redis: unreachable",
        "  ⚠ Warning: Resend: cannot reach it",
    ]
    assert render.headline(view_of({}, shipped.runbooks["high-error-rate"])) is None
