"""The headline, "what is wrong now": ranked, with a dependency that is down named the likely
cause and an unreachable status page a warning, for each of the seven runbooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agape_ops.engine.headline import Rank
from agape_ops.engine.records import Run, RunState, StepRecord, StepState
from agape_ops.engine.views import RunView, run_view
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.loader import load_team_file
from agape_ops.runbooks.model import Runbook

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog([ROOT / "runbooks"])
TEAM = load_team_file(ROOT / "team.yaml")
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
CORE = {"postgres", "redis", "admin_api"}


def view_of(runbook: Runbook, records: dict[str, StepRecord]) -> RunView:
    run = Run("INC-7", 7, runbook.id, runbook.title, "sev2", RunState.OPEN, "U1", T0)
    return run_view(run, runbook, records, [], TEAM, now=T0 + timedelta(minutes=3))


def failed(step_id: str, finding: str) -> StepRecord:
    return StepRecord("INC-7", step_id, StepState.FAILED, finding=finding)


def errored(step_id: str, error: str) -> StepRecord:
    return StepRecord("INC-7", step_id, StepState.ERROR, finding=f"{step_id}: {error}", error=error)


@pytest.mark.parametrize("runbook_id", sorted(CATALOG.runbooks))
def test_the_headline_ranks_found_then_causes_then_findings_then_warnings(
    runbook_id: str,
) -> None:
    runbook = CATALOG.runbooks[runbook_id]
    calls = [s for s in runbook.steps() if s.manual is None and s.alert is None]
    reads = [s for s in calls if not s.changes_things]
    first = next(s for s in runbook.detection if s.manual is None)
    records = {s.id: errored(s.id, "unreachable (connection refused)") for s in reads}
    records[first.id] = failed(first.id, "the incident itself")
    writes = [s for s in calls if s.changes_things]
    for step in writes:  # a failed write is the step's and the timeline's, not the headline's
        records[step.id] = errored(step.id, "exit code 1")

    items = view_of(runbook, records).headline.items

    assert items[0].text == "the incident itself"
    assert items[0].rank is Rank.FOUND
    assert [p.rank for p in items] == sorted(p.rank for p in items)
    assert not {p.step_id for p in items} & {s.id for s in writes}
    ranks = {p.step_id: p.rank for p in items}
    for step in reads:
        if step.id == first.id:
            continue
        expected = {"problem": Rank.FOUND, "cause": Rank.CAUSE, "warning": Rank.WARNING}.get(
            step.unreachable or "", Rank.CAUSE if step.kind in CORE else Rank.WARNING
        )
        assert ranks[step.id] is expected, step.id


def test_high_error_rate_names_redis_down_as_the_likely_cause_and_status_pages_as_warnings() -> (
    None
):
    runbook = CATALOG.runbooks["high-error-rate"]
    records = {
        "cloudinary_status": errored("cloudinary_status", "cannot reach status.cloudinary.com"),
        "redis_ping": errored("redis_ping", "Redis: unreachable (connection refused)"),
        "resend_status": errored("resend_status", "cannot reach resend-status.com"),
        "memory_leak": failed("memory_leak", "Memory climbing on 1 of 2 series (a leak?)"),
        "error_rate": failed("error_rate", "5xx error rate over the last 5 minutes: 7.50%"),
    }

    headline = view_of(runbook, records).headline

    assert [(p.rank, p.step_id) for p in headline.items] == [
        (Rank.FOUND, "error_rate"),
        (Rank.CAUSE, "redis_ping"),
        (Rank.FINDING, "memory_leak"),
        (Rank.WARNING, "cloudinary_status"),
        (Rank.WARNING, "resend_status"),
    ]
    assert [p.likely_cause for p in headline.items] == [False, True, False, False, False]
    assert headline.problems[1] == "redis_ping: Redis: unreachable (connection refused)"


def test_database_down_in_database_failover_is_the_problem_found_not_a_step_error() -> None:
    runbook = CATALOG.runbooks["database-failover"]
    records = {
        "db_reachable": errored("db_reachable", "PostgreSQL: unreachable (connection refused)"),
        "backend_health": failed("backend_health", "Backend /healthz: degraded; db: down"),
    }

    view = view_of(runbook, records)

    step = view.step("db_reachable")
    assert (step.state, step.state_words) == (StepState.FAILED, "problem")
    assert [(p.rank, p.step_id) for p in view.headline.items] == [
        (Rank.FOUND, "db_reachable"),
        (Rank.FOUND, "backend_health"),
    ]
    assert not any(p.likely_cause or p.warning for p in view.headline.items)


def test_unreachable_is_linted_to_reads_that_call_a_system(tmp_path: Path) -> None:
    text = (ROOT / "runbooks" / "queue-backlog.yaml").read_text()
    edited = text.replace(
        "    title: Clear dead jobs\n", "    title: Clear dead jobs\n    unreachable: cause\n"
    )
    assert edited != text
    path = tmp_path / "queue-backlog.yaml"
    path.write_text(edited)

    messages = [p.message for p in lint_paths([path])]

    assert messages == ["`unreachable` is for a read that calls a system"]
