"""What templates see, and how a step's call is rendered from it.

A step's templates read ``inputs``, ``alert``, ``steps`` (earlier results), ``settings`` (public
URLs only) and ``run``. Its ``when:`` and ``finding:`` additionally read its own result's
fields. Values reach SQL only as bound parameters: the SQL text itself is never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.records import Run, StepRecord
from agape_ops.engine.results import StepResult
from agape_ops.errors import InputError, TemplateError
from agape_ops.redaction import MASK, Redactor
from agape_ops.runbooks.model import (
    AdminApiCall,
    AlertCheck,
    HttpCall,
    Input,
    PaystackCall,
    PostgresCall,
    Runbook,
    ShellCall,
    Step,
)
from agape_ops.runbooks.strict import Strict
from agape_ops.runbooks.templating import evaluate, render
from agape_ops.runbooks.timing import Monitor
from agape_ops.values import check_text


def base_context(
    run: Run,
    steps: Mapping[str, StepRecord],
    inputs: Mapping[str, str],
    settings: Mapping[str, str | None],
) -> dict[str, Any]:
    """Return the names every template of a run may read."""
    alert = Alert.model_validate(run.alert) if run.alert else None
    return {
        "inputs": dict(inputs),
        "alert": alert.context() if alert else Alert().context(),
        "steps": {
            step_id: StepResult.model_validate(record.result).context()
            for step_id, record in steps.items()
            if record.result is not None
        },
        "settings": dict(settings),
        "run": {"id": run.id, "runbook": run.runbook_id, "title": run.title},
    }


def _render_value(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {k: _render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context) for v in value]
    return value


def render_call(step: Step, context: Mapping[str, Any]) -> tuple[Strict, dict[str, Any]]:
    """Return the step's call with its templates rendered, and the SQL's bound parameters."""
    call = step.call
    if isinstance(call, PostgresCall):
        return call, {k: _render_value(v, context) for k, v in call.params.items()}
    if isinstance(call, PaystackCall) and call.reference:
        return call.model_copy(update={"reference": render(call.reference, context)}), {}
    if isinstance(call, AdminApiCall):
        update: dict[str, Any] = {}
        if call.webhook_id:
            update["webhook_id"] = render(call.webhook_id, context)
        if call.path:
            update["path"] = render(call.path, context)
        if call.json_body is not None:
            update["json_body"] = _render_value(call.json_body, context)
        return call.model_copy(update=update), {}
    if isinstance(call, HttpCall):
        return call.model_copy(update={"url": render(call.url, context)}), {}
    if isinstance(call, ShellCall):
        return call.model_copy(
            update={
                "command": [render(arg, context) for arg in call.command],
                "env": {k: render(v, context) for k, v in call.env.items()},
            }
        ), {}
    return call, {}


def references_for(call: PaystackCall, steps: Mapping[str, StepRecord]) -> list[str]:
    """Resolve ``references_from: step.column`` into the references an earlier step listed."""
    assert call.references_from  # noqa: S101 - the model validator requires it for verify_many
    step_id, column = call.references_from.split(".", 1)
    record = steps.get(step_id)
    if record is not None and record.result is None and record.error:
        raise TemplateError(
            f"step `{step_id}` failed ({record.error}); fix that and run it again first"
        )
    if record is None or record.result is None:
        raise TemplateError(f"step `{step_id}` has not run yet; run it first")
    rows = StepResult.model_validate(record.result).rows
    return [str(row[column]) for row in rows if row.get(column)]


def alert_check(check: AlertCheck, alert: Alert | None) -> StepResult:
    """Read the values an alert check names from the alert itself."""
    found = {name: alert.lookup(name) if alert else None for name in check.values}
    missing = [name for name, value in found.items() if value is None]
    if alert is None:
        summary = "this run was not opened by an alert"
    elif missing:
        summary = f"the alert does not report {', '.join(missing)}"
    else:
        summary = ", ".join(f"{k} = {v}" for k, v in found.items())
    return StepResult(summary=summary, values={**found, "missing": missing})


def judge(step: Step, result: StepResult, context: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Evaluate the step's condition and finding over its result.

    Return (problem present?, finding). ``None`` means the step has no condition, or its
    condition could not be decided (a value it reads is missing): the finding says which.
    """
    scope = {**context, **result.context()}
    problem: bool | None = None
    if step.when:
        if step.alert is not None and result.values.get("missing"):
            return None, result.summary
        problem = bool(evaluate(step.when, scope))
    if step.finding:
        try:
            finding = render(step.finding, scope)
        except TemplateError as exc:
            finding = f"{result.summary} (finding not rendered: {exc.message})"
    else:
        finding = result.summary
    return problem, finding.strip()


def read_monitor(
    monitor: Monitor, result: StepResult, context: Mapping[str, Any]
) -> tuple[float | None, bool]:
    """Read a monitor's figure and whether its ``until:`` holds, in its step's ``when:`` scope.

    A figure that is not a number (a value missing from the result) is None: the trend shows a
    gap rather than a made-up zero.
    """
    scope = {**context, **result.context()}
    figure: float | None = None
    if monitor.figure:
        try:
            value = evaluate(monitor.figure, scope)
            figure = float(value) if value is not None and not isinstance(value, bool) else None
        except (TemplateError, TypeError, ValueError):
            figure = None
    met = False
    if monitor.until:
        try:
            met = bool(evaluate(monitor.until, scope))
        except TemplateError:
            met = False
    return figure, met


def resolve_inputs(
    runbook: Runbook,
    step: Step,
    given: Mapping[str, str],
    run: Run,
) -> tuple[dict[str, str], list[str]]:
    """Return the step's input values (validated) and the names still missing.

    A value given with the command is used as given (empty is an error, never "the old one").
    A step that changes things takes every value from the person pressing it: a value someone
    else gave earlier, or an alert's, may prefill the form but never feeds the change unasked.
    A read falls back to the run's earlier inputs, then the alert, then the input's default.
    Each is checked against the input's pattern; a bad value is an InputError naming the input
    and what it should look like.
    """
    alert = Alert.model_validate(run.alert) if run.alert else None
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in step.inputs:
        spec = runbook.inputs[name]
        if name in given:
            values[name] = validate_input(name, spec, given[name])
            continue
        if step.changes_things:
            missing.append(name)
            continue
        value = run.inputs.get(name)
        if value is None and alert is not None and spec.from_alert:
            found = alert.lookup(spec.from_alert)
            value = str(found) if found is not None else None
        if value is None:
            value = spec.default
        if value is None:
            missing.append(name)
            continue
        values[name] = validate_input(name, spec, value)
    return values, missing


def validate_input(name: str, spec: Input, value: str) -> str:
    """Return the value stripped, or raise InputError when it fails the input's pattern."""
    return validate_value(
        name,
        value,
        pattern=spec.pattern,
        label=spec.description,
        example=spec.example,
        secret=spec.secret,
    )


def validate_value(
    name: str, value: str, *, pattern: str, label: str, example: str | None, secret: bool
) -> str:
    """Return the value stripped, or raise InputError saying what it should look like.

    Text no store or terminal can hold safely (NUL, a lone surrogate, control codes, an
    oversized value) is refused first, the same way on both stores.
    """
    value = check_text(value, name=name).strip()
    if not re.fullmatch(pattern, value):
        hint = f" (for example {example})" if example else ""
        shown = "the value given" if secret else f"“{value[:80]}”"
        raise InputError(
            f"{shown} is not a valid {label.rstrip('.').lower()}{hint}", input_name=name
        )
    return value


def is_secret(runbook: Runbook, name: str) -> bool:
    """Say whether the runbook declares input ``name`` secret."""
    spec = runbook.inputs.get(name)
    return spec is not None and spec.secret


def redacted_inputs(runbook: Runbook, values: Mapping[str, str]) -> dict[str, str]:
    """Return input values safe for the timeline: secret inputs masked."""
    return {k: (MASK if is_secret(runbook, k) else v) for k, v in values.items()}


def split_secret(
    runbook: Runbook, values: Mapping[str, str], redactor: Redactor
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the (public, secret) input values, teaching the redactor the secret ones.

    Public values may be kept on the run; secret ones travel only with the command that uses
    them, so no process holds them and nothing stores them.
    """
    secret = {k: v for k, v in values.items() if is_secret(runbook, k)}
    redactor.add(secret.values())
    return {k: v for k, v in values.items() if k not in secret}, secret
