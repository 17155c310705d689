"""The console's rendering of what the scheduler does: the run's watch line, a monitor's
figure and trend on its step's row, the scheduled jobs, and the scheduler's timeline events."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from rich.console import Console, RenderableType
from watch_runbook import watch_runbook

from agape_ops.engine.engine import Engine, Listener
from agape_ops.engine.records import Event, Run, RunState, ScheduledJob, StepRecord, StepState
from agape_ops.engine.views import RunView, run_view
from agape_ops.runbooks.loader import load_team_file
from agape_ops.surfaces.console import render
from agape_ops.surfaces.console.repl import Session
from agape_ops.surfaces.console.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
TEAM = load_team_file(ROOT / "team.yaml")
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def text_of(*renderables: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=240, force_terminal=False, highlight=False).print(*renderables)
    return out.getvalue()


def view_of(watch: dict[str, object], records: dict[str, StepRecord]) -> RunView:
    runbook = watch_runbook()
    run = Run("INC-7", 7, runbook.id, runbook.title, "sev1", RunState.OPEN, "U1", T0)
    run.watch = watch
    return run_view(run, runbook, records, [], TEAM, now=T0 + timedelta(minutes=20))


def test_a_monitor_shows_its_latest_figure_and_trend_on_its_row() -> None:
    samples = [[T0.isoformat(), figure, "failed"] for figure in (9, 6, None, 3)]
    monitor = {"round": 1, "state": "watching", "ends_at": (T0 + timedelta(hours=1)).isoformat()}
    record = StepRecord(
        "INC-7",
        "drain",
        StepState.FAILED,
        finding="3 webhooks still waiting \x1b[2J",
        monitor={**monitor, "samples": samples},
    )
    shown = text_of(render.walkthrough(view_of({}, {"drain": record})))

    assert "monitor: 3 webhooks █▅ ▁ · watching until 04:00 UTC" in shown
    assert "\x1b" not in shown


def test_the_watch_line_shows_pages_and_re_checks_and_is_absent_before_any() -> None:
    watch = {
        "escalated": 2,
        "escalated_at": (T0 + timedelta(minutes=15)).isoformat(),
        "clear": False,
        "flaps": 2,
        "returned_at": (T0 + timedelta(minutes=18)).isoformat(),
    }
    line = render.watch_line(view_of(watch, {}))

    assert line is not None
    assert text_of(line).strip() == (
        "watch: paged level 2 of 3 at 03:15 UTC · re-checks: problem back since 03:18 UTC, "
        "flapping (came back 2 times)"
    )
    assert render.watch_line(view_of({}, {})) is None


def test_the_jobs_say_what_runs_next_and_when() -> None:
    jobs = [
        ScheduledJob(
            "escalate:INC-7:2",
            "INC-7",
            "escalate",
            "page level 2 (S0000DEVOPS) unless acknowledged",
            T0 + timedelta(minutes=40),
        )
    ]
    shown = text_of(render.jobs_lines(jobs) or "")

    assert "Scheduled" in shown
    assert "next: page level 2 (S0000DEVOPS) unless acknowledged at 03:40 UTC" in shown
    assert render.jobs_lines([]) is None


def test_the_schedulers_events_read_as_lines_with_their_own_marks() -> None:
    page = Event(
        "INC-7",
        T0,
        "bot",
        "run.escalated",
        "paged level 2 of 3 (U0000DEVOPS): nobody has acknowledged INC-7 after 15 min",
        detail={"level": 2, "of": 3, "notify": ["U0000DEVOPS"]},
    )
    sample = Event(
        "INC-7",
        T0,
        "bot",
        "step.finished",
        "2 webhooks still waiting",
        step_id="drain",
        outcome="failed",
        duration_ms=4,
        detail={"purpose": "monitor", "figure": 2.0},
    )
    recheck = Event(
        "INC-7",
        T0,
        "bot",
        "step.finished",
        "0 waiting",
        outcome="passed",
        detail={"purpose": "recheck"},
    )

    assert text_of(render.event_line(page)).strip() == (
        "03:00:00 ⚑ bot: paged level 2 of 3 (U0000DEVOPS): nobody has acknowledged INC-7 "
        "after 15 min"
    )
    assert text_of(render.event_line(sample)).strip() == (
        "03:00:00 ! bot: 2 webhooks still waiting  (4 ms)  [monitor, figure 2]"
    )
    assert text_of(render.event_line(recheck)).strip() == "03:00:00 ✓ bot: 0 waiting  [recheck]"
    stopped = Event("INC-7", T0, "bot", "monitor.stopped", "“Backlog draining” recovered")
    assert text_of(render.event_line(stopped)).startswith("03:00:00 ◉ bot: “Backlog draining”")


def test_status_in_a_session_shows_the_watch_the_monitor_and_the_jobs() -> None:
    samples = [[T0.isoformat(), figure, "failed"] for figure in (5, 4)]
    ends = (T0 + timedelta(hours=1)).isoformat()
    record = StepRecord(
        "INC-7",
        "drain",
        StepState.FAILED,
        monitor={"round": 1, "state": "watching", "ends_at": ends, "samples": samples},
    )
    view = view_of({"escalated": 1, "escalated_at": T0.isoformat()}, {"drain": record})
    job = ScheduledJob(
        "escalate:INC-7:2",
        "INC-7",
        "escalate",
        "page level 2 (U0000DEVOPS) unless acknowledged",
        T0 + timedelta(minutes=15),
    )
    asked: list[str | None] = []

    async def nothing(*_: object) -> None:
        return None

    async def get_run(_: str) -> Run:
        return view.run

    async def view_now(_: str) -> RunView:
        return view

    async def jobs(run_id: str | None = None) -> list[ScheduledJob]:
        asked.append(run_id)
        return [job]

    def subscribe(_: Listener) -> None:
        return None

    engine = SimpleNamespace(
        subscribe=subscribe,
        reap_interrupted=nothing,
        run_prefix="INC",
        get_run=get_run,
        view=view_now,
        jobs=jobs,
    )
    printed = io.StringIO()
    terminal = Terminal(Console(file=printed, width=240), read_line=input)
    session = Session(cast(Engine, engine), terminal, actor="alice", call=asyncio.run)

    session.handle("status INC-7")

    shown = printed.getvalue()
    assert not terminal.failed, shown
    assert "watch: paged level 1 of 3 at 03:00 UTC" in shown
    assert "monitor: 4 webhooks █▁ · watching until 04:00 UTC" in shown
    assert "next: page level 2 (U0000DEVOPS) unless acknowledged at 03:15 UTC" in shown
    assert asked == ["INC-7"]
