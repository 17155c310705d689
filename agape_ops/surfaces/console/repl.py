"""The terminal console: the same walkthrough as Slack, typed instead of clicked.

``alert <text or JSON>`` opens a run as an alert in #alerts would, ``/ops ...`` (or the bare
subcommand) does what the slash command does, a number runs that step, ``r2`` applies a row
action to row 2 of the last result. Writes show their plan and need a typed ``yes``.

The session is synchronous: it reads a line, then runs the engine call on the event loop it is
given (``call``), so Ctrl-C at a prompt only cancels that prompt, and a piped stdin works line
by line with no terminal at all.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_json, from_text
from agape_ops.engine.commands import Intake, OpenForAlert, StartRun
from agape_ops.engine.engine import Engine
from agape_ops.engine.records import Run, StepState
from agape_ops.errors import AgapeError, UnknownRun
from agape_ops.surfaces.console import render
from agape_ops.surfaces.console.steps import Call, StepActions, new_key
from agape_ops.surfaces.console.terminal import Cancelled, Terminal
from agape_ops.surfaces.ops_actions import DIRECT, commands_for
from agape_ops.surfaces.ops_command import SUBCOMMANDS, OpsCommand, OpsUsage, parse, usage_lines

log = logging.getLogger(__name__)

NO_CURRENT_RUN = (
    "no current run: open one with `alert ...` or `/ops start <runbook>`, or pick one with "
    "`/ops use RUN`"
)
_ROW_CHOICE = re.compile(r"r(\d{1,4})([a-j]?)")


@dataclass
class Session:
    """One person's console session over the engine."""

    engine: Engine
    terminal: Terminal
    actor: str
    call: Call
    dry_run: bool = False
    current: str | None = None
    #: Runbooks that failed to load, said in the banner.
    problems: Sequence[str] = ()
    #: Removes configured secrets from text nothing else redacted (an unexpected error's).
    redact: Callable[[str], str] = str
    steps: StepActions = field(init=False)

    def __post_init__(self) -> None:
        self.steps = StepActions(
            self.engine, self.terminal, self.call, self.actor, dry_run=self.dry_run
        )
        self.engine.subscribe(self.terminal.on_event)

    # -- the loop ------------------------------------------------------------------------

    def loop(self) -> bool:
        """Read and act on lines until quit or end of input; return whether any command failed."""
        self._banner()
        self.call(self.engine.housekeep())
        while True:
            try:
                line = self.terminal.read_line(self.prompt()).strip()
            except EOFError:
                self.terminal.show()
                break
            except KeyboardInterrupt:
                self.terminal.show(render.note_line("^C (type quit to leave)"))
                continue
            if line in ("quit", "exit"):
                break
            if line:
                self.handle(line)
        return self.terminal.failed

    def prompt(self) -> str:
        """Return the prompt: the current run's id, so a person always sees which run acts."""
        return f"{self.current}> " if self.current else "agape-ops> "

    def handle(self, line: str) -> None:
        """Act on one typed line; report every failure as one line and go on."""
        try:
            # A step another process left running when it died is said to be interrupted
            # before anything reads the run (the console has no background task to do it).
            self.call(self.engine.reap_interrupted())
            self._dispatch(line)
        except Cancelled:
            self.terminal.show(render.note_line("cancelled, nothing changed"))
        except KeyboardInterrupt:
            self.terminal.show(render.note_line("interrupted"))
        except AgapeError as exc:
            self.terminal.fail(exc.message)
        except Exception as exc:  # the surface's outermost handler: report, keep the session
            log.exception("console command failed: %s", line)
            # Not one of ours, so nothing redacted its text: a driver error may quote a DSN.
            said = self.redact(f"{type(exc).__name__}: {exc}")
            self.terminal.fail(f"unexpected error ({said}); see the log")

    def _dispatch(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        lowered = word.lower()
        if lowered == "alert":
            self.alert(rest.strip())
        elif word.isascii() and word.isdigit():
            self.steps.activate(self._run(None).id, word, {})
        elif choice := _ROW_CHOICE.fullmatch(lowered):
            self.steps.row_action(int(choice.group(1)), choice.group(2))
        elif lowered == "/ops" or lowered in SUBCOMMANDS:
            parsed = parse(line, run_prefix=self.engine.run_prefix)
            if isinstance(parsed, OpsUsage):
                self.terminal.fail(parsed.message)
            else:
                self.ops(parsed)
        else:
            self.terminal.fail(f"`{word}` is not a command; type help for what the console does")

    def _run(self, run_id: str | None) -> Run:
        target = run_id or self.current
        if target is None:
            raise UnknownRun(NO_CURRENT_RUN)
        return self.call(self.engine.get_run(target))

    # -- alerts --------------------------------------------------------------------------

    def alert(self, payload: str) -> None:
        """Hand an alert to the engine's intake, as an alert posted in #alerts would be."""
        if not payload:
            self.terminal.fail("usage: alert <text of the alert> | alert {JSON payload}")
            return
        alert = self._read_alert(payload)
        if alert is None:
            return
        command = OpenForAlert(
            alert=alert,
            fingerprint=fingerprint(alert),
            actor=self.actor,
            key=new_key(),
            source={"console": self.actor},
            rehearsal=self.dry_run,  # rehearsals never merge into real incidents, nor real ones
        )
        outcome = self.steps.execute(command)
        if outcome.intake is Intake.UNMATCHED or outcome.run is None:
            return
        self.current = outcome.run.id
        if outcome.intake is Intake.ATTACHED:
            self.terminal.show(render.ok_line(outcome.message))
            self._status(outcome.run.id)
        elif outcome.intake is Intake.OPENED:
            self._status(outcome.run.id, results=True)

    def _read_alert(self, payload: str) -> Alert | None:
        if not payload.startswith("{"):
            return from_text(payload)
        try:
            document = json.loads(payload)
        except json.JSONDecodeError as exc:
            self.terminal.fail(f"that JSON does not parse ({exc.msg} at column {exc.colno})")
            return None
        alert = from_json(document)
        if alert is None:
            self.terminal.fail(
                "that JSON is not an alert agape-ops reads (an Alertmanager webhook, a Slack "
                "message event, or an object with title/text/labels)"
            )
        return alert

    def _open(self, runbook_id: str, *, inputs: dict[str, str] | None = None) -> None:
        command = StartRun(
            runbook_id=runbook_id,
            actor=self.actor,
            key=new_key(),
            inputs=dict(inputs or {}),
            rehearsal=self.dry_run,
            surface={"console": self.actor},
        )
        outcome = self.steps.execute(command)
        if outcome.ok and outcome.run is not None:
            self.current = outcome.run.id
            self._status(outcome.run.id, results=True)

    # -- /ops ----------------------------------------------------------------------------

    def ops(self, command: OpsCommand) -> None:
        """Carry out one `/ops` subcommand."""
        name, engine, show = command.name, self.engine, self.terminal.show
        if name == "help":
            self._help()
        elif name == "runbooks":
            show(render.runbooks_table(engine.runbooks.values()))
        elif name == "start":
            self._open(command.target or "", inputs=command.inputs)
        elif name == "runs":
            show(render.runs_table(self.call(engine.runs(limit=20))))
        elif name == "contacts":
            show(render.contacts_table(engine.team.contacts))
        elif name == "dashboards":
            show(render.dashboards_table(engine.team.dashboards))
        elif name in ("verify", "queues"):
            values = [command.target] if command.target else []
            look = self.call(engine.quick(name, values))
            line = render.error_line if look.failed else render.note_line
            show(line(look.finding))
            if look.result is not None and (look.result.columns or look.result.values):
                show(render.result_view(look.result))
        elif name == "health":
            probes = self.call(engine.probes())
            show(render.probes_table(list(probes.values())))
        elif name == "use":
            self.current = self._run(command.target).id
            self._status(self.current)
        elif name == "status" and command.run_id is None and self.current is None:
            runs = self.call(engine.runs(active=True))
            show(render.runs_table(runs) if runs else render.note_line("No open runs."))
        else:
            self._run_scoped(command)

    def _run_scoped(self, command: OpsCommand) -> None:
        run = self._run(command.run_id)
        if command.name == "status":
            self._status(run.id)
        elif command.name == "run":
            self.steps.activate(run.id, command.target or "", command.inputs)
        elif command.name == "timeline":
            self._timeline(run, command.text)
        elif command.name in DIRECT:
            view = self.steps.view(run.id)
            for engine_command in commands_for(command, view, self.actor, new_key):
                self.steps.change(engine_command)

    def _status(self, run_id: str, *, results: bool = False) -> None:
        view = self.steps.view(run_id)
        self.terminal.show(render.run_header(view.run))
        if (top := render.headline(view)) is not None:
            self.terminal.show(top)
        if (watch := render.watch_line(view)) is not None:
            self.terminal.show(watch)
        self.terminal.show(render.walkthrough(view))
        try:
            jobs = render.jobs_lines(self.call(self.engine.jobs(run_id)))
        except AgapeError as exc:  # the walkthrough is still worth showing
            jobs = render.jobs_unreadable(exc.message)
        if jobs is not None:
            self.terminal.show(jobs)
        if results:  # what the automatic checks found, and the rows a person can act on
            for step in view.steps:
                result = step.result
                if result is None or not result.rows:
                    continue
                if step.state is StepState.FAILED or step.row_actions:
                    self.steps.show_result(view.run.id, step, result)
        self.terminal.show(
            render.note_line(
                "Type a step number to run it, `/ops status` to see this again, help for more."
            )
        )

    def _timeline(self, run: Run, fmt: str) -> None:
        text = self.call(self.engine.export(run.id, fmt))
        self.terminal.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _help(self) -> None:
        permissions = self.engine.permissions
        role = (
            "an approver"
            if self.actor in permissions.approvers
            else "a responder"
            if self.actor in permissions.responders
            else "read-only"
        )
        self.terminal.show(
            render.lines(
                [
                    "alert <text> | alert {JSON}   open a run as an alert in #alerts would",
                    "<number>                      run that step of the current run",
                    "r<row>                        apply the last result's row action to a row",
                    "quit | exit                   leave (Ctrl-D too; Ctrl-C cancels a prompt)",
                    "",
                    "/ops subcommands (the /ops prefix is optional):",
                    *(f"  {line}" for line in usage_lines()),
                    "",
                    f"You act as {self.actor} ({role}). Writes need you in OPS_RESPONDERS (or "
                    "the team file's responders),",
                    "dangerous steps in OPS_APPROVERS. Start with --as USER to act as someone "
                    "else, --dry-run to rehearse.",
                ]
            )
        )

    def _banner(self) -> None:
        mode = "REHEARSAL (--dry-run): writes are shown, not executed. " if self.dry_run else ""
        self.terminal.show(
            render.ok_line(
                f"agape-ops console: {len(self.engine.runbooks)} runbooks loaded, acting as "
                f"{self.actor}. {mode}Type help for commands."
            )
        )
        for problem in self.problems:
            self.terminal.show(render.error_line(f"runbook not loaded: {problem}"))
