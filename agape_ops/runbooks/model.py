"""The runbook language as pydantic models: what a runbook file may say, and nothing more.

A runbook is one YAML file in ``runbooks/``; its ``id`` is its file name. Unknown keys are
rejected everywhere, so a typo is an error rather than a silently ignored setting. The models
describe; they do not execute: the engine renders templates and the adapters act.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agape_ops.runbooks.strict import Strict
from agape_ops.runbooks.timing import (
    LEAST_INTERVAL_S,
    Monitor,
    PrometheusRange,
    check_duration,
    unit_required,
)

IDENT = r"^[a-z][a-z0-9_]*$"
RUNBOOK_ID = r"^[a-z][a-z0-9-]*$"

SECTIONS: tuple[str, ...] = (
    "detection",
    "diagnosis",
    "actions",
    "recovery",
    "resolution",
    "post_incident",
)
SECTION_TITLES: dict[str, str] = {
    "detection": "Detection",
    "diagnosis": "Diagnosis",
    "actions": "Immediate actions",
    "recovery": "Recovery",
    "resolution": "Resolution",
    "post_incident": "Post-incident",
}
ADAPTER_KINDS: tuple[str, ...] = (
    "postgres",
    "redis",
    "paystack",
    "admin_api",
    "prometheus",
    "http",
    "shell",
)
STEP_KINDS: tuple[str, ...] = (*ADAPTER_KINDS, "alert", "manual")


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class Risk(StrEnum):
    """What a step may change: ``read`` nothing, ``write`` data, ``dangerous`` a lot or for good."""

    READ = "read"
    WRITE = "write"
    DANGEROUS = "dangerous"


# --- adapter calls -------------------------------------------------------------------------


class PostgresCall(Strict):
    """SQL against the backend's database; values only through ``params`` as bound parameters."""

    sql: str = Field(description="One SQL statement. Values go in as %(name)s placeholders.")
    params: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict,
        description="Bound parameter values by name; strings are templates, rendered first.",
    )
    preview: str | None = Field(
        default=None,
        description="For writes: a SELECT listing what the write will touch (shown before "
        "confirming, counted against max_rows). Defaults to the UPDATE's own WHERE.",
    )
    max_rows: int | None = Field(
        default=None, gt=0, description="For writes: refuse when more rows would change."
    )
    limit: int = Field(default=50, gt=0, le=1000, description="Rows kept in the result.")
    timeout_ms: int | None = Field(default=None, gt=0, description="statement_timeout override.")
    dsn_input: str | None = Field(
        default=None, description="A secret input whose URL names the database to read instead."
    )


class RedisCall(Strict):
    """A read of the backend's Redis: health, memory and BullMQ queue statistics."""

    command: Literal["ping", "info", "queue_stats", "queue_failures", "discover_queues"]
    queues: list[str] = Field(
        default_factory=list, description="BullMQ queue names; empty means discover them."
    )
    prefix: str = Field(default="bull", description="BullMQ key prefix.")
    count: int = Field(default=10, gt=0, le=100, description="How many recent failures.")


REFERENCE_PATTERN = r"^[A-Za-z0-9.=-]+$"


class PaystackCall(Strict):
    """A read of Paystack's API or its public status page."""

    action: Literal["verify", "verify_many", "list_transactions", "status_page"]
    reference: str | None = Field(default=None, description="Template; for verify.")
    references_from: str | None = Field(
        default=None,
        description="For verify_many: `<step id>.<column>` of an earlier step's rows.",
    )
    status: str | None = Field(default=None, description="For list_transactions: e.g. failed.")
    window_minutes: int = Field(default=15, gt=0, le=10080)
    max_pages: int = Field(default=5, gt=0, le=50)

    @model_validator(mode="after")
    def _arguments_for_action(self) -> PaystackCall:
        if self.action == "verify" and not self.reference:
            raise ValueError("action `verify` needs `reference`")
        if self.action == "verify_many" and not self.references_from:
            raise ValueError("action `verify_many` needs `references_from: <step>.<column>`")
        if self.references_from and not re.fullmatch(
            r"[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*", self.references_from
        ):
            raise ValueError("`references_from` must be `<step id>.<column>`")
        return self


class AdminApiCall(Strict):
    """A call to the backend's admin API (``ADMIN_API_URL``, bearer ``ADMIN_TOKEN``)."""

    action: Literal["reprocess_webhook", "queue_stats", "health", "call"]
    webhook_id: str | None = Field(default=None, description="Template; for reprocess_webhook.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None
    path: str | None = Field(default=None, description="For call: /api/v1/admin/...")
    json_body: dict[str, Any] | None = Field(
        default=None, alias="json", description="For call: the JSON body; strings are templates."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _arguments_for_action(self) -> AdminApiCall:
        if self.action == "reprocess_webhook" and not self.webhook_id:
            raise ValueError("action `reprocess_webhook` needs `webhook_id`")
        if self.action == "call":
            if not self.method or not self.path:
                raise ValueError("action `call` needs `method` and `path`")
            if not self.path.startswith("/"):
                raise ValueError("`path` must start with /")
        return self


class PrometheusCall(Strict):
    """A PromQL query of the Prometheus server that scrapes the backend (``PROMETHEUS_URL``).

    Without ``range`` it is an instant query (``/api/v1/query``): one value per series now.
    With ``range`` it is a range query (``/api/v1/query_range``), summarised per series
    (first and last value, min, max, trend). The query is used as written, never rendered as
    a template: like SQL, it takes no values from people.
    """

    query: str = Field(min_length=1, description="PromQL, used as written (no templates).")
    range: PrometheusRange | None = Field(
        default=None, description="Make it a range query: its `start` offset and `step`."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, le=60, description="Give up after this long (Prometheus too)."
    )

    @property
    def action(self) -> str:
        """Return ``query`` for an instant query, ``range`` for a range query."""
        return "query" if self.range is None else "range"


class HttpCall(Strict):
    """A health check of any URL: status, latency, and a JSON field if asked."""

    url: str = Field(description="Template; e.g. {{ settings.admin_api_url }}/healthz")
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: int = Field(default=200, ge=100, le=599)
    json_field: str | None = Field(
        default=None, description="Dotted path of a JSON field to report, e.g. status.indicator"
    )
    timeout_s: float | None = Field(default=None, gt=0, le=60)


class ShellCall(Strict):
    """A command run as an argument list (never through a shell); off unless OPS_ALLOW_SHELL."""

    command: list[str] = Field(min_length=1, description="Argument list; items are templates.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment passed explicitly.")
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    cwd: str | None = None


class AlertCheck(Strict):
    """A check over the alert itself: values only monitoring knows (e.g. its error rate)."""

    values: list[str] = Field(
        min_length=1, description="Names of alert values or labels the check reads."
    )


class ManualItem(Strict):
    """One checklist item, optionally with a command to copy."""

    text: str
    command: str | None = None


class ManualStep(Strict):
    items: list[ManualItem] = Field(min_length=1)

    @field_validator("items", mode="before")
    @classmethod
    def _strings_are_items(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value


class RowAction(Strict):
    """A follow-up offered on each row of a step's result, e.g. "Reprocess" per failed webhook."""

    step: str = Field(description="Id of the step to run for the row.")
    button: str = Field(description="What the button does, e.g. Reprocess.")
    inputs: dict[str, str] = Field(
        default_factory=dict, description="Input name -> column of the row that supplies it."
    )


class Requires(Strict):
    """A precondition of a write: an earlier read that must find the problem the write fixes.

    The read runs first, with the write's inputs; unless its ``when:`` holds, the write is not
    offered: nobody is asked to confirm, nothing runs, and ``otherwise`` is said with the
    read's finding (e.g. "Nothing to change: 0 SKUs have stock below zero").
    """

    step: str = Field(pattern=IDENT, description="An earlier read step with `when:`.")
    otherwise: str = Field(
        default="Nothing to change", min_length=1, description="Said when `when:` is false."
    )


class IfUnreachable(StrEnum):
    """What a read step that cannot reach its system means for the run's headline."""

    PROBLEM = "problem"  # the incident itself: Database Failover's database is down
    CAUSE = "cause"  # a dependency the backend needs is down: the likely cause
    WARNING = "warning"  # context only: a third-party status page the bot cannot reach


class Step(Strict):
    """One step of a runbook: exactly one adapter call, an alert check, or a manual checklist."""

    id: str = Field(pattern=IDENT)
    title: str = Field(min_length=1)
    description: str | None = None
    risk: Risk = Risk.READ
    confirm: str | None = Field(default=None, description="Confirmation text for write steps.")
    button: str | None = Field(default=None, description="Button label: what the step does.")
    two_person: bool = Field(default=False, description="Needs a second, different approver.")
    lock: str | None = Field(default=None, pattern=IDENT, description="One run at a time.")
    inputs: list[str] = Field(default_factory=list, description="Inputs the step needs.")
    when: str | None = Field(
        default=None, description="Condition over the result; true means the problem is present."
    )
    finding: str | None = Field(
        default=None, description="Template: the statement shown, with its figures."
    )
    row_actions: list[RowAction] = Field(default_factory=list)
    auto: bool | None = Field(
        default=None, description="Run when the run opens (default: detection steps only)."
    )
    requires: Requires | None = Field(
        default=None, description="For writes: a read that must find the problem first."
    )
    verifies: list[str] = Field(
        default_factory=list, description="For writes: checks run again after it succeeds."
    )
    unreachable: IfUnreachable | None = Field(
        default=None,
        description="A read that cannot reach its system: problem (the incident itself), cause "
        "(a dependency down) or warning. Default: cause for postgres, redis, admin_api.",
    )

    monitor: Monitor | None = Field(
        default=None, description="For reads: keep watching after it runs (every, for, until)."
    )

    postgres: PostgresCall | None = None
    redis: RedisCall | None = None
    paystack: PaystackCall | None = None
    admin_api: AdminApiCall | None = None
    prometheus: PrometheusCall | None = None
    http: HttpCall | None = None
    shell: ShellCall | None = None
    alert: AlertCheck | None = None
    manual: ManualStep | None = None

    @field_validator("requires", mode="before")
    @classmethod
    def _step_id_is_requires(cls, value: object) -> object:
        return {"step": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Step:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            named = ", ".join(kinds) or "none"
            raise ValueError(
                f"a step names exactly one of {', '.join(STEP_KINDS)} (this one names {named})"
            )
        return self

    @property
    def kind(self) -> str:
        """Return the step's kind: an adapter name, ``alert`` or ``manual``."""
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def call(self) -> Strict:
        """Return the step's adapter call, alert check or manual checklist."""
        value = getattr(self, self.kind)
        assert isinstance(value, Strict)  # noqa: S101 - _exactly_one_kind guarantees it
        return value

    @property
    def changes_things(self) -> bool:
        return self.risk is not Risk.READ


class Input(Strict):
    """A value a step needs, asked of a person (or taken from the alert) and validated."""

    description: str
    pattern: str = Field(default=r"^.+$", description="Regex the whole value must match.")
    example: str | None = None
    from_alert: str | None = Field(
        default=None, description="Alert label or value that supplies it when present."
    )
    default: str | None = None
    secret: bool = Field(default=False, description="Never shown back, redacted in the timeline.")


class Trigger(Strict):
    """When a runbook applies to an alert; every key given must match."""

    alertname: str | None = Field(
        default=None, description="The alert rule's name (label alertname, or a title word)."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must all equal these values."
    )
    text: str | None = Field(default=None, description="Regex searched in the title and text.")

    @model_validator(mode="after")
    def _not_empty(self) -> Trigger:
        if not (self.alertname or self.labels or self.text):
            raise ValueError("a trigger needs at least one of alertname, labels, text")
        return self


class Runbook(Strict):
    """One operational runbook as a declarative workflow."""

    id: str = Field(pattern=RUNBOOK_ID, description="Equals the file name without .yaml.")
    title: str = Field(min_length=1)
    severity: Severity
    summary: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    triggers: list[Trigger] = Field(default_factory=list)
    inputs: dict[str, Input] = Field(default_factory=dict)
    detection: list[Step] = Field(default_factory=list)
    diagnosis: list[Step] = Field(default_factory=list)
    actions: list[Step] = Field(default_factory=list)
    recovery: list[Step] = Field(default_factory=list)
    resolution: list[Step] = Field(default_factory=list)
    post_incident: list[Step] = Field(default_factory=list)
    recheck: str | None = Field(
        default=None,
        description="While a run is open, run its detection checks again this often (5m).",
    )

    @field_validator("recheck", mode="before")
    @classmethod
    def _recheck_unit(cls, value: object) -> object:
        return unit_required(value)

    @field_validator("recheck")
    @classmethod
    def _recheck(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, least_s=LEAST_INTERVAL_S)

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, Input]) -> dict[str, Input]:
        for name in value:
            if not re.fullmatch(IDENT, name):
                raise ValueError(f"input name {name!r} must be lower_snake_case")
        return value

    def sections(self) -> list[tuple[str, list[Step]]]:
        """Return the non-empty sections in their fixed order."""
        return [(name, getattr(self, name)) for name in SECTIONS if getattr(self, name)]

    def steps(self) -> list[Step]:
        """Return every step in walkthrough order."""
        return [step for _, steps in self.sections() for step in steps]

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps() if s.id == step_id), None)

    def section_of(self, step_id: str) -> str | None:
        for name, steps in self.sections():
            if any(s.id == step_id for s in steps):
                return name
        return None

    def recheck_steps(self) -> list[Step]:
        """Return the checks a re-check runs again: the detection section's automatic reads
        with a condition, but not those over the alert itself (its figures do not change after
        it fired). Diagnosis reads are left out: a cause (a heap that grew) need not clear for
        the incident to be over."""
        detection = {s.id for s in self.detection}
        return [
            s
            for s in self.auto_steps()
            if s.id in detection and s.when is not None and s.alert is None
        ]

    def auto_steps(self) -> list[Step]:
        """Return the steps that run by themselves when a run opens.

        Only reads do, and never a shell step or a checklist: a command runs only when a
        person who may run it asks.
        """
        return [
            s
            for s in self.steps()
            if (s.auto if s.auto is not None else self.section_of(s.id) == "detection")
            and s.risk is Risk.READ
            and s.manual is None
            and s.shell is None
        ]
