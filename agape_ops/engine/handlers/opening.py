"""Opening runs: by hand (``StartRun``) and from an alert (``OpenForAlert``, alert intake).

Intake attaches an alert to the active run of its fingerprint (counting the re-fire), records a
resolved alert on it, or opens a run of the runbook it matches. The store allows at most one
active run per fingerprint, so concurrent deliveries of one alert, on one bot or several, open
one run between them: the loser's insert conflicts, and its retry finds the winner's run.
After the run commits, its automatic checks run as the bot's own commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agape_ops.alerts.model import Alert, AlertStatus
from agape_ops.engine.commands import Intake, OpenForAlert, Outcome, StartRun, Status
from agape_ops.engine.context import redacted_inputs, split_secret, validate_input
from agape_ops.engine.handlers.stepping import run_auto_steps
from agape_ops.engine.records import REHEARSAL_PREFIX, Run, RunState
from agape_ops.engine.unit import Unit
from agape_ops.errors import Conflict, InputError, InvalidTransition, UnknownRunbook
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.triggers import match_alert

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine

#: Attempts at intake when concurrent deliveries race to open the same alert's run.
INTAKE_ATTEMPTS = 3


async def start_run(engine: Engine, command: StartRun) -> Outcome:
    """Open a run of a runbook by hand (or for an alert a surface matched itself)."""
    runbook = engine.runbooks.get(command.runbook_id)
    if runbook is None:
        known = ", ".join(sorted(engine.runbooks)) or "none loaded"
        raise UnknownRunbook(f"no runbook {command.runbook_id!r} (runbooks: {known})")
    inputs: dict[str, str] = {}
    for name, value in command.inputs.items():
        if name not in runbook.inputs:
            raise InputError(f"{runbook.id} has no input {name!r}", input_name=name)
        inputs[name] = validate_input(name, runbook.inputs[name], value)
    public, _secret = split_secret(runbook, inputs, engine.redactor)
    try:
        async with engine.unit() as unit:
            await unit.claim(command.key, None)
            cause = f"alert “{command.alert.title}”" if command.alert else command.actor
            run = await _open(
                engine,
                unit,
                runbook,
                command.actor,
                cause,
                alert=command.alert,
                fingerprint=command.fingerprint,
                inputs=inputs,
                public=public,
                rehearsal=command.rehearsal,
                surface=command.surface,
            )
            outcome = Outcome(Status.DONE, f"{run.id} opened: {runbook.title}", run=run)
            await unit.finish(command.key, outcome)
    except Conflict as exc:
        raise InvalidTransition(f"a run is already open for this alert ({exc.message})") from exc
    outcome.events = unit.events
    if command.auto:
        await run_auto_steps(engine, run, runbook, inputs)
    return outcome


async def open_for_alert(engine: Engine, command: OpenForAlert) -> Outcome:
    """Attach an alert to its fingerprint's active run, note its resolution, or open a run."""
    fingerprint = f"rehearsal:{command.fingerprint}" if command.rehearsal else command.fingerprint
    for attempt in range(1, INTAKE_ATTEMPTS + 1):
        try:
            async with engine.unit() as unit:
                await unit.claim(command.key, None)
                outcome, runbook = await _intake(engine, unit, command, fingerprint)
                await unit.finish(command.key, outcome)
            break
        except Conflict:  # another delivery opened the run first: attach to it instead
            if attempt == INTAKE_ATTEMPTS:
                raise
    outcome.events = unit.events
    opened = outcome.intake is Intake.OPENED and outcome.run is not None
    if opened and command.auto and runbook is not None and outcome.run is not None:
        await run_auto_steps(engine, outcome.run, runbook, {})
    return outcome


async def _intake(
    engine: Engine, unit: Unit, command: OpenForAlert, fingerprint: str
) -> tuple[Outcome, Runbook | None]:
    alert = command.alert
    title = alert.title or alert.text[:80]
    active = await unit.tx.find_active_run(fingerprint)
    if alert.status is AlertStatus.RESOLVED:
        if active is None:
            message = f"“{title}” is resolved; no run is open."
            return Outcome(Status.DONE, message, intake=Intake.NO_RUN), None
        now = unit.clock()
        await unit.tx.update_run(active.id, {"alert_resolved_at": now})
        active.alert_resolved_at = now
        unit.record(
            active, command.actor, "alert.resolved", f"monitoring reports resolved: {title}"
        )
        message = (
            f"Monitoring reports “{title}” resolved; {active.id} is still {active.state.value}"
        )
        return Outcome(Status.DONE, message, run=active, intake=Intake.RESOLVED), None
    if active is not None:
        count = active.alert_count + 1
        await unit.tx.update_run(active.id, {"alert_count": count, "alert_resolved_at": None})
        active.alert_count, active.alert_resolved_at = count, None
        unit.record(
            active,
            command.actor,
            "alert.refired",
            f"the alert fired again ({count} times in all): {title}",
        )
        message = (
            f"This alert belongs to {active.id} ({active.state.value}), already open: "
            "attached to it, no new run."
        )
        return Outcome(Status.DONE, message, run=active, intake=Intake.ATTACHED), None
    match = match_alert(alert, engine.runbooks.values())
    if match is None:
        message = (
            f"No runbook matches “{title}”. `/ops runbooks` lists them; `/ops start <runbook>` "
            "opens one by hand."
        )
        return Outcome(Status.FAILED, message, intake=Intake.UNMATCHED, error="NoRunbook"), None
    run = await _open(
        engine,
        unit,
        match.runbook,
        command.actor,
        f"alert “{alert.title}” (matched {match.reason})",
        alert=alert,
        fingerprint=fingerprint,
        rehearsal=command.rehearsal,
        surface={"source": dict(command.source)} if command.source else {},
    )
    outcome = Outcome(
        Status.DONE, f"{run.id} opened: {match.runbook.title}", run=run, intake=Intake.OPENED
    )
    return outcome, match.runbook


async def _open(
    engine: Engine,
    unit: Unit,
    runbook: Runbook,
    actor: str,
    cause: str,
    *,
    alert: Alert | None,
    fingerprint: str | None,
    rehearsal: bool,
    surface: dict[str, Any],
    inputs: dict[str, str] | None = None,
    public: dict[str, str] | None = None,
) -> Run:
    """Insert the run and stage its opening event."""
    # Kept and shown again: an alert quoting a DSN or a key must not be repeated with it.
    dumped = engine.redactor.value(alert.model_dump(mode="json")) if alert else None
    run = await unit.tx.create_run(
        Run(
            id=REHEARSAL_PREFIX if rehearsal else engine.run_prefix,
            number=0,
            runbook_id=runbook.id,
            title=runbook.title,
            severity=runbook.severity.value,
            state=RunState.OPEN,
            created_by=actor,
            created_at=unit.clock(),
            alert=dumped,
            fingerprint=fingerprint,
            inputs=dict(public or {}),
            rehearsal=rehearsal,
            surface=dict(surface),
            alert_count=1 if alert or fingerprint else 0,
        ),
        engine.run_prefix,
    )
    rehearsed = " (rehearsal: writes are shown, not executed)" if run.rehearsal else ""
    cause = engine.redactor.text(cause)
    unit.record(
        run,
        actor,
        "run.opened",
        f"{run.id} opened: {runbook.title} ({runbook.severity.value}) by {cause}{rehearsed}",
        detail={
            "runbook": runbook.id,
            "rehearsal": run.rehearsal,
            "inputs": redacted_inputs(runbook, inputs or {}),
        },
    )
    return run
