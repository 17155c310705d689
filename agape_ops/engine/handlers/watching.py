"""What the scheduler asks of a run: escalation, re-checks, monitors' rounds and reminders.

The scheduler only decides when; these handlers decide what, inside the run's unit of work, with
the same permissions, locks and idempotency keys as a click. Each job's key is fixed by what it
stands for (``escalate:INC-7:2``, ``recheck:INC-7:12``), so a job fired twice (a restart, two
schedulers for a moment) acts once. What they did is kept on the run (``Run.watch``) and the
step (``StepRecord.monitor``), so any process knows it, and every page and change of state is
on the timeline.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agape_ops.engine.commands import Escalate, Outcome, Recheck, Remind, RunStep, Status
from agape_ops.engine.records import (
    ACTIVE_STATES,
    Event,
    Run,
    RunState,
    StepRecord,
    StepState,
)
from agape_ops.engine.steps import BOT, Verdict
from agape_ops.engine.unit import Unit
from agape_ops.engine.watch import clear_state, outstanding
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.timing import interval_words

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine

#: Samples a monitor keeps for its trend (the newest last).
KEPT_SAMPLES = 30
#: What a reminder reminds of.
STATUS, POST_INCIDENT = "status", "post_incident"


def _nothing(run: Run | None, message: str) -> Outcome:
    return Outcome(Status.DONE, message, run=run)


def _mentions(ids: list[str]) -> str:
    return ", ".join(ids)


# -- escalation ------------------------------------------------------------------------------


async def escalate(engine: Engine, unit: Unit, command: Escalate) -> Outcome:
    """Page every level up to ``command.level`` not yet paged, first level first: a bot that
    was down while two levels fell due pages both, in order, once each."""
    run = await unit.run(command.run_id)
    if run.state is not RunState.OPEN or run.acknowledged_at is not None:
        return _nothing(run, f"no page: {run.id} is {run.state.value}")
    if run.rehearsal:
        return _nothing(run, "no page: a rehearsal pages nobody")
    levels = engine.team.escalation_for(run.severity)
    paged = int(run.watch.get("escalated", 0))
    due = range(paged + 1, min(command.level, len(levels)) + 1)
    if not due:
        return _nothing(run, f"no page: level {command.level} was paged already")
    waited = interval_words((unit.clock() - run.created_at).total_seconds())
    for level in due:
        spec = levels[level - 1]
        unit.record(
            run,
            command.actor,
            "run.escalated",
            f"paged level {level} of {len(levels)} ({_mentions(spec.notify)}): nobody has "
            f"acknowledged {run.id} after {waited}",
            detail={"level": level, "of": len(levels), "notify": list(spec.notify)},
        )
    run.watch = {**run.watch, "escalated": due[-1], "escalated_at": unit.clock().isoformat()}
    await unit.tx.update_run(run.id, {"watch": run.watch})
    return Outcome(Status.DONE, f"paged level {due[-1]} for {run.id}", run=run)


# -- re-checks -------------------------------------------------------------------------------


async def recheck(engine: Engine, command: Recheck) -> Outcome:
    """Run the re-checked conditions again as the bot (each once per tick), then compare."""
    run = await engine.find_run(command.run_id)
    if run is None or run.state not in ACTIVE_STATES:
        return _nothing(run, "no re-check: the run is not open")
    runbook = engine.runbook_of(run)
    for step in runbook.recheck_steps():
        key = f"{command.key}:{step.id}"
        await engine.execute(RunStep(run.id, step.id, BOT, key, purpose="recheck"))
    async with engine.unit() as unit:
        await unit.claim(command.key, run.id)
        run = await unit.run(run.id)
        outcome = _compare(unit, run, runbook, await unit.tx.steps(run.id), command.actor)
        await unit.tx.update_run(run.id, {"watch": run.watch})
        await unit.finish(command.key, outcome)
    outcome.events = unit.events
    return outcome


def _compare(
    unit: Unit, run: Run, runbook: Runbook, steps: dict[str, StepRecord], actor: str
) -> Outcome:
    """Note a change between clear and problem on the run; tell the first clear and the first
    return, and only count (on the card) the flapping after that."""
    now = unit.clock()
    watch: dict[str, Any] = {**run.watch, "rechecked_at": now.isoformat()}
    clear, before = clear_state(runbook, steps), run.watch.get("clear")
    flaps = int(watch.get("flaps", 0))
    if run.state not in ACTIVE_STATES or clear is None or clear == before:
        run.watch = watch
        return _nothing(run, "re-checked: no change")
    watch["clear"] = clear
    checks = [steps[s.id] for s in runbook.recheck_steps() if s.id in steps]
    if clear:
        watch["cleared_at"] = now.isoformat()
        findings = "; ".join(r.finding or r.step_id for r in checks)
        summary = f"every re-checked condition is clear now: {findings}"
        detail = {"told": flaps == 0, "flaps": flaps}
        unit.record(run, actor, "run.cleared", summary, detail=detail)
    elif before is True:
        flaps += 1
        watch["flaps"], watch["returned_at"] = flaps, now.isoformat()
        problems = "; ".join(r.finding or r.step_id for r in checks if r.state is StepState.FAILED)
        since = _since(run.watch.get("cleared_at"))
        summary = f"the problem is back{since}: {problems}"
        detail = {"told": flaps == 1, "flaps": flaps}
        unit.record(run, actor, "run.returned", summary, detail=detail)
    run.watch = watch
    return Outcome(Status.DONE, "re-checked: " + ("clear" if clear else "problem"), run=run)


def _since(iso: Any) -> str:
    if not isinstance(iso, str):
        return ""
    return f" after clearing at {datetime.fromisoformat(iso):%H:%M} UTC"


# -- monitors --------------------------------------------------------------------------------


def monitor_round(
    step: Step, record: StepRecord, verdict: Verdict, purpose: str, now: datetime
) -> tuple[str, str] | None:
    """Update a monitor step's watch with this run's verdict (in ``record.monitor``).

    A run by a person (or the checks at opening) starts a round; a scheduled sample adds to it
    and ends it when its condition holds or its time is up. Return the timeline event this
    calls for (kind, summary), or None.
    """
    monitor = step.monitor
    if monitor is None or purpose == "recheck":
        return None  # a re-check reads the step; it neither starts nor feeds a watch
    reading = verdict.reading
    sample = [now.isoformat(), reading.figure if reading else None, verdict.state.value]
    met = bool(reading and reading.met)
    if purpose != "monitor":
        ends = now + timedelta(seconds=monitor.for_s)
        record.monitor = {
            "round": record.attempts,
            "started_at": now.isoformat(),
            "ends_at": ends.isoformat(),
            "state": "met" if met else "watching",
            "samples": [sample],
        }
        if met:
            return None  # recovered already: nothing to watch
        until = f" until {monitor.until}" if monitor.until else ""
        return (
            "monitor.started",
            f"watching “{step.title}” every {interval_words(monitor.every_s)} for "
            f"{interval_words(monitor.for_s)}{until}",
        )
    current = dict(record.monitor or {})
    current["samples"] = [*current.get("samples", []), sample][-KEPT_SAMPLES:]
    record.monitor = current
    latest = verdict.finding or verdict.error or step.title
    if met:
        current["state"], current["stopped_at"] = "met", now.isoformat()
        return "monitor.stopped", f"“{step.title}” recovered ({monitor.until}): {latest}"
    ends = datetime.fromisoformat(str(current.get("ends_at")))
    if now >= ends:
        current["state"], current["stopped_at"] = "expired", now.isoformat()
        watched = interval_words(monitor.for_s)
        return (
            "monitor.stopped",
            f"stopped watching “{step.title}” after {watched} without it recovering: {latest}",
        )
    return None


# -- reminders -------------------------------------------------------------------------------


async def remind(engine: Engine, unit: Unit, command: Remind) -> Outcome:
    """Remind the thread of a status update that is due, or of unfinished post-incident work."""
    run = await unit.run(command.run_id)
    if command.what == STATUS:
        return await _status(engine, unit, run, command.actor)
    return await _post_incident(engine, unit, run, command.actor)


async def _status(engine: Engine, unit: Unit, run: Run, actor: str) -> Outcome:
    every = engine.team.reminders.status_every_s(run.severity)
    if run.state not in ACTIVE_STATES or every is None:
        return _nothing(run, "no reminder: the run is not open")
    events = await unit.tx.events(run.id)
    notes = [e.at for e in events if e.kind == "note.added"]
    last = max([run.created_at, *notes])
    quiet = unit.clock() - last
    if quiet < timedelta(seconds=every) * 0.9:  # an update came since: nothing is due yet
        return _nothing(run, "no reminder: an update was posted recently")
    if _reminded_within(events, STATUS, unit.clock() - timedelta(seconds=every) * 0.9):
        return _nothing(run, "no reminder: one was given recently")
    said = "since it opened" if not notes else "since the last one"
    quiet_words = interval_words(quiet.total_seconds())
    unit.record(
        run,
        actor,
        "run.reminded",
        f"a status update is due: no update on {run.id} for {quiet_words} "
        f"{said}; post one with `/ops note {run.id} <what changed>`",
        detail={"what": STATUS},
    )
    return Outcome(Status.DONE, "reminded of a status update", run=run)


def _reminded_within(events: list[Event], what: str, since: datetime) -> bool:
    """Say whether this reminder was given after ``since``: a retried job (its own key, after
    a failure that may have come after the commit) does not remind twice."""
    return any(
        e.kind == "run.reminded" and e.detail.get("what") == what and e.at > since for e in events
    )


async def _post_incident(engine: Engine, unit: Unit, run: Run, actor: str) -> Outcome:
    if run.state is not RunState.RESOLVED:
        return _nothing(run, "no reminder: the run is not resolved (or closed)")
    runbook = engine.runbook_of(run)
    left = outstanding(runbook, await unit.tx.steps(run.id))
    if not left:
        return _nothing(run, "no reminder: the post-incident work is done")
    every = engine.team.reminders.post_incident_s or 0.0
    since = unit.clock() - timedelta(seconds=every) * 0.9
    if _reminded_within(await unit.tx.events(run.id), POST_INCIDENT, since):
        return _nothing(run, "no reminder: one was given recently")
    unit.record(
        run,
        actor,
        "run.reminded",
        f"post-incident work of {run.id} is not done: {', '.join(left)}",
        detail={"what": POST_INCIDENT, "left": left},
    )
    return Outcome(Status.DONE, "reminded of the post-incident work", run=run)
